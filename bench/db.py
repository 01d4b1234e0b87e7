"""The benchmark database: `<name>_bench` on the server DATABASE_URL points at.

Nothing here imports Django: the database has to exist (and the environment has to point at it)
before django.setup().
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

META_TABLE = "bench_meta"

# Not a secret: the benchmark database is local and thrown away.
BENCH_SECRET_KEY = "bench-only-key-never-used-outside-the-benchmark-database-0123456789"  # noqa: S105


def data_dir() -> Path:
    """Where the bench writes its logs and load-tool outputs: the project's data folder
    (`RAPPORT_DATA_DIR`, as for the embedded services), created when missing."""
    from crm.devservices import DATA_DIR

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return DATA_DIR


def bench_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    name = parts.path.lstrip("/") or "rapport"
    if name.endswith("_bench"):
        return base_url
    return urlunsplit(parts._replace(path=f"/{name}_bench"))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _maintenance_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def database_exists(url: str) -> bool:
    with psycopg.connect(_maintenance_url(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database_name(url)]
        ).fetchone()
    return row is not None


def create_database(url: str, *, drop: bool = False) -> None:
    name = sql.Identifier(database_name(url))
    with psycopg.connect(_maintenance_url(url), autocommit=True) as conn:
        if drop:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [database_name(url)]
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def read_meta(url: str) -> dict:
    """The seeding record, or {} when the database was never (completely) seeded."""
    if not database_exists(url):
        return {}
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", [META_TABLE]).fetchone()[0]
        if exists is None:
            return {}
        row = conn.execute(f"SELECT value FROM {META_TABLE} WHERE key = 'seed'").fetchone()
    return row[0] if row else {}


def write_meta(conn: psycopg.Connection, value: dict) -> None:
    conn.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key text PRIMARY KEY, value jsonb)")
    conn.execute(
        f"INSERT INTO {META_TABLE} (key, value) VALUES ('seed', %s) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        [json.dumps(value)],
    )


def point_django_at(url: str) -> None:
    """Set the environment so that crm.settings (read at django.setup()) uses the bench DB."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    # Production-like request handling: no query log, no debug templates.
    os.environ["DEBUG"] = "0"
    # With DEBUG off the settings refuse the public development key. This one signs only the
    # bench's own data on this machine, and stays the same from run to run: the tracking burst
    # replays the links (signed tokens) of emails an earlier run's send workload wrote.
    os.environ.setdefault("SECRET_KEY", BENCH_SECRET_KEY)
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver"
    # Sessions and caches of the bench organisations must not mix with the dev database's.
    os.environ["CACHE_KEY_PREFIX"] = "rapport-bench"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # The send workload's Celery workers get their own broker database, so no development
    # worker on the same Redis can pick up a benchmark task (or the other way round).
    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url:
        os.environ["CELERY_BROKER_URL"] = urlunsplit(urlsplit(redis_url)._replace(path="/15"))
