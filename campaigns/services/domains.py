"""Sending domains: their verification through DNS, and their warm-up ramp.

A sending domain is the domain of the From address of campaign email.

**Verification.** On an installation shared by several organisations (one operator, one ESP
account), nothing but the DNS says who may send as a domain. Each SendingDomain has a random
token; the organisation publishes `rapport-verification=<token>` as a TXT record at
`_rapport.<domain>` and an admin presses "Check now" (`sending_domain_check`, which looks the
record up with dnspython through `txt_records`, the one function that talks to the DNS). A
domain is verified by one organisation at most. While verification is required (the operator's
RAPPORT_SENDING_DOMAIN_VERIFICATION, on by default), a campaign cannot launch while its
organisation's sender domain is not verified (`sender_domain_problem`), and campaign emails
from an unverified domain wait in the queue at send time (services/guards.py). Transactional
email (invitations, password resets, confirmations) comes from the operator's
DEFAULT_FROM_EMAIL and is not concerned.

**Warm-up.** A sending domain's optional warm-up
limits how many campaign emails leave from it each day — across every recruiter, campaign and
worker (a Redis counter per organisation, domain and local day, see services/guards.py; an
email that was not sent after all gives its unit back) — so a new domain builds a reputation
with mailbox providers instead of landing in spam. Emails over the day's allowance wait in
the queue for the next day; none is dropped.
"""

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.utils import parseaddr
from functools import lru_cache

import dns.exception
import dns.resolver
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_scopes import scopes_disabled

from campaigns.models import SendingDomain
from crm.counters import counter_give_back, counter_take
from crm.models import Organization

# A ramp longer than this many days is treated as finished (a growth of 1 % a day from 1 email
# reaches a million in ~1,400 days; the form asks for at least 10 %).
MAX_RAMP_DAYS = 730


@lru_cache(maxsize=1024)
def domain_of(address: str) -> str:
    """The lower-cased domain of an address ("Name <a@b.example>" or "a@b.example"). Cached:
    the send path asks it for every message, mostly with the same few From addresses, and
    `parseaddr` costs ~50 µs a call."""
    email = parseaddr(address)[1] or address
    return email.rsplit("@", 1)[1].strip().lower() if "@" in email else ""


def warmup_allowance(*, domain: SendingDomain | None, day: date) -> int | None:
    """Campaign emails the domain may send on `day` (a date in the organisation's time zone),
    or None when no warm-up limits it: none was started, or the ramp reached its target.
    Days before the start count as the first day."""
    if domain is None or domain.warmup_started_on is None:
        return None
    first, target = max(1, domain.warmup_first_day), domain.warmup_target_per_day
    if first >= target:
        return None
    days = max(0, (day - domain.warmup_started_on).days)
    growth = 1 + domain.warmup_growth_percent / 100
    amount = first
    for _ in range(min(days, MAX_RAMP_DAYS)):
        amount = math.ceil(amount * growth)
        if amount >= target:
            return None
    if days > MAX_RAMP_DAYS:
        return None
    return amount


def warmup_schedule(*, domain: SendingDomain) -> list[tuple[int, date, int]]:
    """(day number, date, emails allowed) for each day of the ramp, until it is warmed up."""
    if domain.warmup_started_on is None:
        return []
    schedule = []
    for number in range(MAX_RAMP_DAYS):
        day = domain.warmup_started_on + timedelta(days=number)
        amount = warmup_allowance(domain=domain, day=day)
        if amount is None:
            break
        schedule.append((number + 1, day, amount))
    return schedule


def warmup_finished_on(*, domain: SendingDomain) -> date | None:
    """The first day without a warm-up limit (None when no warm-up was started)."""
    schedule = warmup_schedule(domain=domain)
    if domain.warmup_started_on is None:
        return None
    return schedule[-1][1] + timedelta(days=1) if schedule else domain.warmup_started_on


def domain_day_key(organization_id: int, domain: str, day: date) -> str:
    """The Redis key of the domain's counter for `day`."""
    return f"campaigns:domain-day:{organization_id}:{domain}:{day.isoformat()}"


def domain_day_take(*, organization_id: int, domain: str, day: date, wanted: int, cap: int) -> int:
    """Take up to `wanted` of the domain's allowance for `day` from the counter shared by all
    workers; returns how many were granted."""
    return daily_counter_take(
        key=domain_day_key(organization_id, domain, day), wanted=wanted, cap=cap
    )


def domain_day_used(*, organization_id: int, domain: str, day: date) -> int:
    return int(cache.get(domain_day_key(organization_id, domain, day)) or 0)


