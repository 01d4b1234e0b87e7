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
* one flusher at a time (a Redis lock that expires, so a dead flusher's lock does not block;
  the flusher renews it after each batch and stops, without acknowledging, once it lost it);
* a batch that fails FLUSH_BATCH_ATTEMPTS times for anything but an unreachable database or
  Redis is moved aside to a *dead-letter* list, with an error logged, so that it does not hold
  up every later event; an operator looks at it and, once the cause is fixed, puts it back
  (`manage.py tracking_dead_letters [--requeue]`). Free text from the request (the user
  agent) is stripped of what PostgreSQL refuses (NUL, lone surrogates) when it is buffered
  and again when it is written.

**When Redis is down** (the RPUSH fails), the pixel and the click still answer (the GIF, the
redirect) and write their event straight to the database in the request instead: the rows the
flush would write (`tracking_batch_write` with one event, the same key, so an RPUSH that got
through after all is written once). Such a click is classified with the clicks of its email
already in the database only: a trap click or a burst that comes *after* it cannot flag it any
more (nor can clicks still buffered in the unreachable Redis), so a scanner's first clicks before
its trap click or its third link count as a person's. If the database refuses the write too,
the event is lost, with an error logged; the visitor gets the GIF or the redirect all the same.
The success path does no more than before (the fallback is an ``except``).

**Clicks wait until they have settled.** A click is classified with the clicks of the same
email around it (below), so it is written only once no more can come: the claim leaves clicks
younger than CLICK_HOLD_SECONDS in a *held* list and takes them when they are old enough,
classifying each batch against the clicks still held or buffered behind it and those written
before it. Opens and unsubscribes are classified alone and never wait.

**Machines.** Events from privacy proxies (Apple Mail Privacy Protection, Google's image proxy,
Yahoo's), security scanners (known user agents; anything seconds after the message was sent),
clicks on several links within a second, and the trap link (and the clicks around it) are stored
with ``is_machine`` and the reason; they never set ``opened_at``/``clicked_at`` and so never
count as engagement. Campaign statistics show them separately.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from analytics.models import EngagementEvent
from analytics.services import engagement_events_insert
from campaigns.models import (
    CandidateEmailPreference,
    EmailSettings,
    Enrollment,
    Suppression,
)
from campaigns.services import tokens
from campaigns.services.sequences import enrollments_stop_for_candidates
from candidates.models import Activity, Candidate
from crm.db import server_bound
from crm.models import Organization

# The invisible link in every tracked email (see messages.message_build). Base 36 "rr".
TRAP_LINK_INDEX = 999
MACHINE_SECONDS_AFTER_SEND = 5
MACHINE_CLICK_BURST_SECONDS = 1
MACHINE_CLICK_BURST_LINKS = 3  # clicks on this many links of one email within the burst window
TRAP_NEIGHBOUR_SECONDS = 10  # clicks this close to a trap click come from the same scanner
# A click is written only once this old: a later click on the trap link or on other links of
# the same email can still make it a machine's. One second more for the web nodes' clocks.
CLICK_HOLD_SECONDS = max(TRAP_NEIGHBOUR_SECONDS, MACHINE_CLICK_BURST_SECONDS) + 1
FLUSH_BATCH = 5000
FLUSH_LOCK_SECONDS = 120
FLUSH_BATCH_ATTEMPTS = 3  # a batch that failed this often goes to the dead-letter list
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
# What PostgreSQL's text and jsonb refuse: NUL, and lone surrogates (no UTF-8 for them).
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")

logger = logging.getLogger(__name__)


# --- the buffer -------------------------------------------------------------------------------


def _buffer_key() -> str:
    """The Redis list of buffered events (with the cache's key prefix, so the benchmark's and
    each test's buffers are their own)."""
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:campaigns:tracking"


def _processing_key() -> str:
    return _buffer_key() + ":processing"


def _held_key() -> str:
    """Clicks that have not settled yet, in the order they came."""
    return _buffer_key() + ":held"


def _failures_key() -> str:
    """How often writing the processing list failed."""
    return _buffer_key() + ":processing:failures"


def _dead_letter_key() -> str:
    return _buffer_key() + ":dead"


def _lock_key() -> str:
    return _buffer_key() + ":lock"


# A Redis that hangs (a host gone, a server stuck) rather than refusing must not hold a pixel or
# a click for the operating system's TCP timeouts: each command gives up after this, and the
# event is written to the database instead (`_write_now`). No command here blocks on purpose.
REDIS_TIMEOUT_SECONDS = 2.0


@lru_cache(maxsize=4)
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
    )


