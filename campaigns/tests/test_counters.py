"""The Redis counters every worker shares (services/ratelimit.py): the per-minute sending rate
and the daily caps (a recruiter's day, a sending domain's warm-up). Real Redis; what is
controlled is only when the key disappears (it expired, or Redis evicted it) and when another
worker's take falls in between, at every point between the commands of a take."""

import threading
from datetime import date

import pytest
import redis
from django.core.cache import cache
from django.db import connections

from campaigns.services import domains, ratelimit

CAP = 5
DAY = date(2026, 3, 3)


def _take_rate(wanted: int) -> int:
    return ratelimit.rate_limit_take(organization_id=7, wanted=wanted, per_minute=CAP)


def _take_domain(wanted: int) -> int:
    return domains.domain_day_take(
        organization_id=7, domain="acme.example", day=DAY, wanted=wanted, cap=CAP
    )


COUNTERS = {"rate": _take_rate, "domain": _take_domain}


def _client() -> redis.Redis:
    return cache._cache.get_client(write=True)


def _our_keys() -> list[bytes]:
    """This test's counter keys (each test has its own cache key prefix)."""
    return _client().keys(cache.make_key("campaigns:*"))


def _counted() -> int:
    client = _client()
    return sum(int(client.get(key)) for key in _our_keys())


class VanishingKey:
    """Redis as one worker sees it: before its `vanish_at`-th command the counter's key is gone
    (expired or evicted), and before its `other_at`-th command another worker takes `CAP`
    from the same counter. Commands of the other worker are not counted."""

    def __init__(self, monkeypatch, *, take, vanish_at: int, other_at: int):
        self.commands = 0
        self.others: list[int] = []
        self._inside = False
        original = redis.Redis.execute_command

        def execute_command(client, *args, **options):
            if not self._inside:
                self._inside = True
                try:
                    self.commands += 1
                    if self.commands == vanish_at:
                        for key in _our_keys():
                            original(client, "DEL", key)
                    if self.commands == other_at:
                        self.others.append(take(CAP))
                finally:
                    self._inside = False
            return original(client, *args, **options)

        monkeypatch.setattr(redis.Redis, "execute_command", execute_command)


@pytest.mark.parametrize("counter", COUNTERS)
@pytest.mark.parametrize(
    ("vanish_at", "other_at"), [(1, 1), (2, 2), (2, 3), (2, 4), (3, 3), (3, 4), (4, 5)]
)
def test_counter_whose_key_vanishes_during_a_take_never_grants_more_than_the_cap(
    monkeypatch, counter, vanish_at, other_at
):
    take = COUNTERS[counter]
    vanishing = VanishingKey(monkeypatch, take=take, vanish_at=vanish_at, other_at=other_at)

    granted = take(CAP)
    monkeypatch.undo()
    others = vanishing.others or [take(CAP)]  # the other worker comes after, if not during
    later = take(CAP)  # a third worker, once both are done

    # The key vanished before this worker decided anything: every grant here counts towards
    # one period's cap, and the counter holds every one of them.
    assert granted + sum(others) + later <= CAP
    assert _counted() == granted + sum(others) + later


@pytest.mark.parametrize("counter", COUNTERS)
def test_counter_racing_workers_share_the_cap_exactly(counter):
    take, workers = COUNTERS[counter], 8
    barrier = threading.Barrier(workers)
    granted, errors = [], []

    def worker():
        try:
            barrier.wait()
            granted.append(take(3))
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert (sum(granted), _counted()) == (CAP, CAP)


def test_counter_keys_expire_after_their_period():
    _take_rate(2)
    _take_domain(2)
    client = _client()
    lives = sorted(client.ttl(key) for key in _our_keys())
    assert 0 < lives[0] <= 120
    assert 120 < lives[1] <= 2 * 86400


def test_counter_over_the_cap_or_nothing_wanted_creates_no_key():
    assert (_take_domain(0), domains.daily_counter_take(key="campaigns:x", wanted=3, cap=0)) == (
        0,
        0,
    )
    assert _our_keys() == []


def test_counter_give_back_returns_units_but_never_recreates_a_gone_counter():
    key = domains.domain_day_key(7, "acme.example", DAY)
    assert _take_domain(4) == 4
    domains.daily_counter_give_back(key=key, count=3)
    assert domains.domain_day_used(organization_id=7, domain="acme.example", day=DAY) == 1
    cache.delete(key)
    domains.daily_counter_give_back(key=key, count=3)
    assert _our_keys() == []
    assert _take_domain(9) == CAP
