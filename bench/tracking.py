"""The tracking burst: open pixels, click redirects and one-click unsubscribe POSTs against
gunicorn on loopback, as right after a big send, while the tracking flush runs every 2 s like
beat would. Then every answered request is checked against the database: each 200 pixel and
each 302 click must be exactly one EngagementEvent, each unsubscribe token answered 200 an
unsubscribed candidate with one "unsubscribed" event ("zero lost events").

The load tool is wrk (Debian/Ubuntu: `apt-get install wrk`; macOS: `brew install wrk`) with
bench/tracking.lua, on the same two cores as gunicorn, Postgres and Redis: a C event loop that
leaves the server the CPU a Python load generator would have taken. wrk measures closed-loop
latency (each connection sends its next request when the last one was answered), like the
Python clients this bench used before.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import threading
import time
from pathlib import Path

import psutil

from bench import db
from bench.report import Row

BASE_DIR = Path(__file__).resolve().parent.parent
WRK = "wrk"
WRK_SCRIPT = Path(__file__).resolve().parent / "tracking.lua"
WRK_THREADS = 2
BURST_MESSAGES = 20_000  # dispatched here when no send-benchmark broadcast exists
REQUEST_MESSAGES = 100_000  # the burst replays requests about up to this many messages
# --tracking-server wsgi: crm.wsgi on gunicorn's gthread workers (the web process).
GUNICORN_WORKERS = 3
GUNICORN_THREADS = 8
GUNICORN_CLASS = "gthread"
# --tracking-server asgi (the default): crm.asgi on uvicorn's worker, the tracking process.
ASGI_APPLICATION = "crm.asgi:application"
ASGI_WORKERS = 2
ASGI_CLASS = "uvicorn_worker.UvicornWorker"
TARGET_RPS = 2000
TARGET_P99_MS = 50
_PIXEL = re.compile(r'<img src="https?://[^/"]+(/e/o/[^"]+)"')
_CLICK = re.compile(r'href="https?://[^/"]+(/e/c/[^"]+)"')
_UNSUBSCRIBE = re.compile(r"<https?://[^/>]+(/e/u/[^>]+)>")


def _source_campaign(ctx) -> int:
    """The newest send-benchmark broadcast; a smaller one is dispatched here when there is none."""
    row = ctx.raw.execute(
        "SELECT c.id FROM campaigns_campaign c WHERE c.organization_id = %s AND c.name LIKE "
        "'Send bench%%' AND EXISTS (SELECT 1 FROM campaigns_message m WHERE m.campaign_id = c.id"
        " AND m.status = 'sent') ORDER BY c.id DESC LIMIT 1",
        [ctx.org_id],
    ).fetchone()
    if row:
        return row[0]
    from django_scopes import scope

    from bench.send import create_campaign, prepare_audience
    from campaigns.services.campaigns import campaign_launch
    from campaigns.services.dispatch import dispatch_due

    print(f"  no sent broadcast: dispatching {BURST_MESSAGES:,} messages in-process…", flush=True)
    prepare_audience(ctx, ctx.args.send_recipients)
    organization, campaign = create_campaign(ctx, "tracking")
    with scope(organization=organization):
        campaign_launch(campaign=campaign, user=ctx.user)
    ctx.raw.execute(
        "UPDATE campaigns_enrollment SET next_run_at = now() + interval '1 day' "
        "WHERE campaign_id = %s AND id NOT IN (SELECT id FROM campaigns_enrollment "
        "WHERE campaign_id = %s ORDER BY id LIMIT %s)",
        [campaign.pk, campaign.pk, BURST_MESSAGES],
    )
    dispatch_due(organization_id=ctx.org_id)
    ctx.raw.execute(
        "UPDATE campaigns_message SET status = 'sent', sent_at = now() - interval '1 hour' "
        "WHERE campaign_id = %s",
        [campaign.pk],
    )
    return campaign.pk


def _requests(ctx, campaign_id: int) -> list[tuple[str, str, str]]:
    """(kind, method, path) in a fixed mix: 6 opens, 3 clicks, 1 one-click unsubscribe per 10
    messages, each request about another message (unsubscribes each about another candidate)."""
    rows = ctx.raw.execute(
        "SELECT html, headers->>'List-Unsubscribe' FROM campaigns_message "
        "WHERE campaign_id = %s AND status = 'sent' ORDER BY id LIMIT %s",
        [campaign_id, REQUEST_MESSAGES],
    ).fetchall()
    requests = []
    for index, (html, unsubscribe) in enumerate(rows):
        slot = index % 10
        if slot < 6:
            requests.append(("open", "GET", _PIXEL.search(html)[1]))
        elif slot < 9:
            links = _CLICK.findall(html)
            # A visible link (the trap link is the last /e/c/ href in the layout).
            requests.append(("click", "GET", links[slot % 5]))
        else:
            requests.append(("unsubscribe", "POST", _UNSUBSCRIBE.search(unsubscribe)[1]))
    return requests


def wrk_path() -> str | None:
    return shutil.which(WRK)


def burst(port: int, requests: list, *, clients: int, duration: float, name: str) -> dict:
    """wrk with `clients` keep-alive connections for `duration` seconds, replaying `requests`;
    what it answered, counted by kind (see bench/tracking.lua)."""
    data = db.data_dir()
    requests_file = data / f"bench-tracking-{name}-requests.txt"
    out_file = data / f"bench-tracking-{name}-wrk.txt"
    requests_file.write_text("".join(f"{method} {path}\n" for _, method, path in requests))
    out_file.unlink(missing_ok=True)
    threads = min(WRK_THREADS, clients)
    command = [
        wrk_path() or WRK,
        "--threads",
        str(threads),
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
        str(requests_file),
        str(threads),
    ]
    env = {**os.environ, "TRACKING_WRK_OUT": str(out_file)}
    completed = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=duration + 120
    )
    if completed.returncode != 0 or not out_file.exists():
        raise RuntimeError(
            f"wrk failed ({completed.returncode}): {completed.stderr.strip()[-500:]}"
        )
    result = {"ok": {}, "errors": {}, "socket_errors": {}, "latency_ms": {}, "unsubscribed": set()}
    for line in out_file.read_text().splitlines():
        key, *values = line.split()
        if key == "requests":
            result["requests"] = int(values[0])
        elif key == "duration_us":
            result["wall"] = int(values[0]) / 1e6
        elif key == "error" and int(values[1]):
            result["socket_errors"][values[0]] = int(values[1])
        elif key == "latency_us":
            name_ = values[0] if values[0] in ("max", "mean") else float(values[0])
            result["latency_ms"][name_] = float(values[1]) / 1000
        elif key == "count":
            kind, count = values[0].replace("_", " "), int(values[1])
            target = result["ok"] if kind in ("open", "click", "unsubscribe") else result["errors"]
            target[kind] = target.get(kind, 0) + count
        elif key == "token":
            result["unsubscribed"].add(values[0])
    result["rps"] = result["requests"] / result["wall"]
    result["listed"] = len(requests)
    return result


class _Flusher(threading.Thread):
    """Beat's every-few-seconds flush, in this process, while the burst runs."""

    def __init__(self, interval: float = 2.0):
        super().__init__(daemon=True)
        self.interval = interval
        self.stopping = threading.Event()
        self.written = 0
        self.seconds = 0.0
        self.cpu = 0.0  # this thread's CPU seconds
        self.backend_cpu = 0.0  # its PostgreSQL backend's

    def run(self) -> None:
        from django.db import connection

        from campaigns.services.tracking import tracking_flush

        while not self.stopping.wait(self.interval):
            began, cpu = time.perf_counter(), time.thread_time()
            self.written += tracking_flush().written
            self.seconds += time.perf_counter() - began
            self.cpu += time.thread_time() - cpu
        if connection.connection is not None:
            self.backend_cpu = _cpu_seconds(connection.connection.info.backend_pid)
        connection.close()


