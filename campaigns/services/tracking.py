"""Open and click tracking: answer at once, record in batches.

**Requests.** The open pixel and the click redirect verify the signed token (an HMAC, no
database), push one small JSON event onto a Redis list (one RPUSH) and answer. The click also
reads the message's stored links (one indexed query by primary key): the redirect only ever goes
to a link the email contained (Message.links, by index in the signed token), so there is no URL
in the request and no open redirect. Every tracked email also carries one invisible *trap link*
(TRAP_LINK_INDEX) that no person can see or reach: whatever follows it is a machine.

**Flushing.** `tracking_flush` (Celery beat, every few seconds) takes a batch off the list,
classifies it and writes it in one transaction: one INSERT of EngagementEvents, one UPDATE of
the messages' first open/click, one INSERT of timeline entries. It is crash-safe and idempotent:

* the batch is moved atomically (one Lua script) to a *processing* list, so a flusher
  that dies leaves its batch there, and the next flush processes that list before taking more;
* the processing list is deleted only after the transaction committed, and every event carries
  a unique key stored with its row (``ON CONFLICT DO NOTHING``), so a batch written but not yet
  acknowledged is written again as a no-op; first opens/clicks are ``WHERE opened_at IS NULL``
  updates whose RETURNING decides the timeline entries, so those are not repeated either;
* one flusher at a time (a Redis lock that expires, so a dead flusher's lock does not block).

**Machines.** Events from privacy proxies (Apple Mail Privacy Protection, Google's image proxy,
Yahoo's), security scanners (known user agents; anything seconds after the message was sent),
clicks on several links within a second, and the trap link (and the clicks around it) are stored
with ``is_machine`` and the reason; they never set ``opened_at``/``clicked_at`` and so never
count as engagement. Campaign statistics show them separately.
"""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import connection, transaction
from django_scopes import scopes_disabled

from analytics.models import EngagementEvent
from campaigns.models import EmailSettings, Message
from campaigns.services import tokens
from candidates.models import Activity

# The invisible link in every tracked email (see messages.message_build). Base 36 "rr".
TRAP_LINK_INDEX = 999
MACHINE_SECONDS_AFTER_SEND = 5
MACHINE_CLICK_BURST_SECONDS = 1
MACHINE_CLICK_BURST_LINKS = 3  # clicks on this many links of one email within the burst window
TRAP_NEIGHBOUR_SECONDS = 10  # clicks this close to a trap click come from the same scanner
FLUSH_BATCH = 5000
FLUSH_LOCK_SECONDS = 120
# User agents of proxies and link scanners that fetch on their own (not a person opening).
SCANNER_USER_AGENTS = (
    "barracuda",
    "mimecast",
    "proofpoint",
    "symantec",
    "trendmicro",
    "ironport",
    "safelinks",
    "bingpreview",
    "python-requests",
    "curl/",
    "wget/",
    "go-http-client",
    "headlesschrome",
)
# Apple's own 17.0.0.0/8; Mail Privacy Protection also fetches with the bare "Mozilla/5.0".
APPLE_NETWORKS = (ipaddress.ip_network("17.0.0.0/8"),)


# --- the buffer -------------------------------------------------------------------------------


def _buffer_key() -> str:
    """The Redis list of buffered events (with the cache's key prefix, so the benchmark's and
    each test's buffers are their own)."""
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:campaigns:tracking"


def _processing_key() -> str:
    return _buffer_key() + ":processing"


@lru_cache(maxsize=4)
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def _redis() -> redis.Redis:
    return _client_for(settings.REDIS_URL)


def _push(event: dict) -> None:
    event["id"] = uuid.uuid4().hex
    event["t"] = time.time()
    _redis().rpush(_buffer_key(), json.dumps(event, separators=(",", ":")))


def buffered_count() -> int:
    """Events waiting to be flushed (both lists)."""
    pipe = _redis().pipeline(transaction=False)
    pipe.llen(_buffer_key())
    pipe.llen(_processing_key())
    return sum(pipe.execute())


# --- the requests -------------------------------------------------------------------------------