def _redis() -> redis.Redis:
    return _client_for(settings.REDIS_URL)


def _push(event: dict) -> None:
    event["id"] = uuid.uuid4().hex
    event["t"] = timezone.now().timestamp()
    _redis().rpush(_buffer_key(), json.dumps(event, separators=(",", ":")))


def _buffer(event: dict) -> bool:
    """Buffer an open or click for the flush (True), or, when Redis refuses it, write it to the
    database now (`_write_now`; False). Nothing more than the push when Redis answers."""
    try:
        _push(event)
    except redis.RedisError as error:
        _write_now(event, error)
        return False
    return True


REDIS_DOWN_WARNING_SECONDS = 60  # one warning a minute per process while Redis is down
_redis_down_warned_at = [float("-inf")]


def _write_now(event: dict, error: redis.RedisError) -> None:
    """Write an open or click that Redis refused (`_push` failed) straight to the database, in
    the request: the rows the flush would write for it, classified with what the database holds
    (see the module's docstring). Never raises: an event that the database refuses as well is
    lost, with an error logged, and the pixel or the redirect answers all the same."""
    try:
        tracking_batch_write([json.dumps(event).encode()], direct=True)
    except Exception:
        logger.exception(
            "Tracking: Redis failed (%s) and the database write failed too: the %s event of "
            "message %s is lost",
            error,
            event["k"],
            event["m"],
        )
        return
    now = time.monotonic()
    if now - _redis_down_warned_at[0] >= REDIS_DOWN_WARNING_SECONDS:
        _redis_down_warned_at[0] = now
        logger.warning(
            "Tracking: Redis failed (%s); opens and clicks are written to the database in "
            "their requests until it answers again",
            error,
        )


def _storable(text: str, limit: int) -> str:
    """Request text as PostgreSQL stores it, at most `limit` characters."""
    return _UNSTORABLE.sub("", text or "")[:limit]


def buffered_count() -> int:
    """Events waiting to be flushed (the buffer, the processing and the held lists)."""
    pipe = _redis().pipeline(transaction=False)
    pipe.llen(_buffer_key())
    pipe.llen(_processing_key())
    pipe.llen(_held_key())
    return sum(pipe.execute())


# --- the requests -------------------------------------------------------------------------------


def open_record(*, token: str, user_agent: str, ip: str = "") -> bool:
    """Buffer an open if the token is good (no database work), or write it to the database
    when Redis refuses it. Returns whether the database was used (a caller that manages its
    own connections, tracking_front, then checks them as after a click)."""
    content = tokens.token_read(token, salt=tokens.OPEN_SALT)
    if content is None or not content.message_id:
        return False
    return not _buffer(
        {
            "k": "opened",
            "o": content.organization_id,
            "c": content.candidate_id,
            "m": content.message_id,
            "ua": _storable(user_agent, 300),
            "ip": _storable(ip, 45),
        }
    )


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


# The message's links, only if the token's organisation is the message's (tenant scoping by
# construction: the WHERE clause names both) and the message still has a candidate. Not the
# token's candidate: the signed token makes the message id authentic, and a merge moves the
# merged-away profile's messages to the surviving one, whose links must keep working. Plain
# SQL: the ORM would spend ~0.5 ms of CPU compiling this one-row query on every click of a burst.
_LINKS_SQL = (
    "SELECT links FROM campaigns_message WHERE id = %s AND organization_id = %s "
    "AND candidate_id IS NOT NULL"
)


def _message_links(content: tokens.LinkToken) -> list | None:
    with connection.cursor() as cursor:
        cursor.execute(_LINKS_SQL, [content.message_id, content.organization_id])
        row = cursor.fetchone()
    if row is None:
        return None
    links = row[0]
    return json.loads(links) if isinstance(links, str) else links


def click_record(*, token: str, user_agent: str, ip: str = "") -> ClickOutcome | None:
    """Where to send the click (buffering the event, or writing it when Redis refuses it), or
    None for a bad token or link."""
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
    _buffer(
        {
            "k": "clicked",
            "o": content.organization_id,
            "c": content.candidate_id,
            "m": content.message_id,
            "l": index,
            "ua": _storable(user_agent, 300),
            "ip": _storable(ip, 45),
        }
    )
    return ClickOutcome(target=target, is_trap=target is None)