def _cpu_seconds(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


class _CpuMeter:
    """CPU seconds (user + system) that gunicorn, the PostgreSQL backends serving it and Redis
    used between two snapshots: on a machine shared with other work, the request rate alone
    says little; CPU per request says what two idle cores could do."""

    def __init__(self, ctx, gunicorn: subprocess.Popen):
        self.ctx = ctx
        self.gunicorn = gunicorn
        self.redis_pid = self._listener(_port(os.environ.get("REDIS_URL", "")))
        self.began: dict[str, dict[int, float]] = {}

    @staticmethod
    def _listener(port: int | None) -> int | None:
        if port is None:
            return None
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
                return connection.pid
        return None

    def _groups(self) -> dict[str, dict[int, float]]:
        root = psutil.Process(self.gunicorn.pid)
        web = [root, *root.children(recursive=True)]
        ports = set()
        for process in web:
            try:
                ports.update(c.laddr.port for c in process.net_connections(kind="tcp") if c.raddr)
            except psutil.Error:
                continue
        backends = [
            pid
            for pid, port in self.ctx.raw.execute(
                "SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database()"
            ).fetchall()
            if port in ports
        ]
        groups = {
            "gunicorn": {p.pid: _cpu_seconds(p.pid) for p in web},
            "postgres (web)": {pid: _cpu_seconds(pid) for pid in backends},
        }
        if self.redis_pid:
            groups["redis (shared)"] = {self.redis_pid: _cpu_seconds(self.redis_pid)}
        return groups

    def start(self) -> None:
        self.began = self._groups()

    def stop(self) -> dict[str, float]:
        ended = self._groups()
        return {
            group: sum(cpu - self.began.get(group, {}).get(pid, 0.0) for pid, cpu in pids.items())
            for group, pids in ended.items()
        }


def _port(url: str) -> int | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).port
    except ValueError:
        return None


