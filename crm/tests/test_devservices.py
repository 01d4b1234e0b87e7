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


def test_make_run_stops_everything_on_sigterm(tmp_path):
    """`kill`, `docker stop` or a closed terminal stop `make run` as Ctrl-C does: the web
    server, worker and beat end and the embedded PostgreSQL and Redis are stopped."""
    import contextlib
    import os
    import signal
    import socket
    import time

    import psutil

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "crm.devservices", "run"],
        env={
            "PORT": str(port),
            "PATH": "/usr/bin:/bin",
            "RAPPORT_DATA_DIR": str(tmp_path),
            "HOME": str(tmp_path),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output, children = [], []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Rapport is running at" in line:
                break
        assert any("Rapport is running at" in line for line in output), "".join(output)
        # The address answers as soon as the banner gives it.
        assert port_in_use(port)
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) >= 3  # the web server, the worker and beat

        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
    finally:  # whatever failed, leave nothing running behind
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        EmbeddedPostgres(tmp_path).stop()
        EmbeddedRedis(tmp_path).stop()
    output.append(rest)
    log = "".join(output)
    assert process.returncode == 0, log
    assert "[rapport] PostgreSQL stopped" in log and "[rapport] Redis stopped" in log
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []
    assert not port_in_use(port)


def test_settings_keep_sent_mail_and_uploads_in_the_data_directory(tmp_path):
    """Development's sent mail, uploads and collected static files live under
    RAPPORT_DATA_DIR, with the embedded servers, not always under the checkout's .data."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from crm import settings as s; print(s.EMAIL_FILE_PATH, s.MEDIA_ROOT, s.STATIC_ROOT)",
        ],
        env={
            "PATH": "/usr/bin:/bin",
            "RAPPORT_DATA_DIR": str(tmp_path),
            "HOME": str(tmp_path),
            # Only read, never connected to: settings refuse to load without them.
            "DATABASE_URL": "postgres://rapport@127.0.0.1:1/rapport",
            "REDIS_URL": "redis://127.0.0.1:1/0",
        },
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        str(tmp_path / "mail"),
        str(tmp_path / "media"),
        str(tmp_path / "staticfiles"),
    ]
