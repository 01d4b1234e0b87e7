"""Imports written on two database connections at once (`CANDIDATE_IMPORT_WRITERS`): rows with
one email still apply in file order, batches commit in file order (so a crash leaves exactly
the first batches behind and a rerun resumes after them), and a second run of a job that is
already running leaves it alone.

These tests commit for real (`transaction=True`): the writers' connections cannot see a test
transaction. Inside a caller's transaction an import writes on that one connection instead,
which the other import tests cover."""

import csv
import io
import threading
import time

import psycopg
import pytest
from django.db import connection
from django_scopes import scope, scopes_disabled

from candidates.importing.reading import inspect_file
from candidates.models import Activity, Candidate, ImportRowError, Job
from candidates.services import imports
from candidates.tests.factories import CandidateFactory
from crm.tests.locks import join_or_fail

pytestmark = pytest.mark.django_db(transaction=True)


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def _job(org, user, content: bytes, **options) -> Job:
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("people.csv", content)
    info = inspect_file(upload)
    with scope(organization=org):
        job = imports.import_create(organization=org, user=user, upload=upload, info=info)
        return imports.import_configure(
            job=job, mapping=job.params["mapping"], options={**job.params["options"], **options}
        )


def _run(org, job, *, timeout: float = 60) -> Job:
    """import_run in a thread, so that a deadlock between the writers fails the test instead
    of hanging it."""
    errors = []

    def target():
        try:
            with scope(organization=org):
                imports.import_run(job=job)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    join_or_fail(
        thread,
        timeout=timeout,
        failure="the import did not finish: its writers were waiting on each other",
    )
    if errors:
        raise errors[0]
    job.refresh_from_db()
    return job


def _state(org) -> list[tuple]:
    with scopes_disabled():
        return sorted(
            Candidate.objects.filter(organization=org).values_list(
                "email", "first_name", "last_name", "current_title", "tags", "phone"
            )
        )


@pytest.fixture
def two_writers(settings):
    settings.CANDIDATE_IMPORT_WRITERS = 2
    settings.CANDIDATE_IMPORT_BATCH_SIZE = 3


@pytest.fixture
def record_writers(monkeypatch):
    """The threads that wrote each batch, and the late rows each batch carried."""
    seen: list[tuple[int, str, int]] = []
    real = imports._write_batch

    def spy(**kwargs):
        batch = kwargs["batch"]
        seen.append((batch.start, threading.current_thread().name, len(batch.late_rows)))
        return real(**kwargs)

    monkeypatch.setattr(imports, "_write_batch", spy)
    return seen


# Rows with one email in neighbouring batches of 3: every value is overwritten several times
# and the tags add up, so any row applied out of order shows in the result.
ROWS = [["First Name", "Last Name", "Email", "Current Title", "Tags", "Phone"]]
for i in range(60):
    ROWS.append(
        [
            f"First{i}",
            f"Last{i}" if i % 4 else "",
            f"person{i // 2 % 7}@example.com" if i % 5 else f"solo{i}@example.com",
            f"Title {i}" if i % 3 else "",
            f"t{i % 4}; t{i % 9}",
            f"+44 7911 1234{i:02d}" if i % 2 else "",
        ]
    )


@pytest.mark.parametrize("duplicates", ["update", "skip"])
def test_two_writers_apply_rows_with_one_email_in_file_order(
    org, other_org, recruiter_user, settings, two_writers, record_writers, duplicates
):
    for organization in (org, other_org):
        CandidateFactory(
            organization=organization,
            email="person3@example.com",
            first_name="Existing",
            last_name="Person",
            tags=["kept"],
        )
    content = _csv(ROWS)

    job = _run(org, _job(org, recruiter_user, content, duplicates=duplicates))
    settings.CANDIDATE_IMPORT_WRITERS = 1  # the reference: one connection, batch after batch
    reference = _run(other_org, _job(other_org, recruiter_user, content, duplicates=duplicates))

    assert job.status == Job.Status.DONE
    assert job.result == reference.result
    emails = {row[2] for row in ROWS[1:]}
    assert job.result["created"] == len(emails) - 1  # person3 existed
    assert _state(org) == _state(other_org)
    writers = {name for start, name, late in record_writers if name.startswith("import-writer")}
    assert writers == {"import-writer-0", "import-writer-1"}
    assert any(late for start, name, late in record_writers)
    with scopes_disabled():
        person = Candidate.objects.get(organization=org, email="person0@example.com")
    rows = [row for row in ROWS[1:] if row[2] == "person0@example.com"]
    assert (rows[0][0], rows[-1][0], len(rows)) == ("First1", "First57", 8)
    if duplicates == "update":  # the last non-empty value of each column wins
        last = [next(row[column] for row in reversed(rows) if row[column]) for column in (0, 1, 3)]
        assert [person.first_name, person.last_name, person.current_title] == last
        assert last == ["First57", "Last57", "Title 56"]
    else:  # the first row wins
        assert (person.first_name, person.current_title) == ("First1", "Title 1")


