"""The embedded PostgreSQL and Redis that `make run` / `make test` start when DATABASE_URL /
REDIS_URL are unset: they start, keep their data across a restart, and stop."""

import subprocess
import sys

import psycopg
import redis

from crm.devservices import EmbeddedPostgres, EmbeddedRedis, port_in_use


def test_embedded_postgres_starts_survives_restart_and_stops(tmp_path):
    server = EmbeddedPostgres(tmp_path)
    url = server.start()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (value text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
        port = server.port
        server.stop()
        assert not port_in_use(port)

        restarted = EmbeddedPostgres(tmp_path)
        url = restarted.start()
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT value FROM kept").fetchone() == ("still here",)
        # A second launcher finds the running server instead of starting another.
        again = EmbeddedPostgres(tmp_path)
        assert again.start() == url
        assert again.started_here is False
    finally:
        EmbeddedPostgres(tmp_path).stop()
    assert EmbeddedPostgres(tmp_path).running_port() is None


def test_embedded_redis_starts_survives_restart_and_stops(tmp_path):
    server = EmbeddedRedis(tmp_path)
    url = server.start()
    try:
        redis.Redis.from_url(url).set("kept", "still here")
        port = server.port
        server.stop()
        assert not port_in_use(port)

        restarted = EmbeddedRedis(tmp_path)
        url = restarted.start()
        assert redis.Redis.from_url(url).get("kept") == b"still here"
    finally:
        EmbeddedRedis(tmp_path).stop()
    assert EmbeddedRedis(tmp_path).running_port() is None


def test_make_run_port_in_use_is_one_line_explanation(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "crm.devservices", "run"],
            env={"PORT": str(port), "PATH": "/usr/bin:/bin", "RAPPORT_DATA_DIR": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"rapport: Port {port} is already in use; stop what is using it or run "
        f"`make run PORT={port + 1}`."
    )


def test_manage_py_without_urls_runs_against_embedded_services_and_stops_them(tmp_path):
    """`python manage.py <command>` from a plain checkout (no DATABASE_URL / REDIS_URL) works
    like `make run`: it starts the embedded servers, runs, and stops what it started."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, str(root / "manage.py"), "makemigrations", "--check", "--dry-run"],
        env={"PATH": "/usr/bin:/bin", "RAPPORT_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stdout
    assert "[rapport] PostgreSQL started" in result.stderr
    assert "[rapport] PostgreSQL stopped" in result.stderr
    assert "[rapport] Redis stopped" in result.stderr