# --- the one-click unsubscribe ------------------------------------------------------------------

# A one-click unsubscribe (RFC 8058) in one autocommitted statement: the candidate named by the
# token (in the token's organisation) with that organisation, their preference's
# `unsubscribed_at` set unless it was set already, and their address suppressed (an earlier
# suppression stays). Those two are what the send path checks, so they are written before the
# answer; the rest (enrollments stopped, the email marked, the event, the timeline entry) is
# buffered like an open and written by the flush. A merged profile changes nothing here (its
# links act for the surviving profile: the ordinary view follows the chain). Suppressions are
# stored lower-cased by Python; PostgreSQL's lower() is the same for ASCII only, so other
# addresses are suppressed from Python after the statement.
_ONE_CLICK_SQL = """
WITH c AS (
    SELECT id, organization_id, email, merged_into_id FROM {candidate}
    WHERE organization_id = %s AND id = %s
), p AS (
    INSERT INTO {preference} AS p ({preference_columns})
    SELECT {preference_values} FROM c WHERE c.merged_into_id IS NULL
    ON CONFLICT (candidate_id) DO UPDATE
        SET unsubscribed_at = EXCLUDED.unsubscribed_at, updated_at = EXCLUDED.updated_at
        WHERE p.unsubscribed_at IS NULL
    RETURNING p.candidate_id
), s AS (
    INSERT INTO {suppression} ({suppression_columns})
    SELECT {suppression_values} FROM c JOIN p ON p.candidate_id = c.id
    WHERE c.email <> '' AND c.email ~ '^[ -~]*$'
    ON CONFLICT DO NOTHING
)
SELECT c.merged_into_id, c.email, EXISTS (SELECT 1 FROM p), {organization_columns}
FROM c JOIN {organization} o ON o.id = c.organization_id
"""


@lru_cache(maxsize=1)
def _one_click_statement() -> tuple[str, list, list, list]:
    """The statement, written from the models' metadata once; the fields whose values are
    parameters (preference, suppression) and the organisation's fields, in order."""
    quote = connection.ops.quote_name
    from_candidate = {"organization": "c.organization_id", "candidate": "c.id"}
    preference = [f for f in CandidateEmailPreference._meta.concrete_fields if not f.primary_key]
    suppression = [f for f in Suppression._meta.concrete_fields if not f.primary_key]
    organization = list(Organization._meta.concrete_fields)
    sql = _ONE_CLICK_SQL.format(
        candidate=quote(Candidate._meta.db_table),
        preference=quote(CandidateEmailPreference._meta.db_table),
        preference_columns=", ".join(quote(f.column) for f in preference),
        preference_values=", ".join(from_candidate.get(f.name, "%s") for f in preference),
        suppression=quote(Suppression._meta.db_table),
        suppression_columns=", ".join(quote(f.column) for f in suppression),
        suppression_values=", ".join(
            {**from_candidate, "email": "lower(c.email)"}.get(f.name, "%s") for f in suppression
        ),
        organization=quote(Organization._meta.db_table),
        organization_columns=", ".join(f"o.{quote(f.column)}" for f in organization),
    )
    preference = [f for f in preference if f.name not in from_candidate]
    suppression = [f for f in suppression if f.name not in (*from_candidate, "email")]
    return sql, preference, suppression, organization


@dataclass(frozen=True)
class OneClickOutcome:
    organization: Organization | None  # None: no such candidate in that organisation
    merged: bool = False  # a merged profile: nothing was changed, the ordinary view acts
    unsubscribed_now: bool = False  # False: they were unsubscribed already


