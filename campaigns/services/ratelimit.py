"""The per-organisation sending rate (one counter per organisation and minute), on the shared
Redis counters of crm/counters.py, which also hold the daily caps of services/domains.py and
services/guards.py."""

import time

from crm.counters import counter_take


def rate_limit_key(organization_id: int, at: float) -> str:
    return f"campaigns:rate:{organization_id}:{int(at // 60)}"


def rate_limit_take(*, organization_id: int, wanted: int, per_minute: int) -> int:
    """Take up to `wanted` sends from this minute's allowance; return how many were granted.
    What is not granted stays queued and goes out in a later minute."""
    return counter_take(
        key=rate_limit_key(organization_id, time.time()),
        wanted=wanted,
        cap=per_minute,
        timeout=120,
    )
