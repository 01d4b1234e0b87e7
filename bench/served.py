"""Served throughput: list and profile pages through gunicorn on a free loopback port, 16
keep-alive connections for a bounded time, as one logged-in recruiter (one session cookie).

The load tool is wrk (Debian/Ubuntu: `apt-get install wrk`; macOS: `brew install wrk`) with
bench/served.lua: a C event loop on the same two cores as gunicorn, Postgres and Redis, which
leaves the server the CPU that Python client threads took (they were most of a core at 25
requests/s). wrk measures closed-loop latency (each connection sends its next request when the
last one was answered). Every answer must be a 200 holding the page's markers (a result row or
a timeline entry, and the closing </html>); the note gives the fewest and most rows or entries
seen on one page.

The note also splits the CPU the timed run used per request: gunicorn's processes (Django),
the PostgreSQL backends gunicorn's connections talk to, Redis (shared), wrk, and the rest of the
machine (other processes; two cores give 2,000 ms of CPU per second): 2,000 / (CPU ms per
request) is what two idle cores could serve at that cost.
"""

from __future__ import annotations

import http.client
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from bench import db
from bench.report import Row

BASE_DIR = Path(__file__).resolve().parent.parent
WRK = "wrk"
WRK_SCRIPT = Path(__file__).resolve().parent / "served.lua"
WRK_THREADS = 1  # one event loop keeps 16 connections busy at these rates
# 2 x cores + 1 sync workers, as docs/operations.md recommends for production: on two cores
# they served the profile pages 20-25 % faster than gthread workers (4x4, 3x2, 2x4), whose
# threads contend for each process's GIL; with no keep-alive, wrk reconnects per request
# (loopback connects are cheap). --served-gunicorn WxT[:class] tries other shapes.
GUNICORN_WORKERS = 5
GUNICORN_THREADS = 1
GUNICORN_CLASS = "sync"
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
    worker_class: str = GUNICORN_CLASS,
    application: str = "crm.wsgi:application",
) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        application,
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


def wrk_path() -> str | None:
    return shutil.which(WRK)


def gunicorn_config(text: str) -> tuple[int, int, str]:
    """ "3x4:gthread" → (3, 4, "gthread"); empty → the defaults."""
    if not text:
        return GUNICORN_WORKERS, GUNICORN_THREADS, GUNICORN_CLASS
    sizes, _, worker_class = text.partition(":")
    workers, _, threads = sizes.partition("x")
    return int(workers), int(threads or 1), worker_class or GUNICORN_CLASS


def _cpu_seconds(process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


class CpuMeter:
    """CPU seconds (user + system) spent between two readings by gunicorn's processes, by the
    PostgreSQL backends its connections talk to (by client port in pg_stat_activity), by Redis
    (shared: the sessions of this run and anything else using it), by this process's finished
    children (wrk) and by the whole machine: on a shared machine the request rate alone says
    little, CPU per request says what two idle cores could do."""

    def __init__(self, raw, gunicorn_pid: int, redis_port: int | None):
        self.raw = raw
        self.gunicorn = psutil.Process(gunicorn_pid)
        self.redis = None
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == redis_port and conn.pid:
                self.redis = psutil.Process(conn.pid)

    def read(self) -> dict:
        web = [self.gunicorn, *self.gunicorn.children(recursive=True)]
        ports = set()
        for process in web:
            try:
                ports.update(c.laddr.port for c in process.net_connections(kind="tcp") if c.raddr)
            except psutil.Error:
                continue
        backends = []
        for pid, port in self.raw.execute(
            "SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database()"
        ).fetchall():
            if port in ports:
                try:
                    backends.append(psutil.Process(pid))
                except psutil.Error:
                    continue
        machine = psutil.cpu_times()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "gunicorn": {p.pid: _cpu_seconds(p) for p in web},
            "postgres": {p.pid: _cpu_seconds(p) for p in backends},
            "redis": {self.redis.pid: _cpu_seconds(self.redis)} if self.redis else {},
            "wrk": children.ru_utime + children.ru_stime,
            "machine": machine.user
            + machine.nice
            + machine.system
            + machine.irq
            + machine.softirq
            + getattr(machine, "steal", 0.0),
        }

    @staticmethod
    def spent(before: dict, after: dict) -> dict[str, float]:
        """Seconds per part; a process that appeared meanwhile counts from zero."""
        spent = {}
        for part in ("gunicorn", "postgres", "redis"):
            spent[part] = sum(
                seconds - before[part].get(pid, 0.0) for pid, seconds in after[part].items()
            )
        spent["wrk"] = after["wrk"] - before["wrk"]
        spent["machine"] = after["machine"] - before["machine"]
        return spent


def run_wrk(port: int, paths_file: Path, *, clients: int, duration: float, out: Path) -> dict:
    """wrk with `clients` keep-alive connections for `duration` seconds round the paths of
    `paths_file` (see bench/served.lua); its counts and latency percentiles."""
    out.unlink(missing_ok=True)
    command = [
        wrk_path() or WRK,
        "--threads",
        str(min(WRK_THREADS, clients)),
        "--connections",
        str(clients),
        "--duration",
        f"{duration:g}s",
        "--timeout",
        "30s",
        "--script",
        str(WRK_SCRIPT),
        f"http://127.0.0.1:{port}",
        "--",
        str(paths_file),
    ]
    env = {**os.environ, "SERVED_WRK_OUT": str(out)}
    completed = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=duration + 120
    )
    if completed.returncode != 0 or not out.exists():
        raise RuntimeError(
            f"wrk failed ({completed.returncode}): {completed.stderr.strip()[-500:]}"
        )
    result: dict = {"errors": {}, "latency_ms": {}, "statuses": {}}
    for line in out.read_text().splitlines():
        key, *values = line.split()
        if key == "error":
            result["errors"][values[0]] = int(values[1])
        elif key == "latency_us":
            result["latency_ms"][float(values[0])] = int(values[1]) / 1000
        elif key == "status":
            result["statuses"][values[0]] = result["statuses"].get(values[0], 0) + int(values[1])
        else:
            result[key] = int(values[0])
    return result


