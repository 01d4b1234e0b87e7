"""The send workload: a personalised broadcast to 100,000 candidates of the benchmark
organisation, end to end — `campaign_launch` → the dispatcher task → send tasks — run by two
real Celery worker processes, (a) over SMTP into Postfix's `smtp-sink` and (b) through anymail's
Postmark backend (`campaigns.backends.PostmarkBackend`, see there) into a local mock of
Postmark's API (bench/mock_esp.py).

Timings come from the outbox itself: `Message.sent_at` of every message. "Sustained" is the
rate between the 10th and the 90th percentile of send times (ramp-up and tail left out); "first"
is the first `sent_at` after the launch began; "total" is the last one. The floor is a bare loop
over the same candidates in the same number of processes (two): render the same compiled
template, build the same MIME message (or Postmark JSON) and write it to the same sink over one
connection — no database, no Celery, no guard rails, no bookkeeping.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import smtplib
import subprocess
import sys
import time
from pathlib import Path

from bench import db
from bench.report import Row

BASE_DIR = Path(__file__).resolve().parent.parent
SMTP_SINK = "/usr/sbin/smtp-sink"
SEND_TAG = "send-bench"
WORKERS = 2
TARGET_RATE = 1000  # messages/s sustained
TARGET_FIRST_SECONDS = 2.0
FLOOR_MESSAGES = 20_000
POSTMARK_TOKEN = "bench-server-token"  # noqa: S105 — the mock ESP accepts any token

LINKS = [
    "https://careers.bench.example/roles/platform-engineer?utm_source=rapport",
    "https://careers.bench.example/roles/data-engineer?utm_source=rapport",
    "https://careers.bench.example/life-at-bench",
    "https://careers.bench.example/benefits",
    "https://calendly.bench.example/intro-call",
]
SUBJECT = "{{ first_name|default('Hello') }}, a {{ current_title|default('role') }} opening in {{ city|default('your city') }}"
PREHEADER = "{{ recruiter.name }} from {{ organization_name }} thought of you"
PARAGRAPH = (
    "Our platform team in {{ city|default('our offices') }} builds the systems that thousands of "
    "recruiters rely on every day. You would work with people who care about **reliable "
    "software**, careful reviews and calm on-call rotations, and you would have real ownership "
    "of what you build. "
)


def broadcast_body() -> str:
    """A realistic 6-10 KB personalised email: greeting, sections, a list of roles, 5 links."""
    parts = [
        'Hi {{ first_name|default("there") }},',
        "I'm {{ recruiter.name }} and I look after engineering hiring at "
        "{{ organization_name }}. Your experience as **{{ current_title|default('an engineer') }}**"
        "{% if current_company %} at {{ current_company }}{% endif %} caught my eye.",
    ]
    for index, heading in enumerate(
        ["What the team does", "How we work", "What we offer", "The hiring process"]
    ):
        parts.append(f"## {heading}")
        parts.append(PARAGRAPH * 3)
        parts.append(f"[{LINKS[index].split('/')[-1].split('?')[0]}]({LINKS[index]})")
    parts.append("## Open roles")
    parts.extend(
        f"- **{role}** — {{{{ city|default('remote') }}}}, hybrid, full time"
        for role in ["Platform Engineer", "Data Engineer", "Site Reliability Engineer", "Staff"]
    )
    parts.append(
        "{% if skills %}We noticed {{ skills|join(', ') }} on your profile: "
        "all of them are used here.{% endif %}"
    )
    parts.append(f"If you'd like to talk, [book a 20-minute call]({LINKS[4]}).")
    parts.append("Best,\n{{ recruiter.name }}\n{{ recruiter.title }}")
    return "\n\n".join(parts)


# --- the audience --------------------------------------------------------------------------------


def prepare_audience(ctx, recipients: int) -> None:
    """Exactly `recipients` candidates of the benchmark organisation carry the tag SEND_TAG
    (reachable ones: an address, not do-not-contact, not unsubscribed or suppressed)."""
    raw = ctx.raw
    raw.execute(
        "DELETE FROM campaigns_candidateemailpreference WHERE organization_id = %s", [ctx.org_id]
    )
    raw.execute("DELETE FROM campaigns_suppression WHERE organization_id = %s", [ctx.org_id])
    tagged = raw.execute(
        "SELECT count(*) FROM candidates_candidate WHERE organization_id = %s AND tags @> %s",
        [ctx.org_id, [SEND_TAG]],
    ).fetchone()[0]
    if tagged == recipients:
        return
    print(f"  tagging {recipients:,} candidates '{SEND_TAG}' (once)…", flush=True)
    raw.execute(
        "UPDATE candidates_candidate SET tags = array_remove(tags, %s) "
        "WHERE organization_id = %s AND tags @> %s",
        [SEND_TAG, ctx.org_id, [SEND_TAG]],
    )
    raw.execute(
        """
        UPDATE candidates_candidate SET tags = tags || ARRAY[%s]::varchar[]
        WHERE id IN (
            SELECT id FROM candidates_candidate
            WHERE organization_id = %s AND email <> '' AND status <> 'do_not_contact'
              AND merged_into_id IS NULL
            ORDER BY id LIMIT %s
        )
        """,
        [SEND_TAG, ctx.org_id, recipients],
    )
    raw.execute("ANALYZE candidates_candidate")


def cleanup_campaigns(ctx) -> None:
    """Remove earlier send-benchmark campaigns (their messages, events and timeline entries)."""
    raw = ctx.raw
    ids = [
        row[0]
        for row in raw.execute(
            "SELECT id FROM campaigns_campaign WHERE organization_id = %s AND name LIKE 'Send bench%%'",
            [ctx.org_id],
        ).fetchall()
    ]
    if not ids:
        return
    raw.execute("DELETE FROM analytics_engagementevent WHERE campaign_id = ANY(%s)", [ids])
    raw.execute(
        "DELETE FROM candidates_activity WHERE organization_id = %s AND kind LIKE 'email%%' "
        "AND (data->>'campaign_id')::int = ANY(%s)",
        [ctx.org_id, ids],
    )
    raw.execute("DELETE FROM campaigns_message WHERE campaign_id = ANY(%s)", [ids])
    for table in (
        "campaigns_enrollment",
        # Batches a launch had not enrolled yet (a run stopped halfway through its send).
        "campaigns_audiencebatch",
        "campaigns_step",
        "campaigns_campaign_saved_searches",
        "campaigns_campaign_excluded_saved_searches",
    ):
        raw.execute(f"DELETE FROM {table} WHERE campaign_id = ANY(%s)", [ids])
    raw.execute("DELETE FROM campaigns_campaign WHERE id = ANY(%s)", [ids])
    raw.execute("VACUUM ANALYZE campaigns_message")


def create_campaign(ctx, label: str):
    from django_scopes import scope

    from campaigns.models import Campaign, EmailSettings, Step
    from campaigns.services.domains import sending_domain_mark_verified
    from candidates.models import SavedSearch
    from crm.models import Organization

    organization = Organization.objects.get(pk=ctx.org_id)
    if not organization.postal_address.strip() or not organization.sender_email:
        organization.postal_address = organization.postal_address or "1 Bench Street\nLondon"
        organization.sender_email = organization.sender_email or "talent@bench.rapport.test"
        organization.save(update_fields=["postal_address", "sender_email"])
    with scope(organization=organization):
        # The benchmark's own organisation: its sender domain counts as verified (no DNS).
        sending_domain_mark_verified(organization=organization)
        # The benchmark measures the path, not the organisation's throttle (30,000/min default).
        EmailSettings.objects.update_or_create(
            organization=organization, defaults={"messages_per_minute": 10_000_000}
        )
        search, _ = SavedSearch.objects.get_or_create(
            organization=organization,
            owner=ctx.user,
            name="Send bench audience",
            defaults={"query": {"tags": [SEND_TAG]}},
        )
        campaign = Campaign.objects.create(
            organization=organization,
            name=f"Send bench {label}",
            sender=ctx.user,
            created_by=ctx.user,
        )
        campaign.saved_searches.set([search])
        Step.objects.create(
            organization=organization,
            campaign=campaign,
            position=1,
            subject=SUBJECT,
            preheader=PREHEADER,
            body_markdown=broadcast_body(),
        )
    return organization, campaign


# --- the sinks and the workers -------------------------------------------------------------------


def start_smtp_sink(port: int, log_path: Path) -> subprocess.Popen | None:
    if not Path(SMTP_SINK).exists():
        return None
    log = log_path.open("w")
    # -c: a running count of delivered messages; backlog 256. As root it must drop privileges.
    command = [SMTP_SINK, "-c", f"127.0.0.1:{port}", "256"]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "nobody"]
    return subprocess.Popen(command, stdout=log, stderr=log, cwd=BASE_DIR)


def start_mock_esp(port: int, log_path: Path) -> subprocess.Popen:
    log = log_path.open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "bench.mock_esp", str(port)], stdout=log, stderr=log, cwd=BASE_DIR
    )


def wait_port(port: int, timeout: float = 15) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def esp_count(port: int) -> dict:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/count")
    counts = json.loads(conn.getresponse().read())
    conn.close()
    return counts


def backend_env(kind: str, port: int) -> dict:
    if kind == "smtp":
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(port),
            "EMAIL_USE_TLS": "0",
        }
    return {
        # anymail's Postmark backend as deployments should name it (campaigns/backends.py).
        "EMAIL_BACKEND": "campaigns.backends.PostmarkBackend",
        "ANYMAIL_POSTMARK_SERVER_TOKEN": POSTMARK_TOKEN,
        "ANYMAIL_POSTMARK_API_URL": f"http://127.0.0.1:{port}/",
    }


def start_workers(env: dict, log_dir: Path) -> list[subprocess.Popen]:
    """Two Celery worker processes (solo pool: one process each, no prefork parent)."""
    workers = []
    for index in range(WORKERS):
        log_path = log_dir / f"bench-send-worker{index}.log"
        log_path.unlink(missing_ok=True)
        log = log_path.open("w")
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "crm",
            "worker",
            "-P",
            "solo",
            "-Q",
            "email,default",
            "-n",
            f"benchsend{index}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "info",
        ]
        workers.append(subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=log))
    deadline = time.monotonic() + 60
    for index, worker in enumerate(workers):
        log_path = log_dir / f"bench-send-worker{index}.log"
        while "ready." not in log_path.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker {index} did not start: see {log_path}")
            time.sleep(0.2)
    return workers


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.terminate()
    for process in processes:
        if process is None:
            continue
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def purge_broker() -> None:
    from crm.celery import app

    with app.connection_for_write() as connection:
        for queue in ("email", "default"):
            # A queue that does not exist yet has nothing to purge.
            with contextlib.suppress(Exception):
                connection.default_channel.queue_purge(queue)


# --- one run ------------------------------------------------------------------------------------


def run_broadcast(ctx, kind: str, port: int, *, timeout: float) -> dict:
    from django.db import connection
    from django.utils import timezone
    from django_scopes import scope

    from campaigns.models import Message
    from campaigns.services.campaigns import campaign_launch

    organization, campaign = create_campaign(ctx, kind)
    env = {**os.environ, **backend_env(kind, port)}
    purge_broker()
    workers = start_workers(env, db.data_dir())
    try:
        connection.close()
        started = timezone.now()
        began = time.perf_counter()
        with scope(organization=organization):
            enrolled = campaign_launch(campaign=campaign, user=ctx.user)
        launched = time.perf_counter() - began
        # Poll the campaign's own status: the send task marks it done once nothing is left in
        # the outbox (`campaigns_finish`). Counting the messages by status instead cost the
        # database ~50 ms a poll at 100,000 messages, ~170 µs per message sent: CPU taken
        # from the two cores being measured.
        while time.perf_counter() - began < timeout:
            time.sleep(0.5)
            status = ctx.raw.execute(
                "SELECT status FROM campaigns_campaign WHERE id = %s", [campaign.pk]
            ).fetchone()[0]
            if status == "done":
                break
        wall = time.perf_counter() - began
    finally:
        stop(workers)
    counts = dict(
        ctx.raw.execute(
            "SELECT status, count(*) FROM campaigns_message "
            "WHERE organization_id = %s AND campaign_id = %s GROUP BY status",
            [ctx.org_id, campaign.pk],
        ).fetchall()
    )
    times = [
        row[0]
        for row in ctx.raw.execute(
            "SELECT sent_at FROM campaigns_message WHERE organization_id = %s AND campaign_id = %s"
            " AND sent_at IS NOT NULL ORDER BY sent_at",
            [ctx.org_id, campaign.pk],
        ).fetchall()
    ]
    created = ctx.raw.execute(
        "SELECT max(created_at), avg(length(html)), count(*) FROM campaigns_message "
        "WHERE organization_id = %s AND campaign_id = %s",
        [ctx.org_id, campaign.pk],
    ).fetchone()
    result = {
        "kind": kind,
        "campaign_id": campaign.pk,
        "enrolled": enrolled,
        "launch_seconds": launched,
        "wall": wall,
        "counts": counts,
        "sent": len(times),
        "html_bytes": float(created[1] or 0),
        "dispatch_seconds": (created[0] - started).total_seconds() if created[0] else None,
    }
    if times:
        low, high = times[len(times) // 10], times[(len(times) * 9) // 10]
        span = (high - low).total_seconds()
        result.update(
            first=(times[0] - started).total_seconds(),
            total=(times[-1] - started).total_seconds(),
            sustained=(len(times) * 8 / 10) / span if span > 0 else None,
            overall=len(times) / max((times[-1] - started).total_seconds(), 1e-9),
        )
    with scope(organization=organization):
        sample = Message.objects.filter(campaign=campaign).exclude(sent_at=None).first()
        result["sample"] = sample.html if sample else ""
    result["started"] = started
    return result


# --- the floor ----------------------------------------------------------------------------------


def _floor_worker(args) -> int:
    """One floor process: render each candidate's email with the same compiled template, build
    the MIME message (SMTP) or the Postmark JSON (ESP) and write it over ONE connection."""
    kind, port, rows, sample_layout = args
    import http.client
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    from campaigns.services import rendering

    compiled = rendering.email_compile(
        subject=SUBJECT, preheader=PREHEADER, body_markdown=broadcast_body()
    )
    head, tail = sample_layout
    recruiter = {"name": "Sam Sender", "title": "Talent Partner", "email": "sam@bench.test"}
    links = {"unsubscribe_url": "https://x/e/u/t/", "preferences_url": "https://x/e/p/t/"}

    class _Org:
        name = "Bench Talent (1M)"

    if kind == "smtp":
        smtp = smtplib.SMTP("127.0.0.1", port)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port)
    for values in rows:
        context = rendering.merge_context(
            rendering.merge_source(
                candidate=values, organization=_Org, recruiter=recruiter, links=links
            )
        )
        rendered = rendering.email_render(compiled, context)
        html = head + rendered.html_body + tail
        if kind == "smtp":
            message = MIMEMultipart("alternative")
            message["Subject"] = rendered.subject
            message["From"] = "Bench <talent@bench.rapport.test>"
            message["To"] = values["email"]
            message.attach(MIMEText(rendered.text_body, "plain", "utf-8"))
            message.attach(MIMEText(html, "html", "utf-8"))
            smtp.sendmail("talent@bench.rapport.test", [values["email"]], message.as_bytes())
        else:
            body = json.dumps(
                {
                    "From": "Bench <talent@bench.rapport.test>",
                    "To": values["email"],
                    "Subject": rendered.subject,
                    "HtmlBody": html,
                    "TextBody": rendered.text_body,
                }
            ).encode()
            conn.request(
                "POST",
                "/email",
                body,
                {"Content-Type": "application/json", "X-Postmark-Server-Token": POSTMARK_TOKEN},
            )
            conn.getresponse().read()
    if kind == "smtp":
        smtp.quit()
    else:
        conn.close()
    return len(rows)


def run_floor(ctx, kind: str, port: int, sample_html: str) -> float:
    """Messages per second of the bare loop in WORKERS processes."""
    rows = [
        {
            "email": r[0],
            "first_name": r[1],
            "last_name": r[2],
            "current_title": r[3],
            "current_company": r[4],
            "skills": r[5],
            "city": r[6],
            "country": r[7],
            "custom_fields": r[8] or {},
        }
        for r in ctx.raw.execute(
            "SELECT email, first_name, last_name, current_title, current_company, skills, city,"
            " country, custom_fields FROM candidates_candidate"
            " WHERE organization_id = %s AND tags @> %s ORDER BY id LIMIT %s",
            [ctx.org_id, [SEND_TAG], FLOOR_MESSAGES],
        ).fetchall()
    ]
    # The same layout bytes around the body as the real messages have.
    marker = "<p>Hi "
    split = sample_html.find(marker)
    head, tail = (sample_html[:split], sample_html[split + 2000 :]) if split > 0 else ("", "")
    chunks = [rows[i::WORKERS] for i in range(WORKERS)]
    context = multiprocessing.get_context("fork")
    from django.db import connections

    connections.close_all()
    began = time.perf_counter()
    with context.Pool(WORKERS) as pool:
        sent = sum(pool.map(_floor_worker, [(kind, port, c, (head, tail)) for c in chunks]))
    return sent / (time.perf_counter() - began)


# --- the workload -------------------------------------------------------------------------------


def workload_send(ctx) -> list[Row]:
    from bench.served import free_port

    recipients = ctx.args.send_recipients
    if not Path(SMTP_SINK).exists() or shutil.which("smtp-sink", path="/usr/sbin") is None:
        print("  send: smtp-sink is missing — install Postfix (apt-get install postfix).")
    prepare_audience(ctx, recipients)
    rows = []
    for kind, label in (("smtp", "SMTP → smtp-sink"), ("esp", "anymail Postmark → mock ESP")):
        cleanup_campaigns(ctx)
        port = free_port()
        log_path = db.data_dir() / f"bench-send-{kind}-sink.log"
        sink = start_smtp_sink(port, log_path) if kind == "smtp" else start_mock_esp(port, log_path)
        if sink is None:
            rows.append(Row(f"send {label}", status="no smtp-sink"))
            continue
        try:
            wait_port(port)
            result = run_broadcast(ctx, kind, port, timeout=ctx.args.send_timeout)
            received = esp_count(port)["emails"] if kind == "esp" else None
            floor = run_floor(ctx, kind, port, result["sample"])
        finally:
            stop([sink])
        rows.extend(send_rows(label, result, floor, received))
        print(f"  {label}: {rows[-2].note}", flush=True)
    # The last broadcast stays: the tracking workload bursts opens and clicks on it.
    return rows


def send_rows(label: str, result: dict, floor: float, received: int | None) -> list[Row]:
    sustained = result.get("sustained") or 0.0
    note = (
        f"{result['sent']:,}/{result['enrolled']:,} sent; launch (enrolment) "
        f"{result['launch_seconds']:.1f} s; first email {result.get('first', float('nan')):.2f} s"
        f" after launch; all rendered by {result['dispatch_seconds'] or 0:.0f} s; total "
        f"{result.get('total', float('nan')):.0f} s ({result.get('overall', 0):,.0f} msg/s"
        f" overall); sustained (p10–p90) {sustained:,.0f} msg/s; floor (bare render + write, "
        f"{WORKERS} processes) {floor:,.0f} msg/s = {sustained / floor if floor else 0:.2f} of "
        f"the floor; HTML {result['html_bytes'] / 1024:.1f} KB; statuses {result['counts']}"
        + (f"; mock ESP received {received:,}" if received is not None else "")
    )
    throughput = Row(
        f"send {label}: msg/s sustained",
        target=f"≥ {TARGET_RATE:,} msg/s",
        rate=sustained,
        rate_target=TARGET_RATE,
        note=note,
    )
    first = result.get("first")
    first_row = Row(
        f"send {label}: first email after launch",
        samples=[first * 1000] if first is not None else [],
        target=f"≤ {TARGET_FIRST_SECONDS:.0f} s",
        target_ms=TARGET_FIRST_SECONDS * 1000,
    )
    return [throughput, first_row]
