"""Guard rails at send time that need more than the message itself: consent, the
organisation-wide frequency cap, the candidate's own frequency choice, the sending domain's
verification and warm-up ramp, and each recruiter's daily cap.

Consent is a *skip* (the message is not sent, with the reason). The caps are *holds*: an
over-cap message goes back to `queued` with a later `next_attempt_at` and the dispatcher's
sweeper hands it to a send task when that time comes — it waits, it never vanishes. The two
daily allowances are taken before a chunk is sent and given back for what it did not send
(`SendHolds`).
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from email.utils import parseaddr
from functools import lru_cache

from django.db.models import Count, Max, Q

from campaigns.models import (
    CandidateEmailPreference,
    Consent,
    EmailSettings,
    Message,
    SendingDomain,
    Topic,
)
from campaigns.services import domains

HOLD_FREQUENCY_CAP = "Waiting: frequency cap"
HOLD_SENDER_CAP = "Waiting: the recruiter's daily cap"
HOLD_CANDIDATE_FREQUENCY = "Waiting: the candidate asked for fewer emails"
HOLD_DOMAIN_WARMUP = "Waiting: the sending domain's warm-up allowance for today"
HOLD_DOMAIN_UNVERIFIED = "Waiting: the sending domain is not verified (Settings → Email)"
HOLD_SENDING_WINDOW = "Waiting: the sequence's sending window"
# How often an email from an unverified domain is checked again (the domain may be verified
# meanwhile: then it goes).
UNVERIFIED_RECHECK = timedelta(minutes=15)


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
    return now.astimezone(organization.zone).date()


def next_local_midnight(organization, now: datetime) -> datetime:
    zone = organization.zone
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0, 0), tzinfo=zone)


def sender_daily_cap_for(*, email_settings: EmailSettings | None) -> int | None:
    """Campaign emails one recruiter may send per day (None: no cap)."""
    if email_settings is None:
        return None
    return email_settings.sender_daily_cap or None


def recruiter_of(message: Message) -> str:
    """Whose daily cap a message counts against: the campaign's recruiter (the Reply-To
    address), else the From address."""
    return _sender_of(message.reply_to, message.from_email)


@lru_cache(maxsize=1024)
def _sender_of(reply_to: str, from_email: str) -> str:
    # Cached: asked for every message of a chunk, mostly with the same one or two senders.
    return (parseaddr(reply_to)[1] or parseaddr(from_email)[1]).lower()


def _sender_day_key(organization_id: int, sender: str, day: date) -> str:
    return f"campaigns:sender-day:{organization_id}:{sender.lower()}:{day.isoformat()}"


def sender_daily_take(
    *, organization_id: int, sender: str, day: date, wanted: int, cap: int
) -> int:
    """Take up to `wanted` of the recruiter's allowance for the day; a Redis counter shared by
    all workers. Returns how many were granted."""
    return domains.daily_counter_take(
        key=_sender_day_key(organization_id, sender, day), wanted=wanted, cap=cap
    )


# How long an email waits when only another worker's email in flight to the same candidate
# puts it over the frequency cap: then it is checked again.
IN_FLIGHT_RECHECK = timedelta(minutes=2)


def _frequency_holds(
    *,
    organization,
    messages: list[Message],
    email_settings: EmailSettings,
    now: datetime,
    own_ids: set[int],
) -> dict[int, tuple[datetime, str]]:
    limit, days = email_settings.frequency_cap_messages, email_settings.frequency_cap_days
    if not limit or not days:
        return {}
    window = timedelta(days=days)
    candidate_ids = {m.candidate_id for m in messages if m.candidate_id and m.campaign_id}
    # Counted: the emails sent within the window, and those another worker has claimed and is
    # sending now (not this task's own chunk, `own_ids`). Without the latter, two workers
    # sending two campaigns' emails to one candidate at the same moment both passed the cap.
    # An email held only because of one in flight waits IN_FLIGHT_RECHECK and is checked
    # again, by then against that email's real outcome (sent, or back in the queue).
    in_flight = Q(status=Message.Status.SENDING) & ~Q(pk__in=list(own_ids))
    sent: dict[int, list[datetime]] = defaultdict(list)
    flying: dict[int, int] = defaultdict(int)
    for candidate_id, sent_at in (
        Message.objects.filter(
            organization=organization, candidate_id__in=candidate_ids, is_test=False
        )
        .filter(~Q(campaign=None))
        .filter(Q(sent_at__gte=now - window) | in_flight)
        .values_list("candidate_id", "sent_at")
    ):
        if sent_at is None:
            flying[candidate_id] += 1
        else:
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
        elif len(times) + flying[message.candidate_id] >= limit:
            holds[message.pk] = (now + IN_FLIGHT_RECHECK, HOLD_FREQUENCY_CAP)
        else:
            sent[message.candidate_id].append(now)  # counts for the rest of this batch
    return holds


CANDIDATE_PERIODS = {
    CandidateEmailPreference.Frequency.WEEKLY: timedelta(days=7),
    CandidateEmailPreference.Frequency.MONTHLY: timedelta(days=30),
}


def _candidate_frequency_holds(
    *, organization, messages: list[Message], now: datetime, own_ids: set[int]
) -> dict[int, tuple[datetime, str]]:
    """The candidate's own choice in the preference centre ("at most once a week/month"):
    an email within that period of their last campaign email waits until the period is over."""
    candidate_ids = {m.candidate_id for m in messages if m.candidate_id and m.campaign_id}
    if not candidate_ids:
        return {}
    periods = {
        candidate_id: CANDIDATE_PERIODS[frequency]
        for candidate_id, frequency in CandidateEmailPreference.objects.filter(
            organization=organization, candidate_id__in=candidate_ids
        )
        .exclude(frequency="")
        .values_list("candidate_id", "frequency")
        if frequency in CANDIDATE_PERIODS
    }
    if not periods:
        return {}
    # As for the organisation's cap: an email another worker has claimed and is sending now
    # counts too (its sent_at is still empty), else two workers sending two campaigns' emails
    # to a "once a week" candidate at the same moment would both go out.
    in_flight = Q(status=Message.Status.SENDING) & ~Q(pk__in=list(own_ids))
    last_sent: dict[int, datetime] = {}
    flying: set[int] = set()
    for candidate_id, last, sending in (
        Message.objects.filter(
            organization=organization, candidate_id__in=list(periods), is_test=False
        )
        .filter(~Q(campaign=None))
        .filter(Q(sent_at__gte=now - max(periods.values())) | in_flight)
        .values("candidate_id")
        .annotate(last=Max("sent_at"), sending=Count("pk", filter=in_flight))
        .values_list("candidate_id", "last", "sending")
    ):
        if last is not None:
            last_sent[candidate_id] = last
        if sending:
            flying.add(candidate_id)
    holds = {}
    for message in messages:
        period = periods.get(message.candidate_id)
        if period is None or not message.campaign_id:
            continue
        last = last_sent.get(message.candidate_id)
        if last is not None and last + period > now:
            until = max(last + period, now + timedelta(minutes=1))
            holds[message.pk] = (until, HOLD_CANDIDATE_FREQUENCY)
        elif message.candidate_id in flying:
            # Checked again shortly, by then against that email's real outcome.
            holds[message.pk] = (now + IN_FLIGHT_RECHECK, HOLD_CANDIDATE_FREQUENCY)
        else:
            last_sent[message.candidate_id] = now  # the rest of this batch waits a period
    return holds


@dataclass
class SendHolds:
    """What `send_holds` decided for a chunk: the messages that must wait, and the daily
    allowance (warm-up, recruiter cap) the others took. An allowance is taken before the
    messages are sent; whatever does not end up `sent` (skipped, held, retried, throttled by
    the provider, given back at the deadline, paused) gets its unit back through `give_back`
    — so a day's counter counts the emails that went out. A message that failed for good
    (a 5xx, a hard bounce, the last retry) keeps its unit: the provider was asked to deliver
    it, and that weighs on the domain's reputation as much as a delivery."""

    holds: dict[int, tuple[datetime, str]] = field(default_factory=dict)
    # message pk → the day counters (Redis keys, naming the organisation, the domain or the
    # recruiter, and the day) it took one unit from.
    taken: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))

    def give_back(self, message_ids) -> int:
        """Return the units these messages took (each once); returns how many."""
        counts = Counter(key for pk in message_ids for key in self.taken.pop(pk, ()))
        for key, count in counts.items():
            domains.daily_counter_give_back(key=key, count=count)
        return sum(counts.values())