def test_a_batch_overtaking_a_slow_one_waits_before_its_late_rows(
    org, recruiter_user, two_writers, monkeypatch
):
    """Batch 1 merges while batch 0 is still writing; its row with batch 0's email must wait
    for batch 0 to commit (merged at once, it would block batch 0 in the database while
    waiting for it: the run would hang)."""
    content = _csv(
        [
            ["First Name", "Last Name", "Email", "Current Title"],
            ["Ada", "Lovelace", "ada@example.com", "Analyst"],
            ["Grace", "Hopper", "grace@example.com", ""],
            ["Alan", "Turing", "alan@example.com", ""],
            ["Ada", "King", "ADA@example.com", "Countess"],
            ["Edsger", "Dijkstra", "edsger@example.com", ""],
            ["Barbara", "Liskov", "barbara@example.com", ""],
        ]
    )
    real = imports._stage_and_merge
    order = []

    def slow_first_batch(cursor, rows, **kwargs):
        first_email = rows[0][3]
        if first_email == "ada@example.com" and rows[0][2] == "Lovelace":
            time.sleep(1)  # batch 0 is slow: batch 1 gets ahead
        order.append(first_email)
        return real(cursor, rows, **kwargs)

    monkeypatch.setattr(imports, "_stage_and_merge", slow_first_batch)
    # "update": the later row's values win, so the order the rows were applied in shows.
    job = _run(org, _job(org, recruiter_user, content, duplicates="update"))

    assert job.result == {"created": 5, "updated": 1, "skipped": 0, "failed": 0}
    assert order == ["edsger@example.com", "ada@example.com", "ada@example.com"]
    with scopes_disabled():
        ada = Candidate.objects.get(organization=org, email="ada@example.com")
    assert (ada.last_name, ada.current_title) == ("King", "Countess")


def test_two_writers_crash_leaves_the_first_batches_then_resume_is_exact(
    org, recruiter_user, settings, monkeypatch
):
    settings.CANDIDATE_IMPORT_WRITERS = 2
    settings.CANDIDATE_IMPORT_BATCH_SIZE = 100
    rows = [["First Name", "Last Name", "Email"]]
    for i in range(550):
        email = f"p{i % 300}@example.com" if i % 25 else "broken"
        rows.append([f"First{i}", f"Last{i}", email])
    job = _job(org, recruiter_user, _csv(rows))
    real = imports._write_batch
    finished = []

    def crash_on_third_batch(**kwargs):
        start = kwargs["batch"].start
        if start == 200:
            time.sleep(1)  # the fourth batch has merged and waits to commit meanwhile
            raise RuntimeError("worker lost")
        real(**kwargs)
        finished.append(start)

    monkeypatch.setattr(imports, "_write_batch", crash_on_third_batch)
    with pytest.raises(RuntimeError, match="worker lost"):
        _run(org, job)

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert finished == [0, 100]  # batch 300 wrote its rows, but never committed
    assert job.processed == job.params["committed_rows"] == 200
    assert job.result == {"created": 192, "updated": 0, "skipped": 0, "failed": 8}
    with scopes_disabled():
        assert Candidate.objects.filter(organization=org).count() == 192
        assert ImportRowError.objects.filter(job=job).count() == 8

    monkeypatch.setattr(imports, "_write_batch", real)
    job = _run(org, job)

    # 550 rows: 22 broken emails; of the 528 others, 288 distinct emails (rows 300-549 repeat).
    assert job.status == Job.Status.DONE
    assert job.result == {"created": 288, "updated": 240, "skipped": 0, "failed": 22}
    assert job.processed == job.total == 550
    with scopes_disabled():
        assert Candidate.objects.filter(organization=org).count() == 288
        assert ImportRowError.objects.filter(job=job).count() == 22
        assert Activity.objects.filter(organization=org, kind="imported").count() == 528


def test_a_second_run_of_a_running_import_leaves_it_alone(org, recruiter_user, two_writers):
    job = _job(org, recruiter_user, _csv([["First Name", "Email"], ["Ada", "ada@example.com"]]))
    settings_dict = connection.settings_dict
    other = psycopg.connect(
        dbname=settings_dict["NAME"],
        user=settings_dict["USER"],
        password=settings_dict["PASSWORD"] or None,
        host=settings_dict["HOST"],
        port=settings_dict["PORT"],
        autocommit=True,
    )
    try:  # the first run holds the job's lock
        other.execute("SELECT pg_advisory_lock(%s, %s)", [imports._RUN_LOCK_NAMESPACE, job.pk])

        second = _run(org, job)

        assert second.status == Job.Status.DRAFT  # untouched
        assert _state(org) == []
        # Released here, not by closing: a closed connection's backend lets go of its locks
        # when it gets round to exiting, which a busy machine can delay past the next run.
        other.execute("SELECT pg_advisory_unlock(%s, %s)", [imports._RUN_LOCK_NAMESPACE, job.pk])
    finally:
        other.close()

    job = _run(org, job)

    assert job.status == Job.Status.DONE
    assert job.result["created"] == 1
