"""Helpers for tests where two connections to the test database meet on a row lock."""

import threading
import time

import pytest
from django.db import connection


def waiting_for_a_lock(timeout: float = 10) -> bool:
    """Whether another connection to the test database waits for a lock (within `timeout`)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # the view is cached per transaction
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.05)
    return False


def join_or_fail(thread: threading.Thread, *, timeout: float, failure: str) -> None:
    """Wait for `thread`; if it is still running after `timeout`, end the other connections
    (a thread stuck on a lock would keep the test database from being flushed) and fail."""
    thread.join(timeout)
    if thread.is_alive():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        thread.join(10)
        pytest.fail(failure)