def one_click_unsubscribe(*, token: str, source: str = "one-click") -> OneClickOutcome | None:
    """Unsubscribe the candidate a candidate-link token names: the preference and the
    suppression now (one statement), the rest buffered for the flush. None for a forged,
    expired or foreign token."""
    content = tokens.token_read(token, salt=tokens.CANDIDATE_SALT)
    if content is None or not content.candidate_id:
        return None
    sql, preference_fields, suppression_fields, organization_fields = _one_click_statement()
    now = datetime.now(tz=UTC)
    preference = CandidateEmailPreference(unsubscribed_at=now, updated_at=now)
    suppression = Suppression(reason=Suppression.Reason.UNSUBSCRIBED, detail=source, created_at=now)
    params = [content.organization_id, content.candidate_id]
    params += [
        f.get_db_prep_save(getattr(preference, f.attname), connection) for f in preference_fields
    ]
    params += [
        f.get_db_prep_save(getattr(suppression, f.attname), connection) for f in suppression_fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return OneClickOutcome(organization=None)
    merged_into_id, email, changed = row[:3]
    organization = _organization_from_row(organization_fields, row[3:])
    if merged_into_id is not None:
        return OneClickOutcome(organization=organization, merged=True)
    if not changed:
        return OneClickOutcome(organization=organization)
    if email and not email.isascii():
        with scope(organization=organization):
            Suppression.objects.bulk_create(
                [
                    Suppression(
                        organization_id=content.organization_id,
                        email=email.lower(),
                        reason=Suppression.Reason.UNSUBSCRIBED,
                        detail=source,
                    )
                ],
                ignore_conflicts=True,
            )
    event = {
        "k": "unsubscribed",
        "o": content.organization_id,
        "c": content.candidate_id,
        "m": content.message_id,
        "src": source,
    }
    try:
        _push(event)
    except redis.RedisError:
        # The unsubscribe took effect; its bookkeeping is written now rather than lost.
        tracking_batch_write([json.dumps(event).encode()])
    return OneClickOutcome(organization=organization, unsubscribed_now=True)


def _organization_from_row(fields, values) -> Organization:
    converted = []
    for model_field, value in zip(fields, values, strict=True):
        converter = getattr(model_field, "from_db_value", None)
        converted.append(converter(value, None, connection) if converter else value)
    return Organization.from_db(connection.alias, [f.attname for f in fields], converted)


# --- classification -----------------------------------------------------------------------------


def _in_apple_network(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in APPLE_NETWORKS)


def machine_reason(
    *,
    user_agent: str,
    ip: str,
    sent_at: datetime | None,
    at: datetime,
    agent_expected: bool = True,
) -> str:
    """Why one open or click looks automated ("" when it looks like a person). A missing user
    agent is a sign only where every client sends one (`agent_expected`): our own pixel and
    links, not an ESP's event, which may leave it out."""
    agent = (user_agent or "").strip()
    lowered = agent.lower()
    if not agent and agent_expected:
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
    # unknown message (or one whose candidate was deleted), or opens of an organisation that
    # switched them off
    dropped: int = 0
    first_opens: int = 0
    first_clicks: int = 0
    unsubscribes: int = 0
    dead_letters: int = 0  # events of batches that failed too often, moved aside
    locked: bool = False  # another flusher was running
    lock_lost: bool = False  # another flusher took over (this one's lock had expired)
    reasons: dict = field(default_factory=dict)

    def add(self, batch: FlushReport) -> None:
        """Count in one written batch's report."""
        self.events += batch.events
        self.written += batch.written
        self.machine += batch.machine
        self.dropped += batch.dropped
        self.first_opens += batch.first_opens
        self.first_clicks += batch.first_clicks
        self.unsubscribes += batch.unsubscribes
        for reason, count in batch.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count


def tracking_batch_claim(
    *, size: int = FLUSH_BATCH, hold_seconds: float = CLICK_HOLD_SECONDS
) -> list[bytes]:
    """The batch to write: what a dead flusher left in the processing list, else up to `size`
    events moved there atomically: the held clicks that have settled, then the buffer's events
    but its clicks younger than `hold_seconds`, which move to the held list. (0 takes every
    click: for a last flush when no more requests come.)"""
    client = _redis()
    left = client.lrange(_processing_key(), 0, -1)
    if left:
        return left
    settled_at = timezone.now().timestamp() - hold_seconds
    return _script(client, _CLAIM_LUA)(
        keys=[_buffer_key(), _processing_key(), _held_key()], args=[size, settled_at]
    )


# Claim up to ARGV[1] events into the processing list (KEYS[2]), atomically (a script runs alone
# in Redis): one round trip whatever the batch size. First the held clicks (KEYS[3]) taken at
# ARGV[2] or before, from the head of that list (it is in time order); then one window of the
# buffer (KEYS[1]): its clicks taken after ARGV[2] move to the held list, the rest is claimed.
# Events are compact JSON (`_push`): a string's quotes are escaped, so `"k":` and `"t":` are
# the keys. An event without a readable time is claimed (and its batch fails, if it must).
_CLAIM_LUA = """
local size, settled_at = tonumber(ARGV[1]), tonumber(ARGV[2])
local function settled(event)
    if not string.find(event, '"k":"clicked"', 1, true) then
        return true
    end
    local t = tonumber(string.match(event, '"t":([%-%+%.%deE]+)'))
    return t == nil or t <= settled_at
end
local function push(key, events)
    for i = 1, #events, 1000 do
        redis.call('RPUSH', key, unpack(events, i, math.min(i + 999, #events)))
    end
end
local claimed, held = {}, {}
local more = true
while more and #claimed < size do  -- in small steps: the held list's head is often unsettled
    local step = redis.call('LRANGE', KEYS[3], #claimed, math.min(#claimed + 100, size) - 1)
    more = #step > 0
    for _, event in ipairs(step) do
        if not settled(event) then
            more = false
            break
        end
        claimed[#claimed + 1] = event
    end
end
if #claimed > 0 then
    redis.call('LTRIM', KEYS[3], #claimed, -1)
end
if #claimed < size then
    local events = redis.call('LRANGE', KEYS[1], 0, size - #claimed - 1)
    for _, event in ipairs(events) do
        if settled(event) then
            claimed[#claimed + 1] = event
        else
            held[#held + 1] = event
        end
    end
    if #events > 0 then
        redis.call('LTRIM', KEYS[1], #events, -1)
    end
    push(KEYS[3], held)
end
push(KEYS[2], claimed)
return claimed
"""

# A batch that failed too often: the processing list appended to the dead-letter list (KEYS[2])
# and deleted with its failure count (KEYS[3]). Returns how many events were moved.
_DEAD_LETTER_LUA = """
local events = redis.call('LRANGE', KEYS[1], 0, -1)
for i = 1, #events, 1000 do
    redis.call('RPUSH', KEYS[2], unpack(events, i, math.min(i + 999, #events)))
end
redis.call('DEL', KEYS[1], KEYS[3])
return #events
"""

# The flush lock, renewed (ARGV[2] seconds) or released only by the flusher holding it (ARGV[1]).
_LOCK_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_LOCK_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


# The dead-letter list (KEYS[1]) back at the head of the buffer (KEYS[2]), in its order, in
# one step: an event is in one list or the other, never both or neither.
_REQUEUE_LUA = """
local events = redis.call('LRANGE', KEYS[1], 0, -1)
for i = #events, 1, -1 do
    redis.call('LPUSH', KEYS[2], events[i])
end
redis.call('DEL', KEYS[1])
return #events
"""


def tracking_dead_letters(*, sample: int = 5) -> tuple[int, list[dict]]:
    """How many events wait in the dead-letter list, and the first `sample` of them."""
    client = _redis()
    pipe = client.pipeline(transaction=False)
    pipe.llen(_dead_letter_key())
    pipe.lrange(_dead_letter_key(), 0, max(sample, 0) - 1)
    count, head = pipe.execute()
    return count, [json.loads(event) for event in head] if sample > 0 else []


def tracking_dead_letters_requeue() -> int:
    """Put the dead-letter list back in front of the buffer (once what made its batches fail
    is fixed); the next flush writes them, idempotently. Returns how many went back."""
    client = _redis()
    return int(_script(client, _REQUEUE_LUA)(keys=[_dead_letter_key(), _buffer_key()]))


@lru_cache(maxsize=16)
def _script(client: redis.Redis, source: str):
    return client.register_script(source)


def tracking_batch_ack() -> None:
    """The batch is committed: forget it."""
    _redis().delete(_processing_key(), _failures_key())


def tracking_lock_renew(*, token: str) -> bool:
    """Keep the flush lock another FLUSH_LOCK_SECONDS; False when it is not `token`'s anymore
    (it expired, and another flusher may hold it)."""
    client = _redis()
    return bool(
        _script(client, _LOCK_RENEW_LUA)(keys=[_lock_key()], args=[token, FLUSH_LOCK_SECONDS])
    )


def tracking_batch_write(
    raw_events: list[bytes], report: FlushReport | None = None, *, direct: bool = False
) -> FlushReport:
    """Classify and write one batch in one transaction. Writing the same batch twice changes
    nothing the second time. `direct`: events written in their request because Redis is down;
    their clicks are classified without the clicks waiting in Redis."""
    report = report or FlushReport()
    events = [json.loads(raw) for raw in raw_events]
    for event in events:
        if "ua" in event:  # also for events buffered before `_push` stripped it
            event["ua"] = _storable(event["ua"], 300)
    report.events += len(events)
    unsubscribes = [e for e in events if e["k"] == "unsubscribed"]
    events = [e for e in events if e["k"] != "unsubscribed"]
    with scopes_disabled(), transaction.atomic():
        if events:
            _record_opens_and_clicks(events, report, direct=direct)
        if unsubscribes:
            _record_unsubscribes(unsubscribes, report)
    return report


def _record_opens_and_clicks(
    events: list[dict], report: FlushReport, *, direct: bool = False
) -> None:
    columns = ("pk", "organization_id", "candidate_id", "campaign_id", "sent_at", "subject")
    messages = {
        row[0]: dict(zip(columns, row, strict=True))
        for row in server_bound(_MESSAGES_SQL, [list({e["m"] for e in events})])
    }
    no_opens = set(
        EmailSettings.objects.filter(
            organization_id__in={e["o"] for e in events}, track_opens=False
        ).values_list("organization_id", flat=True)
    )
    kept = []
    for event in events:
        message = messages.get(event["m"])
        # The event counts for the message's candidate now, not the one its token names
        # (event["c"]): a merge since the email was sent moved it to the surviving profile.
        if (
            message is None
            or message["organization_id"] != event["o"]
            or message["candidate_id"] is None
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
    _classify_clicks(kept, waiting=not direct)
    # Events of a batch written before (a flusher died before acknowledging it) are not
    # written again; ON CONFLICT DO NOTHING covers a race with another writer.
    already = {
        row[0]
        for row in server_bound(
            _WRITTEN_SQL, [list({e["o"] for e in kept}), [e["id"] for e in kept]]
        )
    }
    rows = [_event_row(e, messages[e["m"]]) for e in kept if e["id"] not in already]
    engagement_events_insert(rows)
    report.written += len(rows)
    for event in kept:
        if event["reason"]:
            report.machine += 1
            report.reasons[event["reason"]] = report.reasons.get(event["reason"], 0) + 1
    _record_firsts(kept, messages, report)


# The emails the unsubscribes came in: their first unsubscribe time set and their campaigns
# named, only where the email is the candidate's in their organisation.
_UNSUBSCRIBED_MESSAGES_SQL = """
WITH v AS (
    SELECT unnest(%b::bigint[]) AS id, unnest(%b::bigint[]) AS organization_id,
           unnest(%b::bigint[]) AS candidate_id, unnest(%b::timestamptz[]) AS at
), marked AS (
    UPDATE campaigns_message AS m SET unsubscribed_at = v.at FROM v
    WHERE m.id = v.id AND m.organization_id = v.organization_id
      AND m.candidate_id = v.candidate_id AND m.unsubscribed_at IS NULL
)
SELECT m.id, m.campaign_id, c.name FROM campaigns_message AS m
JOIN v ON m.id = v.id AND m.organization_id = v.organization_id
      AND m.candidate_id = v.candidate_id
LEFT JOIN campaigns_campaign AS c ON c.id = m.campaign_id
"""


def _record_unsubscribes(events: list[dict], report: FlushReport) -> None:
    """The bookkeeping of one-click unsubscribes (their preference and suppression were written
    when they were answered): active enrollments stopped, the email marked, one event and one
    timeline entry each — what `preferences.candidate_unsubscribe` does in its transaction."""
    organizations = list({e["o"] for e in events})
    known = set(
        server_bound(_KNOWN_CANDIDATES_SQL, [organizations, list({e["c"] for e in events})])
    )
    already = {
        row[0] for row in server_bound(_WRITTEN_SQL, [organizations, [e["id"] for e in events]])
    }
    new = []
    for event in events:
        if (event["o"], event["c"]) not in known:
            report.dropped += 1  # the candidate was deleted (erased) since
        elif event["id"] not in already:
            event["at"] = datetime.fromtimestamp(event["t"], tz=UTC)
            new.append(event)
    if not new:
        return
    by_organization: dict[int, list[int]] = defaultdict(list)
    for event in new:
        by_organization[event["o"]].append(event["c"])
    for organization_id, candidate_ids in by_organization.items():
        enrollments_stop_for_candidates(
            organization_id=organization_id,
            candidate_ids=candidate_ids,
            reason=Enrollment.StopReason.UNSUBSCRIBED,
        )
    with_message = [e for e in new if e["m"]]
    messages = {}
    if with_message:
        rows = server_bound(
            _UNSUBSCRIBED_MESSAGES_SQL,
            [
                [e["m"] for e in with_message],
                [e["o"] for e in with_message],
                [e["c"] for e in with_message],
                [e["at"] for e in with_message],
            ],
        )
        messages = {pk: (campaign_id, name) for pk, campaign_id, name in rows}
    rows, activities = [], []
    for event in new:
        campaign_id, campaign_name = messages.get(event["m"], (None, None))
        data = {"source": event.get("src", "one-click")}
        rows.append(
            (
                event["o"],
                EngagementEvent.Kind.UNSUBSCRIBED.value,
                event["c"],
                campaign_id,
                event["m"] if event["m"] in messages else None,
                event["at"],
                False,
                "",
                json.dumps(data),
                event["id"],
            )
        )
        activities.append(
            Activity(
                organization_id=event["o"],
                candidate_id=event["c"],
                kind=Activity.Kind.UNSUBSCRIBED,
                summary=(
                    "Unsubscribed from campaign email"
                    + (f" ({campaign_name})" if campaign_name else "")
                )[:500],
                data=data,
                occurred_at=event["at"],
            )
        )
    engagement_events_insert(rows)
    Activity.objects.bulk_create(activities)
    report.written += len(rows)
    report.unsubscribes += len(rows)


def _classify_clicks(events: list[dict], *, waiting: bool = True) -> None:
    """Set the reasons of these clicks from their neighbours: the clicks of the same emails
    written before, and (`waiting`) those still in Redis."""
    clicks_by_message: dict[int, list[dict]] = defaultdict(list)
    for event in events:
        if event["k"] == "clicked":
            clicks_by_message[event["m"]].append(event)
    if not clicks_by_message:
        return
    # Clicks of the same messages written by earlier batches count towards bursts and traps.
    earliest = min(e["at"] for clicks in clicks_by_message.values() for e in clicks)
    earlier = server_bound(
        _EARLIER_CLICKS_SQL,
        [
            list(clicks_by_message),
            EngagementEvent.Kind.CLICKED.value,
            earliest - timedelta(seconds=TRAP_NEIGHBOUR_SECONDS),
            [e["id"] for clicks in clicks_by_message.values() for e in clicks],
        ],
    )
    for message_id, occurred_at, index in earlier:
        clicks_by_message[message_id].append(
            {"l": index, "at": occurred_at, "reason": "earlier", "earlier": True}
        )
    # And the clicks that came after this batch's, still waiting to be claimed.
    for message_id, occurred_at, index in (
        _waiting_clicks(set(clicks_by_message)) if waiting else ()
    ):
        clicks_by_message[message_id].append({"l": index, "at": occurred_at, "reason": "waiting"})
    for clicks in clicks_by_message.values():
        clicks.sort(key=lambda c: c["at"])
        _click_reasons(clicks)


_MESSAGE_ID = re.compile(rb'"m":(\d+)')


def _waiting_clicks(message_ids: set[int]) -> list[tuple[int, datetime, int]]:
    """(message id, time, link index) of the clicks of these messages in the held list and at
    the head of the buffer. Anything unreadable there is its own batch's problem, not this one's."""
    pipe = _redis().pipeline(transaction=False)
    pipe.lrange(_held_key(), 0, -1)
    pipe.lrange(_buffer_key(), 0, FLUSH_BATCH - 1)
    held, buffered = pipe.execute()
    clicks = []
    for raw in held + buffered:
        found = _MESSAGE_ID.search(raw)
        if not found or int(found[1]) not in message_ids or b'"k":"clicked"' not in raw:
            continue
        try:
            event = json.loads(raw)
            clicks.append(
                (event["m"], datetime.fromtimestamp(event["t"], tz=UTC), int(event.get("l", 0)))
            )
        except (ValueError, KeyError, TypeError, OverflowError):
            continue
    return clicks


def _event_row(event: dict, message: dict) -> tuple:
    data = {"user_agent": event["ua"]}
    if event["k"] == "clicked":
        data["link_index"] = event["l"]
    return (
        event["o"],
        event["k"],
        message["candidate_id"],
        message["campaign_id"],
        event["m"],
        event["at"],
        bool(event["reason"]),
        event["reason"][:64],
        json.dumps(data),
        event["id"],
    )


_FIRST_SQL = """
UPDATE campaigns_message AS m SET {column} = v.at
FROM (SELECT unnest(%b::bigint[]) AS id, unnest(%b::timestamptz[]) AS at) AS v
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
        changed = [
            row[0]
            for row in server_bound(
                _FIRST_SQL.format(column=column), [list(first), [first[pk] for pk in first]]
            )
        ]
        if kind == "opened":
            report.first_opens += len(changed)
        else:
            report.first_clicks += len(changed)
        for pk in changed:
            message = messages[pk]
            activities.append(
                (
                    message["organization_id"],
                    message["candidate_id"],
                    activity_kind.value,
                    f"{verb} “{message['subject']}”"[:500],
                    json.dumps({"campaign_id": message["campaign_id"], "message_id": pk}),
                    first[pk],
                )
            )
    if activities:
        server_bound(_ACTIVITIES_INSERT, [list(c) for c in zip(*activities, strict=True)])


# The batch's reads and writes are bound on the server: Django's cursor would quote thousands of
# ids, keys and times into each statement, and PostgreSQL parse them afresh.
_MESSAGES_SQL = (
    "SELECT id, organization_id, candidate_id, campaign_id, sent_at, subject "
    "FROM campaigns_message WHERE id = ANY(%b::bigint[])"
)
_WRITTEN_SQL = (
    "SELECT source_key FROM analytics_engagementevent "
    "WHERE organization_id = ANY(%b::bigint[]) AND source_key = ANY(%b::text[])"
)
# The clicks of the same messages that earlier batches wrote (not this batch's own).
_EARLIER_CLICKS_SQL = (
    "SELECT message_id, occurred_at, coalesce((data ->> 'link_index')::int, 0) "
    "FROM analytics_engagementevent "
    "WHERE message_id = ANY(%b::bigint[]) AND kind = %s AND occurred_at >= %s "
    "AND NOT source_key = ANY(%b::text[])"
)
_KNOWN_CANDIDATES_SQL = (
    "SELECT organization_id, id FROM candidates_candidate "
    "WHERE organization_id = ANY(%b::bigint[]) AND id = ANY(%b::bigint[])"
)
_ACTIVITIES_INSERT = """
INSERT INTO candidates_activity (organization_id, candidate_id, kind, summary, data, occurred_at)
SELECT organization_id, candidate_id, kind, summary, data::jsonb, occurred_at
FROM unnest(%b::bigint[], %b::bigint[], %b::text[], %b::text[], %b::text[], %b::timestamptz[])
    AS entry (organization_id, candidate_id, kind, summary, data, occurred_at)
"""


def tracking_flush(
    *,
    max_batches: int = 100,
    batch_size: int = FLUSH_BATCH,
    hold_seconds: float = CLICK_HOLD_SECONDS,
) -> FlushReport:
    """Write buffered events in batches until the buffer is empty but for the clicks that have
    not settled (the body of the `campaigns.tracking_flush` task). One flusher at a time."""
    report = FlushReport()
    client = _redis()
    lock_token = uuid.uuid4().hex
    if not client.set(_lock_key(), lock_token, nx=True, ex=FLUSH_LOCK_SECONDS):
        report.locked = True
        return report
    try:
        for _ in range(max_batches):
            batch = tracking_batch_claim(size=batch_size, hold_seconds=hold_seconds)
            if not batch:
                if client.llen(_buffer_key()):
                    continue  # that window's clicks all went to the held list
                break
            try:
                written = tracking_batch_write(batch)
            except (OperationalError, InterfaceError, redis.RedisError):
                raise  # the database or Redis is away: the batch waits for them
            except Exception:
                if (
                    not tracking_lock_renew(token=lock_token)
                    or client.incr(_failures_key()) < FLUSH_BATCH_ATTEMPTS
                ):
                    raise
                logger.exception(
                    "Tracking: a batch of %s events failed %s times; moved to the "
                    "dead-letter list %s",
                    len(batch),
                    FLUSH_BATCH_ATTEMPTS,
                    _dead_letter_key(),
                )
                report.dead_letters += _script(client, _DEAD_LETTER_LUA)(
                    keys=[_processing_key(), _dead_letter_key(), _failures_key()]
                )
                continue
            report.add(written)
            if not tracking_lock_renew(token=lock_token):
                # Another flusher took over and writes this batch again (a no-op): leave it.
                report.lock_lost = True
                break
            tracking_batch_ack()
            report.batches += 1
    finally:
        _script(client, _LOCK_RELEASE_LUA)(keys=[_lock_key()], args=[lock_token])
    return report
