"""Guard rails at send time that need more than the message itself: consent, the
organisation-wide frequency cap and the per-sender daily cap with its warm-up ramp.

Consent is a *skip* (the message is not sent, with the reason). The two caps are *holds*: an
over-cap message goes back to `queued` with a later `next_attempt_at` and the dispatcher's
sweeper hands it to a send task when that time comes — it waits, it never vanishes.
"""

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from email.utils import parseaddr
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db.models import Q

from campaigns.models import Consent, EmailSettings, Message, Topic

HOLD_FREQUENCY_CAP = "Waiting: frequency cap"
HOLD_SENDER_CAP = "Waiting: sender's daily cap"


def consent_skips(
    *, organization, messages: list[Message], email_settings: EmailSettings | None
) -> dict[int, str]:
    """{message pk: NO_CONSENT} for candidates without active consent, when the organisation
    requires consent — and, whatever the setting, for candidates with a double opt-in request
    they have not confirmed yet (until then nothing but the confirmation goes to them)."""
    required = bool(email_settings and email_settings.consent_required)
    candidate_ids = {m.candidate_id for m in messages if m.candidate_id}
    if not candidate_ids:
        return {}
    consents = Consent.objects.filter(
        organization=organization,
        candidate_id__in=candidate_ids,
        purpose=Consent.Purpose.CAMPAIGN_EMAIL,
        withdrawn_at__isnull=True,
    ).values_list("candidate_id", "granted_at", "topic_id")
    topic_keys = dict(Topic.objects.filter(organization=organization).values_list("pk", "key"))
    granted: dict[int, set] = defaultdict(set)  # candidate → topic keys (None: every topic)
    pending: set[int] = set()
    for candidate_id, granted_at, topic_id in consents:
        if granted_at is None:
            pending.add(candidate_id)
        else:
            granted[candidate_id].add(topic_keys.get(topic_id) if topic_id else None)
    skips = {}
    for message in messages:
        candidate_id = message.candidate_id
        if not candidate_id or not (required or candidate_id in pending):
            continue
        topics = granted.get(candidate_id, set())
        if None not in topics and message.campaign.topic not in topics:
            skips[message.pk] = Message.SkipReason.NO_CONSENT
    return skips


def local_day(organization, now: datetime) -> date:
    return now.astimezone(ZoneInfo(organization.time_zone or "UTC")).date()


def next_local_midnight(organization, now: datetime) -> datetime:
    zone = ZoneInfo(organization.time_zone or "UTC")
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0, 0), tzinfo=zone)


def sender_daily_cap_for(*, email_settings: EmailSettings | None, day: date) -> int | None:
    """Emails one sender address may send on `day`: the daily cap, or during a warm-up the
    first day's amount doubled every day since it started (never above the cap). None: no cap."""
    if email_settings is None:
        return None
    cap = email_settings.sender_daily_cap or None
    started = email_settings.warmup_started_on
    if started is not None and day >= started:
        days = min((day - started).days, 40)
        ramp = max(1, email_settings.warmup_first_day) * 2**days
        cap = min(cap, ramp) if cap else ramp
    return cap


def sender_daily_take(
    *, organization_id: int, sender: str, day: date, wanted: int, cap: int
) -> int:
    """Take up to `wanted` of the sender's allowance for the day; a Redis counter shared by all
    workers. Returns how many were granted."""
    if wanted <= 0:
        return 0
    key = f"campaigns:sender-day:{organization_id}:{sender.lower()}:{day.isoformat()}"
    cache.add(key, 0, timeout=2 * 86400)
    try:
        used_after = cache.incr(key, wanted)
    except ValueError:  # expired between add and incr
        cache.add(key, wanted, timeout=2 * 86400)
        used_after = wanted
    return max(0, min(wanted, cap - (used_after - wanted)))


def _frequency_holds(
    *, organization, messages: list[Message], email_settings: EmailSettings, now: datetime
) -> dict[int, tuple[datetime, str]]:
    limit, days = email_settings.frequency_cap_messages, email_settings.frequency_cap_days
    if not limit or not days:
        return {}
    window = timedelta(days=days)
    candidate_ids = {m.candidate_id for m in messages if m.candidate_id and m.campaign_id}
    sent: dict[int, list[datetime]] = defaultdict(list)
    for candidate_id, sent_at in (
        Message.objects.filter(
            organization=organization,
            candidate_id__in=candidate_ids,
            sent_at__gte=now - window,
            is_test=False,
        )
        .filter(~Q(campaign=None))
        .values_list("candidate_id", "sent_at")
    ):
        sent[candidate_id].append(sent_at)
    holds = {}
    for message in messages:
        if not message.candidate_id or not message.campaign_id:
            continue
        times = sorted(sent[message.candidate_id])
        if len(times) >= limit:
            # The first moment one of the counted emails leaves the window.
            until = times[len(times) - limit] + window
            holds[message.pk] = (max(until, now + timedelta(minutes=1)), HOLD_FREQUENCY_CAP)
        else:
            sent[message.candidate_id].append(now)  # counts for the rest of this batch
    return holds


def send_holds(
    *,
    organization,
    messages: list[Message],
    email_settings: EmailSettings | None,
    now: datetime,
) -> dict[int, tuple[datetime, str]]:
    """{message pk: (when to try again, why)} for the messages that must wait."""
    if email_settings is None:
        return {}
    holds = _frequency_holds(
        organization=organization, messages=messages, email_settings=email_settings, now=now
    )
    day = local_day(organization, now)
    cap = sender_daily_cap_for(email_settings=email_settings, day=day)
    if cap is not None:
        by_sender: dict[str, list[Message]] = defaultdict(list)
        for message in messages:
            if message.pk not in holds:
                by_sender[parseaddr(message.from_email)[1].lower()].append(message)
        tomorrow = next_local_midnight(organization, now)
        for sender, sender_messages in by_sender.items():
            allowed = sender_daily_take(
                organization_id=organization.pk,
                sender=sender,
                day=day,
                wanted=len(sender_messages),
                cap=cap,
            )
            for message in sender_messages[allowed:]:
                holds[message.pk] = (tomorrow, HOLD_SENDER_CAP)
    return holds


def messages_hold(*, holds: dict[int, tuple[datetime, str]]) -> int:
    """Put claimed messages back in the queue until their time comes."""
    grouped: dict[tuple[datetime, str], list[int]] = defaultdict(list)
    for pk, (until, why) in holds.items():
        grouped[(until, why)].append(pk)
    count = 0
    for (until, why), ids in grouped.items():
        count += Message.objects.filter(pk__in=ids, status=Message.Status.SENDING).update(
            status=Message.Status.QUEUED,
            next_attempt_at=until,
            claimed_at=None,
            enqueued_at=None,
            last_error=why,
        )
    return count
