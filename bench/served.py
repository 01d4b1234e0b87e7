"""Served throughput: gunicorn on a free loopback port, 16 keep-alive clients for a bounded time.

The load generator is Python threads with http.client (standard library only), in this
process; it shares the machine's 2 cores with gunicorn, as a real client on the same host would.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.report import Row, percentile

BASE_DIR = Path(__file__).resolve().parent.parent
GUNICORN_WORKERS = 4
GUNICORN_THREADS = 4
WARMUP_SECONDS = 3
TARGET_RPS = 150


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(
    port: int,
    log_path: Path,
    *,
    workers: int = GUNICORN_WORKERS,
    threads: int = GUNICORN_THREADS,
    worker_class: str = "gthread",
) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "crm.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--threads",
        str(threads),
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
    ]
    log = log_path.open("w")
    # os.environ already points Django at the benchmark database (bench.db.point_django_at).
    return subprocess.Popen(command, cwd=BASE_DIR, env=dict(os.environ), stdout=log, stderr=log)


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 60 s")


def load(port: int, paths: list[str], cookie: str, *, duration: float, clients: int) -> dict:
    """`clients` threads, each on one keep-alive connection, GET `paths` round-robin until
    `duration` seconds have passed; in-flight requests finish."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    start = time.perf_counter()
    deadline = start + duration

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        position = index
        while time.perf_counter() < deadline:
            path = paths[position % len(paths)]
            position += 1
            began = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Cookie": cookie})
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            elapsed = (time.perf_counter() - began) * 1000
            if status == 200:
                latencies[index].append(elapsed)
            else:
                errors[index] += 1
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 60)
    wall = time.perf_counter() - start
    samples = [value for per_client in latencies for value in per_client]
    return {
        "samples": samples,
        "errors": sum(errors),
        "statuses": statuses,
        "wall": wall,
        "rps": len(samples) / wall,
    }


def workload_served(ctx) -> list[Row]:
    from django.conf import settings

    from bench.workloads import FACETS, SEARCHES, _not_built, _url

    list_path = _url("candidates:list")
    profile_ids = ctx.meta["profile_ids"]
    detail_paths = [
        p for p in (_url("candidates:detail", candidate_id=i) for i in profile_ids) if p
    ]
    phases = []
    if list_path:
        facet = "&".join(f"{key}={value}" for key, value in FACETS.items())
        phases.append(
            (
                "list pages",
                [
                    list_path,
                    f"{list_path}?{facet}",
                    f"{list_path}?q={SEARCHES[0][1]}",
                    f"{list_path}?q={SEARCHES[2][1].replace(' ', '+')}",
                ],
                "newest first / 3 facets / 'fortran' / 'kubernetes berlin', round-robin",
            )
        )
    if detail_paths:
        phases.append(
            ("profile pages", detail_paths, f"{len(detail_paths)} profiles, 200-item timelines")
        )
    if not phases:
        return [_not_built(Row("served: list and profile pages"), "candidates:list")]

    cookie = (
        f"{settings.SESSION_COOKIE_NAME}={ctx.client.cookies[settings.SESSION_COOKIE_NAME].value}"
    )
    port = free_port()
    log_path = BASE_DIR / ".data" / "bench-gunicorn.log"
    process = start_gunicorn(port, log_path)
    rows = []
    try:
        wait_ready(port, process)
        for label, paths, description in phases:
            load(port, paths, cookie, duration=WARMUP_SECONDS, clients=ctx.args.clients)
            result = load(port, paths, cookie, duration=ctx.args.duration, clients=ctx.args.clients)
            row = Row(
                f"served {label}: {ctx.args.clients} clients, gunicorn",
                samples=result["samples"],
                target=f"≥ {TARGET_RPS} req/s",
                rate=result["rps"],
                rate_target=TARGET_RPS,
            )
            row.note = (
                f"{result['rps']:.0f} req/s over {result['wall']:.1f} s, "
                f"p50 {percentile(result['samples'], 50):.0f} / p95 "
                f"{percentile(result['samples'], 95):.0f} / p99 "
                f"{percentile(result['samples'], 99):.0f} ms, errors {result['errors']}"
                + (f" {result['statuses']}" if result["statuses"] else "")
                + f"; {description}; gunicorn {GUNICORN_WORKERS} workers × "
                f"{GUNICORN_THREADS} threads (gthread)"
            )
            rows.append(row)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return rows
