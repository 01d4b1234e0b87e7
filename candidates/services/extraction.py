"""Reading the text of a resume in a child process with hard limits.

A PDF's streams can be compressed several times over (a 4 KB file can expand to gigabytes
inside pdfminer's ``zlib.decompress``), and no check inside one C call can stop that. So each
file is read by a fresh Python process (``python -m candidates.services.extraction``) that,
before it touches the file, limits its own address space (``RLIMIT_AS``) and processor time
(``RLIMIT_CPU``). The file's bytes go in on stdin; a JSON answer comes back on stdout:
``{"text": ...}`` or ``{"error": ...}``. A child that runs out of memory, is killed by a signal
or outlives the deadline becomes an ``ExtractionFailed`` with a message for people; the worker
that started it is never at risk.

A subprocess rather than ``multiprocessing``: a Celery prefork worker's pool processes are
daemonic ("daemonic processes are not allowed to have children"), and a fresh interpreter
inherits nothing (no database connections, no settings, no secrets). It costs one interpreter
start and the import of the reader (~0.13 s of processor time) per file, in a background task.
This module imports nothing from Django: the parent passes every limit as an argument.
"""

import argparse
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

PDF_READER = "pdf"
DOCX_READER = "docx"
# Extra wall-clock time the parent waits past the deadline: the child checks the deadline
# between pages and says so itself; past this grace it is killed.
DEADLINE_GRACE_SECONDS = 2
# The child's output is capped at this many times the text the caller keeps (room for the
# blank lines and control characters that cleaning removes), so that a file full of text
# cannot fill the parent's memory through the pipe.
RAW_TEXT_FACTOR = 4
_PROJECT_DIR = Path(__file__).resolve().parents[2]
_EXIT_OUT_OF_MEMORY = 3  # the child could not even say that it ran out of memory

logger = logging.getLogger(__name__)


class ExtractionFailed(Exception):
    """The file's text could not be read; the message says why, for people."""


class ExtractionTimeout(ExtractionFailed):
    pass


# --- in the parent -------------------------------------------------------------------------


def text_extract_in_child(
    *,
    reader: str,
    data: bytes,
    max_pages: int,
    max_seconds: float,
    max_chars: int,
    max_memory_bytes: int,
) -> str:
    """The text of ``data`` read by ``reader`` ("pdf" or "docx") in a limited child process;
    raises ExtractionFailed with the reason when it cannot be read."""
    max_seconds = max(max_seconds, 1)
    command = [
        sys.executable,
        "-m",
        "candidates.services.extraction",
        reader,
        f"--max-pages={max_pages}",
        f"--max-seconds={max_seconds:.3f}",
        f"--max-chars={max_chars * RAW_TEXT_FACTOR}",
        f"--max-memory-bytes={max_memory_bytes}",
    ]
    # Only what an interpreter needs to start: the child never sees the worker's secrets.
    environment = {
        name: os.environ[name]
        for name in ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "HOME")
        if name in os.environ
    }
    try:
        finished = subprocess.run(  # noqa: S603 (our own module, fixed arguments)
            command,
            input=data,
            capture_output=True,
            cwd=_PROJECT_DIR,
            env=environment,
            timeout=max_seconds + DEADLINE_GRACE_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:  # run() has killed the child
        raise ExtractionTimeout("Reading the file took too long.") from None
    if finished.returncode == 0:
        try:
            answer = json.loads(finished.stdout)
        except ValueError:
            answer = {}
        if isinstance(answer.get("text"), str):
            return answer["text"]
        if isinstance(answer.get("error"), str):
            raise ExtractionFailed(answer["error"])
    reason = _death_reason(returncode=finished.returncode, max_memory_bytes=max_memory_bytes)
    # Its last words, for the operator (the child silences warnings and logging: they are few).
    stderr = finished.stderr[-1000:].decode(errors="replace")
    logger.warning("The text reader ended with status %s: %s", finished.returncode, stderr)
    raise ExtractionFailed(reason)


def _death_reason(*, returncode: int, max_memory_bytes: int) -> str:
    if returncode == -signal.SIGXCPU:  # its processor-time limit
        return "Reading the file took too long."
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"The text reader was stopped ({name}) before it finished."
    if returncode == _EXIT_OUT_OF_MEMORY:
        return _memory_message(max_memory_bytes)
    return f"The text reader failed (exit status {returncode})."


def _memory_message(max_memory_bytes: int) -> str:
    return (
        f"Reading the file needed more than {max_memory_bytes // (1024 * 1024)} MB of memory "
        "(it may be built to exhaust the server)."
    )


# --- in the child --------------------------------------------------------------------------


def pdf_text(handle, *, max_pages: int, deadline: float, max_chars: int) -> str:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LAParams, LTTextContainer

    parts: list[str] = []
    length = 0
    for page in extract_pages(handle, maxpages=max_pages, laparams=LAParams()):
        if time.monotonic() > deadline:
            raise ExtractionTimeout("Reading the PDF took too long.")
        for element in page:
            if isinstance(element, LTTextContainer):
                parts.append(element.get_text())
                length += len(parts[-1])
        parts.append("\n")
        if length > max_chars:
            break
    return "".join(parts)[:max_chars]


def docx_text(handle, *, max_chars: int) -> str:
    import docx

    document = docx.Document(handle)
    parts = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(parts)[:max_chars]


def _limit_this_process(*, max_memory_bytes: int, max_seconds: float) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (max_memory_bytes, max_memory_bytes))
    # SIGXCPU at the soft limit (the default action ends the process), SIGKILL at the hard one.
    cpu_seconds = int(max_seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 2))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the text of a file read from stdin.")
    parser.add_argument("reader", choices=[PDF_READER, DOCX_READER])
    parser.add_argument("--max-pages", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, required=True)
    parser.add_argument("--max-chars", type=int, required=True)
    parser.add_argument("--max-memory-bytes", type=int, required=True)
    options = parser.parse_args(arguments)
    deadline = time.monotonic() + options.max_seconds
    _limit_this_process(max_memory_bytes=options.max_memory_bytes, max_seconds=options.max_seconds)
    # pdfminer's warnings about a broken file are noise (and stderr is read by the parent).
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    try:
        handle = io.BytesIO(sys.stdin.buffer.read())
        if options.reader == PDF_READER:
            text = pdf_text(
                handle,
                max_pages=options.max_pages,
                deadline=deadline,
                max_chars=options.max_chars,
            )
        else:
            text = docx_text(handle, max_chars=options.max_chars)
        answer = {"text": text}
    except MemoryError:
        answer = {"error": _memory_message(options.max_memory_bytes)}
    except Exception as error:  # a broken file: its reader's message, as the worker gave it
        answer = {"error": (str(error) or error.__class__.__name__)[:255]}
    try:
        sys.stdout.buffer.write(json.dumps(answer).encode())
        sys.stdout.buffer.flush()
    except MemoryError:
        return _EXIT_OUT_OF_MEMORY
    return 0


if __name__ == "__main__":
    sys.exit(main())