def open_record(*, token: str, user_agent: str, ip: str = "") -> bool:
    """Buffer an open if the token is good (no database work). Returns whether it was."""
    content = tokens.token_read(token, salt=tokens.OPEN_SALT)
    if content is None or not content.message_id:
        return False
    _push(
        {
            "k": "opened",
            "o": content.organization_id,
            "c": content.candidate_id,
            "m": content.message_id,
            "ua": (user_agent or "")[:300],
            "ip": ip[:45],
        }
    )
    return True


def safe_redirect_target(url: str) -> str | None:
    """Only absolute http(s) URLs with a host; anything else is refused."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or "\\" in url:
        return None
    if any(ord(char) < 32 for char in url):
        return None
    return url


@dataclass(frozen=True)
class ClickOutcome:
    target: str | None  # where to redirect; None for the trap link
    is_trap: bool = False


# The message's links, only if the token's organisation and candidate are the message's
# (tenant scoping by construction: the WHERE clause names all three). Plain SQL: the ORM
# would spend ~0.5 ms of CPU compiling this one-row query on every click of a burst.
_LINKS_SQL = (
    "SELECT links FROM campaigns_message WHERE id = %s AND organization_id = %s "
    "AND candidate_id = %s"
)


def _message_links(content: tokens.LinkToken) -> list | None:
    with connection.cursor() as cursor:
        cursor.execute(
            _LINKS_SQL, [content.message_id, content.organization_id, content.candidate_id]
        )
        row = cursor.fetchone()
    if row is None:
        return None
    links = row[0]
    return json.loads(links) if isinstance(links, str) else links


def click_record(*, token: str, user_agent: str, ip: str = "") -> ClickOutcome | None:
    """Where to send the click (buffering the event), or None for a bad token or link."""
    content = tokens.token_read(token, salt=tokens.CLICK_SALT)
    if content is None or not content.message_id:
        return None
    links = _message_links(content)
    if links is None:
        return None
    index = content.link_index
    if index == TRAP_LINK_INDEX:
        target = None
    elif index < len(links):
        target = safe_redirect_target(links[index])
        if target is None:
            return None
    else:
        return None
    _push(
        {
            "k": "clicked",
            "o": content.organization_id,
            "c": content.candidate_id,
            "m": content.message_id,
            "l": index,
            "ua": (user_agent or "")[:300],
            "ip": ip[:45],
        }
    )
    return ClickOutcome(target=target, is_trap=target is None)


# --- classification -----------------------------------------------------------------------------


def _in_apple_network(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in APPLE_NETWORKS)


def machine_reason(*, user_agent: str, ip: str, sent_at: datetime | None, at: datetime) -> str:
    """Why one open or click looks automated ("" when it looks like a person)."""
    agent = (user_agent or "").strip()
    lowered = agent.lower()
    if not agent:
        return "no_user_agent"
    if "googleimageproxy" in lowered or "ggpht.com" in lowered:
        return "google_image_proxy"
    if agent == "Mozilla/5.0" or _in_apple_network(ip):
        return "apple_privacy_proxy"
    if "yahoomailproxy" in lowered:
        return "proxy_user_agent"
    if any(marker in lowered for marker in SCANNER_USER_AGENTS):
        return "scanner_user_agent"
    if sent_at and at - sent_at < timedelta(seconds=MACHINE_SECONDS_AFTER_SEND):
        return "seconds_after_send"
    return ""


def _click_reasons(clicks: list[dict]) -> None:
    """Clicks of one message, in time order: mark the trap link, the clicks around it, and
    bursts over several links within a second (sets event["reason"] where empty)."""
    trap_times = [c["at"] for c in clicks if c["l"] == TRAP_LINK_INDEX]
    burst = timedelta(seconds=MACHINE_CLICK_BURST_SECONDS)
    near = timedelta(seconds=TRAP_NEIGHBOUR_SECONDS)
    for click in clicks:
        if click["l"] == TRAP_LINK_INDEX:
            click["reason"] = "trap_link"
            continue
        if click["reason"]:
            continue
        if any(abs(click["at"] - t) <= near for t in trap_times):
            click["reason"] = "trap_link_scanner"
            continue
        links = {
            other["l"]
            for other in clicks
            if abs(other["at"] - click["at"]) <= burst and other["l"] != TRAP_LINK_INDEX
        }
        if len(links) >= MACHINE_CLICK_BURST_LINKS:
            click["reason"] = "many_links_at_once"


# --- flushing -----------------------------------------------------------------------------------


@dataclass
class FlushReport:
    batches: int = 0
    events: int = 0
    written: int = 0
    machine: int = 0
    dropped: int = 0  # unknown message, or opens of an organisation that switched them off
    first_opens: int = 0
    first_clicks: int = 0
    locked: bool = False  # another flusher was running
    reasons: dict = field(default_factory=dict)


def tracking_batch_claim(*, size: int = FLUSH_BATCH) -> list[bytes]:
    """The batch to write: what a dead flusher left in the processing list, else up to `size`
    events moved there atomically from the buffer."""
    client = _redis()
    left = client.lrange(_processing_key(), 0, -1)
    if left:
        return left
    return _claim_script(client)(keys=[_buffer_key(), _processing_key()], args=[size])


# Move up to ARGV[1] events from the head of the buffer to the processing list, atomically (a
# script runs alone in Redis): one round trip whatever the batch size. It replaces a MULTI of
# `size` LMOVEs, which cost ~0.1 s of CPU per claim even when a few events were waiting.
_CLAIM_LUA = """
local events = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
for i = 1, #events, 1000 do
    redis.call('RPUSH', KEYS[2], unpack(events, i, math.min(i + 999, #events)))
end
if #events > 0 then
    redis.call('LTRIM', KEYS[1], #events, -1)
end
return events
"""


@lru_cache(maxsize=4)
def _claim_script(client: redis.Redis):
    return client.register_script(_CLAIM_LUA)


def tracking_batch_ack() -> None:
    """The batch is committed: forget it."""
    _redis().delete(_processing_key())


def tracking_batch_write(raw_events: list[bytes], report: FlushReport | None = None) -> FlushReport:
    """Classify and write one batch in one transaction. Writing the same batch twice changes
    nothing the second time."""
    report = report or FlushReport()
    events = [json.loads(raw) for raw in raw_events]
    report.events += len(events)
    if not events:
        return report
    with scopes_disabled(), transaction.atomic():
        messages = {
            m["pk"]: m
            for m in Message.objects.filter(pk__in={e["m"] for e in events}).values(
                "pk", "organization_id", "candidate_id", "campaign_id", "sent_at", "subject"
            )
        }
        no_opens = set(
            EmailSettings.objects.filter(
                organization_id__in={e["o"] for e in events}, track_opens=False
            ).values_list("organization_id", flat=True)
        )
        kept = []
        for event in events:
            message = messages.get(event["m"])
            if (
                message is None
                or message["organization_id"] != event["o"]
                or message["candidate_id"] != event["c"]
                or (event["k"] == "opened" and event["o"] in no_opens)
            ):
                report.dropped += 1
                continue
            event["at"] = datetime.fromtimestamp(event["t"], tz=UTC)
            event["l"] = event.get("l", 0)
            event["reason"] = machine_reason(
                user_agent=event["ua"], ip=event["ip"], sent_at=message["sent_at"], at=event["at"]
            )
            kept.append(event)
        _classify_clicks(kept)
        # Events of a batch written before (a flusher died before acknowledging it) are not
        # written again; ON CONFLICT DO NOTHING covers a race with another writer.
        already = set(
            EngagementEvent.objects.filter(
                organization_id__in={e["o"] for e in kept},
                source_key__in=[e["id"] for e in kept],
            ).values_list("source_key", flat=True)
        )
        rows = [_event_row(e, messages[e["m"]]) for e in kept if e["id"] not in already]
        EngagementEvent.objects.bulk_create(rows, ignore_conflicts=True, batch_size=5000)
        report.written += len(rows)
        for event in kept:
            if event["reason"]:
                report.machine += 1
                report.reasons[event["reason"]] = report.reasons.get(event["reason"], 0) + 1
        _record_firsts(kept, messages, report)
    return report


def _classify_clicks(events: list[dict]) -> None:
    clicks_by_message: dict[int, list[dict]] = defaultdict(list)
    for event in events:
        if event["k"] == "clicked":
            clicks_by_message[event["m"]].append(event)
    if not clicks_by_message:
        return
    # Clicks of the same messages written by earlier batches count towards bursts and traps.
    earliest = min(e["at"] for clicks in clicks_by_message.values() for e in clicks)
    earlier = EngagementEvent.objects.filter(
        message_id__in=list(clicks_by_message),
        kind=EngagementEvent.Kind.CLICKED,
        occurred_at__gte=earliest - timedelta(seconds=TRAP_NEIGHBOUR_SECONDS),
    ).exclude(source_key__in=[e["id"] for clicks in clicks_by_message.values() for e in clicks])
    for row in earlier.values("message_id", "occurred_at", "data"):
        index = (row["data"] or {}).get("link_index", 0)
        clicks_by_message[row["message_id"]].append(
            {"l": index, "at": row["occurred_at"], "reason": "earlier", "earlier": True}
        )
    for clicks in clicks_by_message.values():
        clicks.sort(key=lambda c: c["at"])
        _click_reasons(clicks)


def _event_row(event: dict, message: dict) -> EngagementEvent:
    data = {"user_agent": event["ua"]}
    if event["k"] == "clicked":
        data["link_index"] = event["l"]
    return EngagementEvent(
        organization_id=event["o"],
        candidate_id=event["c"],
        campaign_id=message["campaign_id"],
        message_id=event["m"],
        kind=event["k"],
        occurred_at=event["at"],
        is_machine=bool(event["reason"]),
        machine_reason=event["reason"][:64],
        source_key=event["id"],
        data=data,
    )


_FIRST_SQL = """
UPDATE campaigns_message AS m SET {column} = v.at
FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::timestamptz[]) AS at) AS v
WHERE m.id = v.id AND m.{column} IS NULL
RETURNING m.id
"""


def _record_firsts(events: list[dict], messages: dict, report: FlushReport) -> None:
    """The first human open and click of each message: set on the Message (one UPDATE each) and,
    only for the rows that UPDATE changed, a timeline entry (one INSERT)."""
    activities = []
    for kind, column, activity_kind, verb in (
        ("opened", "opened_at", Activity.Kind.EMAIL_OPENED, "Opened"),
        ("clicked", "clicked_at", Activity.Kind.EMAIL_CLICKED, "Clicked a link in"),
    ):
        first: dict[int, datetime] = {}
        for event in events:
            if event["k"] == kind and not event["reason"]:
                first[event["m"]] = min(first.get(event["m"], event["at"]), event["at"])
        if not first:
            continue
        with connection.cursor() as cursor:
            cursor.execute(
                _FIRST_SQL.format(column=column), [list(first), [first[pk] for pk in first]]
            )
            changed = [row[0] for row in cursor.fetchall()]
        if kind == "opened":
            report.first_opens += len(changed)
        else:
            report.first_clicks += len(changed)
        for pk in changed:
            message = messages[pk]
            activities.append(
                Activity(
                    organization_id=message["organization_id"],
                    candidate_id=message["candidate_id"],
                    kind=activity_kind,
                    summary=f"{verb} “{message['subject']}”"[:500],
                    data={"campaign_id": message["campaign_id"], "message_id": pk},
                    occurred_at=first[pk],
                )
            )
    Activity.objects.bulk_create(activities, batch_size=2000)


def tracking_flush(*, max_batches: int = 100, batch_size: int = FLUSH_BATCH) -> FlushReport:
    """Write buffered events in batches until the buffer is empty (the body of the
    `campaigns.tracking_flush` task). One flusher at a time."""
    report = FlushReport()
    client = _redis()
    lock_key = _buffer_key() + ":lock"
    lock_token = uuid.uuid4().hex
    if not client.set(lock_key, lock_token, nx=True, ex=FLUSH_LOCK_SECONDS):
        report.locked = True
        return report
    try:
        for _ in range(max_batches):
            batch = tracking_batch_claim(size=batch_size)
            if not batch:
                break
            tracking_batch_write(batch, report)
            tracking_batch_ack()
            report.batches += 1
    finally:
        if client.get(lock_key) == lock_token.encode():
            client.delete(lock_key)
    return report
