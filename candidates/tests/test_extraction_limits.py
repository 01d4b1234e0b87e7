"""Text extraction runs each file in a child process with hard limits: a decompression bomb,
a file that keeps the reader busy too long or a reader killed from outside ends as a failed
extraction with its reason, and the task finishes normally (it is acknowledged, never
redelivered to a worker that would die on the same file again)."""

import functools
import os
import resource
import signal
import subprocess
import sys
import threading
import time
import uuid
import zlib
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django_scopes import scopes_disabled

from candidates.demo import one_page_pdf
from candidates.models import Attachment
from candidates.services.attachments import DOCX
from candidates.tasks import attachment_extract_text
from candidates.tests.factories import CandidateFactory, make_attachment, make_docx, make_pdf

MEMORY_LIMIT_REASON = (
    "Reading the file needed more than 512 MB of memory (it may be built to exhaust the server)."
)


def _pdf_with_content_stream(stream: bytes, filters: bytes) -> bytes:
    """A one-page PDF whose page content is `stream`, stored with the given /Filter."""
    return one_page_pdf(stream, filters=filters)


@functools.cache
def _pdf_bomb(expanded_megabytes: int = 1024) -> bytes:
    """About 13 KB whose page content is Flate-compressed twice and expands to
    `expanded_megabytes` of text operators and spaces (built a megabyte at a time)."""
    compressor = zlib.compressobj(1)
    once = [compressor.compress(b"BT /F1 12 Tf 72 720 Td (x) Tj ET\n")]
    megabyte = b" " * (1024 * 1024)
    once.extend(compressor.compress(megabyte) for _ in range(expanded_megabytes))
    once.append(compressor.flush())
    twice = zlib.compress(b"".join(once), 9)
    return _pdf_with_content_stream(twice, b"[/FlateDecode /FlateDecode]")


def _slow_pdf() -> bytes:
    """A 6 KB PDF whose 200,000 drawing operators on one page keep the reader busy for
    over ten seconds."""
    return _pdf_with_content_stream(zlib.compress(b"0 0 m 1 1 l S\n" * 200_000, 9), b"/FlateDecode")


def _peak_memory_megabytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # Linux: kilobytes


def _extract(attachment):
    """Run the task as a worker would; its result, its state and the attachment afterwards."""
    result = attachment_extract_text.apply(
        kwargs={"organization_id": attachment.organization_id, "attachment_id": attachment.pk}
    )
    with scopes_disabled():
        attachment.refresh_from_db()
    return result


@pytest.fixture
def candidate(org):
    return CandidateFactory(organization=org, first_name="Ada", last_name="Lovelace")


@pytest.mark.django_db
def test_extraction_pdf_decompression_bomb_is_marked_failed_without_exhausting_memory(candidate):
    bomb = _pdf_bomb()
    assert len(bomb) < 20_000  # some kilobytes that pass every upload check
    attachment = make_attachment(candidate, content=bomb, name="bomb.pdf")
    peak_before = _peak_memory_megabytes()
    started = time.monotonic()

    result = _extract(attachment)

    assert time.monotonic() - started < 30
    assert _peak_memory_megabytes() - peak_before < 200
    assert (result.state, result.get()) == ("SUCCESS", "failed")  # finished: acknowledged
    assert attachment.extraction_status == Attachment.Extraction.FAILED
    assert attachment.extraction_error == MEMORY_LIMIT_REASON
    assert attachment.extracted_text == ""


@pytest.mark.django_db
def test_extraction_normal_pdf_and_docx_still_read_their_text(candidate):
    pdf = make_attachment(candidate, content=make_pdf("Experienced quantum cryptographer"))
    word = make_attachment(
        candidate,
        content=make_docx("Seasoned", "Beekeeper and gardener"),
        name="cv.docx",
        content_type=DOCX,
    )

    results = [_extract(pdf).get(), _extract(word).get()]

    assert results == ["done", "done"]
    assert pdf.extracted_text == "Experienced quantum cryptographer"
    assert word.extracted_text == "Seasoned\nBeekeeper and gardener"
    with scopes_disabled():
        candidate.refresh_from_db()
    assert candidate.resume_text == (
        "Experienced quantum cryptographer\n\nSeasoned\nBeekeeper and gardener"
    )


def _extraction_children() -> list[int]:
    """This process's children that are reading a file's text."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue  # it ended meanwhile
        if parent == os.getpid() and b"candidates.services.extraction" in command:
            children.append(int(entry.name))
    return children


@pytest.mark.django_db
def test_extraction_reader_killed_by_a_signal_is_marked_failed_not_retried(candidate):
    """The kernel's out-of-memory killer (or an operator) ends the reader with SIGKILL."""
    attachment = make_attachment(candidate, content=_slow_pdf(), name="slow.pdf")
    killed: list[int] = []
    done = threading.Event()

    def kill_the_reader():
        while not done.wait(0.01):
            for pid in _extraction_children():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return

    killer = threading.Thread(target=kill_the_reader)
    killer.start()
    try:
        result = _extract(attachment)
    finally:
        done.set()
        killer.join()

    assert len(killed) == 1
    assert (result.state, result.get()) == ("SUCCESS", "failed")  # finished: acknowledged
    assert attachment.extraction_status == Attachment.Extraction.FAILED
    assert (
        attachment.extraction_error == "The text reader was stopped (SIGKILL) before it finished."
    )


@pytest.mark.django_db
def test_extraction_over_the_time_limit_inside_one_page_is_marked_failed(candidate, settings):
    """The deadline is checked between pages; the processor-time limit ends a reader stuck
    inside one page."""
    settings.ATTACHMENT_EXTRACT_MAX_SECONDS = 1
    attachment = make_attachment(candidate, content=_slow_pdf(), name="slow.pdf")
    started = time.monotonic()

    result = _extract(attachment)

    assert time.monotonic() - started < 6
    assert (result.state, result.get()) == ("SUCCESS", "failed")
    assert attachment.extraction_error == "Reading the file took too long."


# --- through a real Celery prefork worker -------------------------------------------------


@pytest.fixture
def prefork_worker(transactional_db):
    """A real Celery worker with the prefork pool (its processes are daemonic), on the test
    database, the test's media folder and a private queue."""
    db = connection.settings_dict
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "crm",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "-Q",
            queue,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "warning",
        ],
        env=env,
        cwd=settings.BASE_DIR,
    )
    yield queue, process
    process.terminate()
    process.wait(timeout=30)


def test_extraction_through_a_prefork_worker_fails_the_bomb_and_reads_the_resume(
    prefork_worker,
):
    queue, process = prefork_worker
    candidate = CandidateFactory(first_name="Ada", last_name="Lovelace")
    bomb = make_attachment(candidate, content=_pdf_bomb(), name="bomb.pdf")
    resume = make_attachment(candidate, content=make_pdf("Experienced quantum cryptographer"))

    for attachment in (bomb, resume):
        attachment_extract_text.apply_async(
            kwargs={"organization_id": attachment.organization_id, "attachment_id": attachment.pk},
            queue=queue,
        )
    deadline = time.monotonic() + 90
    with scopes_disabled():
        pending = Attachment.objects.filter(extraction_status=Attachment.Extraction.PENDING)
        while pending.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        bomb.refresh_from_db()
        resume.refresh_from_db()

    assert (bomb.extraction_status, bomb.extraction_error) == ("failed", MEMORY_LIMIT_REASON)
    assert (resume.extraction_status, resume.extracted_text) == (
        "done",
        "Experienced quantum cryptographer",
    )
    assert process.poll() is None  # the worker lives on