def daily_counter_take(*, key: str, wanted: int, cap: int) -> int:
    """Take up to `wanted` of a day's allowance `cap` from its counter in Redis, shared by every
    worker; returns how many were granted (the send path gives back, with
    `daily_counter_give_back`, what the emails it was granted for did not use). The check and
    the increment are one atomic step (`crm.counters.counter_take`): racing workers share the
    allowance exactly and never exceed it."""
    return counter_take(key=key, wanted=wanted, cap=cap, timeout=2 * 86400)


def daily_counter_give_back(*, key: str, count: int) -> None:
    """Return `count` units to a day's counter (granted for emails that did not go out); a
    counter that is gone (its day is over) stays gone."""
    counter_give_back(key=key, count=count)


@dataclass(frozen=True)
class DomainStatus:
    domain: SendingDomain
    is_current: bool  # the domain of the organisation's sender address
    record_name: str  # the DNS TXT record that verifies it: its name…
    record_value: str  # … and its value
    allowance_today: int | None  # None: no warm-up limit today
    used_today: int
    day_number: int | None
    finished_on: date | None


def sending_domains_status(*, organization: Organization, today: date) -> list[DomainStatus]:
    """Every sending domain of the organisation with its warm-up state today (the settings
    page). The domain of the current sender address is created when missing."""
    sending_domain_ensure(organization=organization)
    current = domain_of(organization.sender_email)
    rows = []
    for domain in SendingDomain.objects.filter(organization=organization):
        allowance = warmup_allowance(domain=domain, day=today)
        started = domain.warmup_started_on
        rows.append(
            DomainStatus(
                domain=domain,
                is_current=domain.domain == current,
                record_name=verification_record_name(domain),
                record_value=verification_record_value(domain),
                allowance_today=allowance,
                used_today=domain_day_used(
                    organization_id=organization.pk, domain=domain.domain, day=today
                )
                if allowance is not None
                else 0,
                day_number=max(1, (today - started).days + 1) if started else None,
                finished_on=warmup_finished_on(domain=domain),
            )
        )
    rows.sort(key=lambda row: (not row.is_current, row.domain.domain))
    return rows


def sending_domain_ensure(*, organization: Organization) -> SendingDomain | None:
    """The SendingDomain of the organisation's sender address, created (without a warm-up)
    the first time that domain is used."""
    name = domain_of(organization.sender_email)
    if not name:
        return None
    domain, _ = SendingDomain.objects.get_or_create(organization=organization, domain=name)
    return domain


# --- verification -----------------------------------------------------------------------------

VERIFICATION_LABEL = "_rapport"
VERIFICATION_PREFIX = "rapport-verification="
# How long one "Check now" waits for the DNS, in seconds (a web request waits for it).
DNS_LIFETIME = 5.0
# A domain is looked up at most once in this many seconds (a double click, a script).
CHECK_INTERVAL_SECONDS = 10


class DNSLookupError(Exception):
    """The DNS could not say whether the record exists (a timeout, no server answered)."""


def verification_required() -> bool:
    """Whether campaign email needs a verified sending domain (RAPPORT_SENDING_DOMAIN_VERIFICATION,
    on unless the operator turned it off)."""
    return bool(getattr(settings, "RAPPORT_SENDING_DOMAIN_VERIFICATION", True))


def verification_record_name(domain: SendingDomain) -> str:
    """Where the domain's TXT record goes: `_rapport.<domain>`."""
    return f"{VERIFICATION_LABEL}.{domain.domain}"


def verification_record_value(domain: SendingDomain) -> str:
    """What the TXT record says: `rapport-verification=<the domain's token>`."""
    return f"{VERIFICATION_PREFIX}{domain.verification_token}"


def is_verified(domain: SendingDomain | None) -> bool:
    return domain is not None and domain.verified_at is not None


