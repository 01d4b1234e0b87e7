"""CANDIDATE_IMPORT_WRITERS, the database connections an import writes on, comes from the
environment (docs/operations.md), read in a fresh interpreter as a server process reads it."""

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def _writers(value: str | None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "CANDIDATE_IMPORT_WRITERS"}
    if value is not None:
        environment["CANDIDATE_IMPORT_WRITERS"] = value
    return subprocess.run(
        [sys.executable, "-c", "import crm.settings as s; print(s.CANDIDATE_IMPORT_WRITERS)"],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_two_writers_unless_told_otherwise():
    result = _writers(None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


def test_the_environment_sets_the_writers():
    result = _writers("4")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4"


def test_fewer_than_one_writer_is_refused():
    result = _writers("0")
    assert result.returncode != 0
    assert "CANDIDATE_IMPORT_WRITERS must be 1 or more" in result.stderr