def _reset(ctx, campaign_id: int) -> None:
    """No engagement yet: the burst's events are then exactly what the checks count."""
    raw = ctx.raw
    raw.execute(
        "DELETE FROM analytics_engagementevent WHERE campaign_id = %s AND kind IN "
        "('opened', 'clicked', 'unsubscribed')",
        [campaign_id],
    )
    for table in ("campaigns_candidateemailpreference", "campaigns_suppression"):
        raw.execute(f"DELETE FROM {table} WHERE organization_id = %s", [ctx.org_id])
    raw.execute(
        "UPDATE campaigns_message SET opened_at = NULL, clicked_at = NULL, unsubscribed_at = NULL"
        " WHERE campaign_id = %s",
        [campaign_id],
    )


def _gunicorn_config(text: str, server: str) -> tuple[str, int, int, str]:
    """The application and gunicorn's shape: "3x8:gthread" → (crm.wsgi, 3, 8, "gthread") for
    wsgi, "3" → (crm.asgi, 3, 1, UvicornWorker) for asgi; empty → the defaults."""
    if server == "asgi":
        workers = int(text.partition("x")[0]) if text else ASGI_WORKERS
        return ASGI_APPLICATION, workers, 1, ASGI_CLASS
    if not text:
        return "crm.wsgi:application", GUNICORN_WORKERS, GUNICORN_THREADS, GUNICORN_CLASS
    sizes, _, worker_class = text.partition(":")
    workers, _, threads = sizes.partition("x")
    return "crm.wsgi:application", int(workers), int(threads or 1), worker_class or GUNICORN_CLASS