def txt_records(name: str) -> list[str]:
    """The TXT records at `name`, each one's strings joined (a long record comes in pieces of
    255 bytes); empty when the name or its TXT records do not exist. Raises DNSLookupError when
    the DNS gives no answer. The one function that talks to the DNS (tests replace dnspython's
    resolver: it is the outside world)."""
    try:
        answer = dns.resolver.resolve(f"{name}.", "TXT", lifetime=DNS_LIFETIME, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.Timeout as error:
        raise DNSLookupError(f"The DNS lookup of {name} timed out") from error
    except dns.resolver.NoNameservers as error:  # every server failed (SERVFAIL, refused)
        raise DNSLookupError(f"No DNS server could answer for {name}") from error
    except (dns.exception.DNSException, ValueError) as error:  # a name the DNS cannot hold
        raise DNSLookupError(f"{name} cannot be looked up in the DNS") from error
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


def _taken_message(domain: SendingDomain) -> str:
    return (
        f"Another organisation on this installation has already verified {domain.domain}: a "
        "domain sends campaign email for one organisation only. If the domain is yours, ask "
        "the operator of this installation."
    )


def _verification_error(domain: SendingDomain) -> str:
    """Why the domain's DNS record does not verify it ("" when it does)."""
    name = verification_record_name(domain)
    try:
        records = txt_records(name)
    except DNSLookupError as error:
        return f"{error}: try again in a few minutes."
    if not records:
        return (
            f"No TXT record found at {name}. A new record can take a while to appear: try "
            "again in a few minutes."
        )
    expected = verification_record_value(domain)
    if not any(record.strip().strip('"').strip().lower() == expected for record in records):
        return (
            f"Found a TXT record at {name}, but the token does not match: its value must be "
            f"{expected}"
        )
    with scopes_disabled():  # across organisations on purpose: one organisation per domain
        taken = (
            SendingDomain.objects.filter(domain=domain.domain, verified_at__isnull=False)
            .exclude(organization_id=domain.organization_id)
            .exists()
        )
    return _taken_message(domain) if taken else ""


def sending_domain_check(*, domain: SendingDomain, now: datetime | None = None) -> SendingDomain:
    """Look up the domain's TXT record ("Check now") and record the outcome: `verified_at`
    when the record holds the domain's token and no other organisation has verified the
    domain, else `verification_error` says why. A verified domain stays as it is."""
    if domain.verified_at is not None:
        return domain
    now = now or timezone.now()
    domain.verification_error = _verification_error(domain)
    domain.verification_checked_at = now
    fields = ["verified_at", "verification_checked_at", "verification_error"]
    if not domain.verification_error:
        domain.verified_at = now
        try:
            with transaction.atomic():
                domain.save(update_fields=fields)
            return domain
        except IntegrityError:  # another organisation verified it in the same instant
            domain.verified_at = None
            domain.verification_error = _taken_message(domain)
    domain.save(update_fields=fields)
    return domain


def sending_domain_check_throttled(*, domain: SendingDomain) -> bool:
    """True when the domain was looked up less than CHECK_INTERVAL_SECONDS ago (a web server
    process waits for each lookup: a double click or a script must not make it wait again and
    again); otherwise this call takes the turn and returns False."""
    key = f"campaigns:domain-check:{domain.organization_id}:{domain.pk}"
    return not cache.add(key, 1, CHECK_INTERVAL_SECONDS)


def sending_domain_mark_verified(
    *, organization: Organization, now: datetime | None = None
) -> SendingDomain | None:
    """Mark the domain of the organisation's sender address verified without asking the DNS.
    Only for the operator's own organisations — the demo, the benchmark, test fixtures —
    never on a tenant's request."""
    domain = sending_domain_ensure(organization=organization)
    if domain is not None and domain.verified_at is None:
        domain.verified_at = now or timezone.now()
        domain.verification_error = ""
        domain.save(update_fields=["verified_at", "verification_error"])
    return domain


def unverified_sender_domain(*, organization: Organization) -> str:
    """The domain of the organisation's sender address when campaign email cannot leave from
    it because it is not verified; "" when it can (or there is no sender address, a problem of
    its own, or the operator does not require verification)."""
    name = domain_of(organization.sender_email)
    if not name or not verification_required():
        return ""
    verified = SendingDomain.objects.filter(
        organization=organization, domain=name, verified_at__isnull=False
    ).exists()
    return "" if verified else name


@transaction.atomic
def sending_domain_update(
    *,
    domain: SendingDomain,
    warmup: bool,
    warmup_started_on: date | None,
    warmup_first_day: int,
    warmup_growth_percent: int,
    warmup_target_per_day: int,
) -> SendingDomain:
    """Start, change or stop a domain's warm-up."""
    if warmup:
        if warmup_started_on is None:
            raise ValidationError({"warmup_started_on": "Choose the day the warm-up starts."})
        if warmup_first_day < 1:
            raise ValidationError({"warmup_first_day": "Send at least one email on day one."})
        if warmup_target_per_day <= warmup_first_day:
            raise ValidationError(
                {"warmup_target_per_day": "The target must be more than the first day's amount."}
            )
        if warmup_growth_percent < 10:
            raise ValidationError(
                {"warmup_growth_percent": "Grow by at least 10 % a day, or the ramp never ends."}
            )
        domain.warmup_started_on = warmup_started_on
        domain.warmup_first_day = warmup_first_day
        domain.warmup_growth_percent = warmup_growth_percent
        domain.warmup_target_per_day = warmup_target_per_day
    else:
        domain.warmup_started_on = None
    domain.save()
    return domain