def _paths_file(name: str, cookie: str, markers: list[str], counted: str, paths: list[str]):
    path = db.data_dir() / f"bench-served-{name}.txt"
    lines = [cookie, *(f"marker {m}" for m in markers), f"count {counted}", *paths]
    path.write_text("\n".join(lines) + "\n")
    return path


def workload_served(ctx) -> list[Row]:
    from django.conf import settings

    from bench.workloads import FACETS, SEARCHES, _not_built, _url

    list_path = _url("candidates:list")
    profile_ids = ctx.meta["profile_ids"]
    detail_paths = [
        p for p in (_url("candidates:detail", candidate_id=i) for i in profile_ids) if p
    ]
    # (label, paths, what every page holds, what is counted on each, description)
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
                ['class="candidate-name-cell"', "</html>"],
                'class="candidate-name-cell"',
                "rows",
                "newest first / 3 facets / 'fortran' / 'kubernetes berlin', round-robin",
            )
        )
    if detail_paths:
        phases.append(
            (
                "profile pages",
                detail_paths,
                ['<li class="timeline-item', "</html>"],
                '<li class="timeline-item',
                "timeline entries",
                f"{len(detail_paths)} profiles, 200-item timelines",
            )
        )
    if not phases:
        return [_not_built(Row("served: list and profile pages"), "candidates:list")]
    if wrk_path() is None:
        print("  served: wrk is missing — install it (apt-get install wrk; brew install wrk).")
        return [Row(f"served {phase[0]}", status="no wrk") for phase in phases]

    cookie = (
        f"{settings.SESSION_COOKIE_NAME}={ctx.client.cookies[settings.SESSION_COOKIE_NAME].value}"
    )
    workers, threads, worker_class = gunicorn_config(ctx.args.served_gunicorn)
    server = f"gunicorn {workers} workers × {threads} threads ({worker_class})"
    port = free_port()
    log_path = db.data_dir() / "bench-gunicorn.log"
    process = start_gunicorn(
        port, log_path, workers=workers, threads=threads, worker_class=worker_class
    )
    redis_port = urlsplit(os.environ.get("REDIS_URL", "")).port
    rows = []
    try:
        wait_ready(port, process)
        meter = CpuMeter(ctx.raw, process.pid, redis_port)
        for label, paths, markers, counted, unit, description in phases:
            name = label.split()[0]
            paths_file = _paths_file(name, cookie, markers, counted, paths)
            out = db.data_dir() / f"bench-served-{name}-wrk.txt"
            clients = ctx.args.clients
            run_wrk(port, paths_file, clients=clients, duration=WARMUP_SECONDS, out=out)
            before, load_before = meter.read(), os.getloadavg()[0]
            result = run_wrk(port, paths_file, clients=clients, duration=ctx.args.duration, out=out)
            cpu = CpuMeter.spent(before, meter.read())
            rows.append(_row(label, result, cpu, clients, unit, description, server, load_before))
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return rows


def _row(label, result, cpu, clients, unit, description, server, load_before) -> Row:
    seconds = result["duration_us"] / 1e6
    answered = result["requests"]
    rps = result["ok"] / seconds if seconds else 0.0
    row = Row(
        f"served {label}: {clients} clients, gunicorn",
        target=f"≥ {TARGET_RPS} req/s",
        rate=rps,
        rate_target=TARGET_RPS,
    )
    row.percentiles = result["latency_ms"]
    row.count = result["ok"]
    failed = answered - result["ok"] + sum(result["errors"].values()) - result["errors"]["status"]
    if failed:
        row.status = "error"
    per_request = {part: 1000 * spent / max(answered, 1) for part, spent in cpu.items()}
    ours = sum(per_request[part] for part in ("gunicorn", "postgres", "redis", "wrk"))
    others = max(per_request["machine"] - ours, 0.0)
    statuses = f" {result['statuses']}" if result["statuses"] else ""
    socket_errors = {k: v for k, v in result["errors"].items() if k != "status" and v}
    row.note = (
        f"{rps:.0f} req/s over {seconds:.1f} s (wrk), p50 {result['latency_ms'][50]:.0f} / p95 "
        f"{result['latency_ms'][95]:.0f} / p99 {result['latency_ms'][99]:.0f} ms; {answered:,} "
        f"answered: {result['ok']:,} 200s with every marker, {result['bad_status']} other "
        f"statuses{statuses}, {result['bad_body']} without a marker, socket errors "
        f"{socket_errors or 0}; {result['fewest']}–{result['most']} {unit} a page; "
        f"{description}; {server}; CPU ms per request: gunicorn {per_request['gunicorn']:.1f}, "
        f"its PostgreSQL backends {per_request['postgres']:.1f}, Redis (shared) "
        f"{per_request['redis']:.1f}, wrk {per_request['wrk']:.1f} = {ours:.1f} "
        f"(two idle cores: ~{2000 / max(ours, 0.001):.0f} req/s at this cost); the rest of the "
        f"machine {others:.1f}; load average {load_before:.1f} at the start"
    )
    return row
