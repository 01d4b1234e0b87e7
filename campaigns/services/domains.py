"""Sending domains and their warm-up ramp.

A sending domain is the domain of the From address of campaign email. Its optional warm-up
limits how many campaign emails leave from it each day — across every recruiter, campaign and
worker (a Redis counter per organisation, domain and local day, see services/guards.py; an
email that was not sent after all gives its unit back) — so a new domain builds a reputation
with mailbox providers instead of landing in spam. Emails over the day's allowance wait in
the queue for the next day; none is dropped.
"""

import math
from dataclasses import dataclass
from datetime import date, timedelta
from email.utils import parseaddr
from functools import lru_cache

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction

from campaigns.models import SendingDomain
from campaigns.services.ratelimit import counter_give_back, counter_take
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
    the increment are one atomic step (`ratelimit.counter_take`): racing workers share the
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