def _quiesce(ctx, *, settle: float = 1.0, limit: float = 60.0) -> None:
    """Wait until gunicorn has answered what wrk left in flight when it stopped (nothing new
    buffered or unsubscribed for `settle` seconds), so the warm-up's stragglers are not
    counted in the burst."""
    from campaigns.services import tracking

    def state():
        unsubscribed = ctx.raw.execute(
            "SELECT count(*) FROM campaigns_candidateemailpreference WHERE organization_id = %s",
            [ctx.org_id],
        ).fetchone()[0]
        return tracking.buffered_count(), unsubscribed

    deadline = time.monotonic() + limit
    last = state()
    while time.monotonic() < deadline:
        time.sleep(settle)
        current = state()
        if current == last:
            return
        last = current


def _unsubscribed_candidates(tokens_answered: set[str]) -> set[int]:
    from campaigns.services import tokens

    ids = set()
    for token in tokens_answered:
        content = tokens.token_read(token, salt=tokens.CANDIDATE_SALT)
        if content is not None:
            ids.add(content.candidate_id)
    return ids


def workload_tracking(ctx) -> list[Row]:
    from django.db import connections

    from bench.served import free_port, start_gunicorn, wait_ready
    from campaigns.services import tracking

    if wrk_path() is None:
        print("  tracking: wrk is missing — install it (apt-get install wrk; brew install wrk).")
        return [Row("tracking burst: open/click/unsubscribe", status="no wrk")]
    campaign_id = _source_campaign(ctx)
    requests = _requests(ctx, campaign_id)
    raw = ctx.raw
    tracking.tracking_flush(hold_seconds=0)  # nothing left over from an earlier run
    _reset(ctx, campaign_id)
    application, workers, threads, worker_class = _gunicorn_config(
        ctx.args.burst_gunicorn, ctx.args.tracking_server
    )
    if application == ASGI_APPLICATION:
        shape = f"{workers} workers ({worker_class})"
    else:
        shape = f"{workers} workers × {threads} threads ({worker_class})"
    server = f"gunicorn {application}, {shape}"
    port = free_port()
    log_path = db.data_dir() / "bench-tracking-gunicorn.log"
    process = start_gunicorn(
        port,
        log_path,
        workers=workers,
        threads=threads,
        worker_class=worker_class,
        application=application,
    )
    flusher = _Flusher()
    try:
        wait_ready(port, process)
        warmup = requests[-2000:]
        burst(port, warmup, clients=ctx.args.burst_clients, duration=2, name="warmup")
        _quiesce(ctx)
        tracking.tracking_flush(hold_seconds=0)
        _reset(ctx, campaign_id)
        connections.close_all()
        meter = _CpuMeter(ctx, process)
        meter.start()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        flusher.start()
        result = burst(
            port, requests, clients=ctx.args.burst_clients, duration=ctx.args.duration, name="burst"
        )
        done = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = meter.stop()
        cpu["wrk"] = done.ru_utime + done.ru_stime - children.ru_utime - children.ru_stime
    finally:
        flusher.stopping.set()
        flusher.join(60)
        process.terminate()
        process.wait(15)
    cpu["flush"] = flusher.cpu
    cpu["postgres (flush)"] = flusher.backend_cpu
    began = time.perf_counter()
    final = tracking.tracking_flush(hold_seconds=0)
    final_seconds = time.perf_counter() - began
    counts = dict(
        raw.execute(
            "SELECT kind, count(*) FROM analytics_engagementevent WHERE campaign_id = %s "
            "AND kind IN ('opened', 'clicked', 'unsubscribed') GROUP BY kind",
            [campaign_id],
        ).fetchall()
    )
    machine = raw.execute(
        "SELECT count(*) FROM analytics_engagementevent WHERE campaign_id = %s AND is_machine",
        [campaign_id],
    ).fetchone()[0]
    unsubscribed = {
        row[0]
        for row in raw.execute(
            "SELECT candidate_id FROM campaigns_candidateemailpreference "
            "WHERE organization_id = %s AND unsubscribed_at IS NOT NULL",
            [ctx.org_id],
        ).fetchall()
    }
    answered_unsubscribes = _unsubscribed_candidates(result["unsubscribed"])
    left = tracking.buffered_count()
    ok = result["ok"]
    # Lost: answered, but not in the database. Every answered unsubscribe must be an
    # unsubscribed candidate with exactly one "unsubscribed" event.
    lost = (
        max(0, ok.get("open", 0) - counts.get("opened", 0))
        + max(0, ok.get("click", 0) - counts.get("clicked", 0))
        + len(answered_unsubscribes - unsubscribed)
    )
    duplicated = counts.get("unsubscribed", 0) - len(unsubscribed)
    # Recorded without an answer counted: requests in flight when wrk stopped (at most one
    # per connection) were served, but wrk no longer read their answers.
    in_flight = (
        counts.get("opened", 0)
        - ok.get("open", 0)
        + counts.get("clicked", 0)
        - ok.get("click", 0)
        + len(unsubscribed - answered_unsubscribes)
    )
    consistent = duplicated == 0 and 0 <= in_flight <= ctx.args.burst_clients
    latency = result["latency_ms"]
    cpu_total = sum(cpu.values())
    cpu_per_request = cpu_total * 1000 / max(result["requests"], 1)
    cpu_text = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in cpu.items())
    flushed = flusher.written + final.written
    wrapped = result["requests"] / result["listed"]
    note = (
        f"{result['rps']:,.0f} req/s over {result['wall']:.1f} s, {ctx.args.burst_clients} "
        f"keep-alive connections from wrk ({min(WRK_THREADS, ctx.args.burst_clients)} threads), "
        f"{result['requests']:,} requests over a list of {result['listed']:,} "
        f"({wrapped:.2f} passes); answered: {ok}; errors: {result['errors'] or 0}"
        + (f", socket errors {result['socket_errors']}" if result["socket_errors"] else "")
        + f"; p50 {latency[50.0]:.1f} / p90 {latency[90.0]:.1f} / p95 {latency[95.0]:.1f} / "
        f"p99 {latency[99.0]:.1f} / p99.9 {latency[99.9]:.1f} / max {latency['max']:.0f} ms; "
        f"events in the database: {counts} ({machine} flagged machine); unsubscribed "
        f"candidates {len(unsubscribed)}, {len(answered_unsubscribes)} distinct tokens answered;"
        f" lost {lost}; recorded for requests in flight at the end {in_flight}; duplicate "
        f"unsubscribe events {duplicated}; left in the buffer {left}; flushed {flushed:,} events "
        f"({flusher.written:,} during the burst in {flusher.seconds:.1f} s of flushing, the rest"
        f" in {final_seconds:.1f} s after it); {server}; CPU during the burst: {cpu_text} = {cpu_total:.1f} s of "
        f"{2 * result['wall']:.1f} core-seconds, {cpu_per_request:.2f} ms per request (two idle "
        f"cores would answer ~{2000 / cpu_per_request:,.0f} req/s at this cost)"
    )
    percentiles = {50: latency[50.0], 95: latency[95.0], 99: latency[99.0]}
    rows = [
        Row(
            "tracking burst: open/click/unsubscribe",
            target=f"≥ {TARGET_RPS:,} req/s",
            rate=result["rps"],
            rate_target=TARGET_RPS,
            note=note,
            percentiles=percentiles,
            count=result["requests"],
        ),
        Row(
            "tracking burst: p99 latency",
            target=f"p99 ≤ {TARGET_P99_MS} ms",
            status="PASS" if latency[99.0] <= TARGET_P99_MS else "MISS",
            percentiles=percentiles,
            count=result["requests"],
        ),
        Row(
            "tracking burst: events lost",
            target="0 lost",
            status="PASS" if lost == 0 and left == 0 and consistent else f"MISS ({lost})",
        ),
    ]
    return rows
