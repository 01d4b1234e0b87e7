"""A per-organisation sending rate that holds across every worker: a Redis counter per
organisation and minute (through Django's Redis cache, so keys carry the org id)."""

import time

from django.core.cache import cache


def rate_limit_take(*, organization_id: int, wanted: int, per_minute: int) -> int:
    """Take up to `wanted` sends from this minute's allowance; return how many were granted.
    What is not granted stays queued and goes out in a later minute."""
    if wanted <= 0:
        return 0
    key = f"campaigns:rate:{organization_id}:{int(time.time() // 60)}"
    cache.add(key, 0, timeout=120)
    try:
        used_after = cache.incr(key, wanted)
    except ValueError:  # expired between add and incr: start the minute again
        cache.add(key, wanted, timeout=120)
        used_after = wanted
    used_before = used_after - wanted
    return max(0, min(wanted, per_minute - used_before))