def send_holds(
    *,
    organization,
    messages: list[Message],
    email_settings: EmailSettings | None,
    now: datetime,
    claimed_ids=(),
) -> SendHolds:
    """The messages that must wait ({message pk: (when to try again, why)}): over the
    frequency cap, from a sending domain that is not verified, over the sending domain's
    warm-up allowance for today, or over the recruiter's daily cap. The two daily allowances
    are Redis counters shared by all workers; the result remembers which counters each message
    took from, so that the send path gives back what it did not use (see SendHolds).
    Allowance taken for a message that another cap then holds is given back here.

    `claimed_ids`: every message the calling task has claimed (`sending`), `messages` among
    them. The others (skipped, paused) are not sent by it; the caps must not count them as
    another worker's emails in flight to their candidates (which would hold an email of the
    same chunk for IN_FLIGHT_RECHECK for nothing)."""
    result = SendHolds()
    holds = result.holds
    own_ids = {m.pk for m in messages} | set(claimed_ids)
    if email_settings is not None:
        holds.update(
            _frequency_holds(
                organization=organization,
                messages=messages,
                email_settings=email_settings,
                now=now,
                own_ids=own_ids,
            )
        )
    holds.update(
        _candidate_frequency_holds(
            organization=organization,
            messages=[m for m in messages if m.pk not in holds],
            now=now,
            own_ids=own_ids,
        )
    )
    day = local_day(organization, now)
    tomorrow = next_local_midnight(organization, now)

    # The sending domain: verified by this organisation (unless the operator does not require
    # it; an email rendered before its sender changed keeps its From), then its warm-up: one
    # allowance per domain and day, whoever sends.
    by_domain: dict[str, list[Message]] = defaultdict(list)
    for message in messages:
        if message.pk not in holds:
            by_domain[domains.domain_of(message.from_email)].append(message)
    known = {
        d.domain: d
        for d in SendingDomain.objects.filter(organization=organization, domain__in=list(by_domain))
    }
    if domains.verification_required():
        for name in [name for name in by_domain if not domains.is_verified(known.get(name))]:
            for message in by_domain.pop(name):
                holds[message.pk] = (now + UNVERIFIED_RECHECK, HOLD_DOMAIN_UNVERIFIED)
    for name, domain_messages in by_domain.items():
        allowance = domains.warmup_allowance(domain=known.get(name), day=day)
        if allowance is None:
            continue
        allowed = domains.domain_day_take(
            organization_id=organization.pk,
            domain=name,
            day=day,
            wanted=len(domain_messages),
            cap=allowance,
        )
        key = domains.domain_day_key(organization.pk, name, day)
        for message in domain_messages[:allowed]:
            result.taken[message.pk].append(key)
        for message in domain_messages[allowed:]:
            holds[message.pk] = (tomorrow, HOLD_DOMAIN_WARMUP)

    # Each recruiter's daily cap.
    cap = sender_daily_cap_for(email_settings=email_settings)
    if cap is not None:
        by_sender: dict[str, list[Message]] = defaultdict(list)
        for message in messages:
            if message.pk not in holds:
                by_sender[recruiter_of(message)].append(message)
        over_cap: list[int] = []
        for sender, sender_messages in by_sender.items():
            allowed = sender_daily_take(
                organization_id=organization.pk,
                sender=sender,
                day=day,
                wanted=len(sender_messages),
                cap=cap,
            )
            key = _sender_day_key(organization.pk, sender, day)
            for message in sender_messages[:allowed]:
                result.taken[message.pk].append(key)
            for message in sender_messages[allowed:]:
                holds[message.pk] = (tomorrow, HOLD_SENDER_CAP)
                over_cap.append(message.pk)
        result.give_back(over_cap)  # the warm-up allowance they took
    return result


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
