"""The tracking burst: open pixels, click redirects and one-click unsubscribe POSTs against
gunicorn on loopback, as right after a big send, while the tracking flush runs every 2 s like
beat would. Then every answered request is checked against the database: each 200 pixel and
each 302 click must be exactly one EngagementEvent, each 200 unsubscribe an unsubscribed
candidate ("zero lost events").

The load generator runs in LOAD_PROCESSES processes of threads with http.client keep-alive
connections (standard library), on the same two cores as gunicorn, Postgres and Redis.
"""

from __future__ import annotations

import http.client
import multiprocessing
import re
import threading
import time
from pathlib import Path

from bench.report import Row, percentile

BASE_DIR = Path(__file__).resolve().parent.parent
BURST_MESSAGES = 20_000
LOAD_PROCESSES = 2
GUNICORN_WORKERS = 3
GUNICORN_THREADS = 8
TARGET_RPS = 2000
TARGET_P99_MS = 50
HUMAN = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko)"
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
        [campaign_id, BURST_MESSAGES],
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


def _load_process(args) -> dict:
    port, requests, clients, duration, offset = args
    results = {"latencies": [], "ok": {}, "errors": {}, "unsubscribed": []}
    lock = threading.Lock()
    deadline = time.perf_counter() + duration
    body = "List-Unsubscribe=One-Click"

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        position = offset + index
        latencies, ok, errors, unsubscribed = [], {}, {}, []
        while time.perf_counter() < deadline:
            kind, method, path = requests[position % len(requests)]
            position += clients * LOAD_PROCESSES
            began = time.perf_counter()
            try:
                if method == "POST":
                    conn.request(
                        "POST",
                        path,
                        body,
                        {
                            "Content-Type": "application/x-www-form-urlencoded",
                            "User-Agent": HUMAN,
                        },
                    )
                else:
                    conn.request("GET", path, headers={"User-Agent": HUMAN})
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
            latencies.append((time.perf_counter() - began) * 1000)
            expected = {"open": 200, "click": 302, "unsubscribe": 200}[kind]
            if status == expected:
                ok[kind] = ok.get(kind, 0) + 1
                if kind == "unsubscribe":
                    unsubscribed.append(path)
            else:
                errors[f"{kind}:{status}"] = errors.get(f"{kind}:{status}", 0) + 1
        conn.close()
        with lock:
            results["latencies"].extend(latencies)
            results["unsubscribed"].extend(unsubscribed)
            for key, value in ok.items():
                results["ok"][key] = results["ok"].get(key, 0) + value
            for key, value in errors.items():
                results["errors"][key] = results["errors"].get(key, 0) + value

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def burst(port: int, requests: list, *, clients: int, duration: float) -> dict:
    per_process = max(1, clients // LOAD_PROCESSES)
    context = multiprocessing.get_context("fork")
    began = time.perf_counter()
    with context.Pool(LOAD_PROCESSES) as pool:
        parts = pool.map(
            _load_process,
            [
                (port, requests, per_process, duration, i * per_process)
                for i in range(LOAD_PROCESSES)
            ],
        )
    wall = time.perf_counter() - began
    merged = {"latencies": [], "ok": {}, "errors": {}, "unsubscribed": set(), "wall": wall}
    for part in parts:
        merged["latencies"].extend(part["latencies"])
        merged["unsubscribed"].update(part["unsubscribed"])
        for key in ("ok", "errors"):
            for name, value in part[key].items():
                merged[key][name] = merged[key].get(name, 0) + value
    merged["rps"] = len(merged["latencies"]) / wall
    return merged


class _Flusher(threading.Thread):
    """Beat's every-few-seconds flush, in this process, while the burst runs."""

    def __init__(self, interval: float = 2.0):
        super().__init__(daemon=True)
        self.interval = interval
        self.stopping = threading.Event()
        self.written = 0
        self.seconds = 0.0

    def run(self) -> None:
        from django.db import connection

        from campaigns.services.tracking import tracking_flush

        while not self.stopping.wait(self.interval):
            began = time.perf_counter()
            self.written += tracking_flush().written
            self.seconds += time.perf_counter() - began
        connection.close()


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


def workload_tracking(ctx) -> list[Row]:
    from django.db import connections

    from bench.served import free_port, start_gunicorn, wait_ready
    from campaigns.services import tracking

    campaign_id = _source_campaign(ctx)
    requests = _requests(ctx, campaign_id)
    raw = ctx.raw
    tracking.tracking_flush()  # nothing left over from an earlier run
    _reset(ctx, campaign_id)
    port = free_port()
    log_path = BASE_DIR / ".data" / "bench-tracking-gunicorn.log"
    process = start_gunicorn(port, log_path, workers=GUNICORN_WORKERS, threads=GUNICORN_THREADS)
    flusher = _Flusher()
    try:
        wait_ready(port, process)
        burst(port, requests[-2000:], clients=ctx.args.burst_clients, duration=2)  # warm-up
        tracking.tracking_flush()
        _reset(ctx, campaign_id)
        connections.close_all()
        flusher.start()
        result = burst(port, requests, clients=ctx.args.burst_clients, duration=ctx.args.duration)
    finally:
        flusher.stopping.set()
        flusher.join(60)
        process.terminate()
        process.wait(15)
    began = time.perf_counter()
    final = tracking.tracking_flush()
    final_seconds = time.perf_counter() - began
    counts = dict(
        raw.execute(
            "SELECT kind, count(*) FROM analytics_engagementevent WHERE campaign_id = %s "
            "AND kind IN ('opened', 'clicked') GROUP BY kind",
            [campaign_id],
        ).fetchall()
    )
    machine = raw.execute(
        "SELECT count(*) FROM analytics_engagementevent WHERE campaign_id = %s AND is_machine",
        [campaign_id],
    ).fetchone()[0]
    unsubscribed = raw.execute(
        "SELECT count(*) FROM campaigns_candidateemailpreference WHERE organization_id = %s "
        "AND unsubscribed_at IS NOT NULL",
        [ctx.org_id],
    ).fetchone()[0]
    left = tracking.buffered_count()
    ok = result["ok"]
    lost = (
        (ok.get("open", 0) - counts.get("opened", 0))
        + (ok.get("click", 0) - counts.get("clicked", 0))
        + (len(result["unsubscribed"]) - unsubscribed)
    )
    samples = result["latencies"]
    flushed = flusher.written + final.written
    note = (
        f"{result['rps']:,.0f} req/s over {result['wall']:.1f} s, {ctx.args.burst_clients} "
        f"keep-alive clients in {LOAD_PROCESSES} processes; answered: {ok}; errors: "
        f"{result['errors'] or 0}; p50 {percentile(samples, 50):.1f} / p95 "
        f"{percentile(samples, 95):.1f} / p99 {percentile(samples, 99):.1f} ms; events in the "
        f"database: {counts} ({machine} flagged machine), unsubscribed candidates {unsubscribed}"
        f" of {len(result['unsubscribed'])} distinct tokens answered; lost {lost}; left in the "
        f"buffer {left}; flushed {flushed:,} events ({flusher.written:,} during the burst in "
        f"{flusher.seconds:.1f} s of flushing, the rest in {final_seconds:.1f} s after it); "
        f"gunicorn {GUNICORN_WORKERS} workers × {GUNICORN_THREADS} threads (gthread)"
    )
    rows = [
        Row(
            "tracking burst: open/click/unsubscribe",
            samples=samples,
            target=f"≥ {TARGET_RPS:,} req/s",
            rate=result["rps"],
            rate_target=TARGET_RPS,
            note=note,
        ),
        Row(
            "tracking burst: p99 latency",
            samples=samples,
            target=f"p99 ≤ {TARGET_P99_MS} ms",
            status="PASS" if percentile(samples, 99) <= TARGET_P99_MS else "MISS",
        ),
        Row(
            "tracking burst: events lost",
            target="0 lost",
            status="PASS" if lost == 0 and left == 0 else f"MISS ({lost})",
        ),
    ]
    return rows
