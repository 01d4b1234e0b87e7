"""Counters in Redis shared by every process: a limit per period that racing workers and web
processes cannot overrun. Keys go through Django's Redis cache (its key prefix and version), so
a caller's key carries the organisation id it counts for, and each test has its own.

A take is one Lua script, which Redis runs atomically: read what was used, grant what fits under
the cap, add exactly that and start the key's expiry when it creates the key. No other worker's
command, and no expiry or eviction of the key, can fall between the check and the increment, so
a grant is always counted and a cap is never exceeded; nor do racing workers see each other's
excess (which a take-then-give-back made them refuse units that fitted).

Used by campaigns (the sending rate and daily caps, campaigns/services/ratelimit.py) and by the
invitations (crm/services.py)."""

from django.core.cache import cache

# KEYS[1] the counter; ARGV: wanted, cap, seconds the key lives. Returns what was granted.
_TAKE_LUA = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local granted = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used)
if granted <= 0 then
    return 0
end
if used == 0 and redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('SET', KEYS[1], granted, 'EX', tonumber(ARGV[3]))
else
    redis.call('INCRBY', KEYS[1], granted)
end
return granted
"""

# KEYS[1] the counter; ARGV[1] how many to give back. A counter that is gone (its period is over)
# is not recreated: a negative counter without an expiry would grant extra units for ever.
_GIVE_BACK_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return redis.call('DECRBY', KEYS[1], tonumber(ARGV[1]))
end
return 0
"""


def _run(script: str, key: str, *args: int) -> int:
    # The cache's own Redis client and connection pool (Django's RedisCache), and the key as the
    # cache writes it, so `cache.get(key)` reads the same counter. `register_script` sends
    # EVALSHA and loads the script once per Redis server when it is not known there yet.
    client = cache._cache.get_client(key, write=True)
    return int(client.register_script(script)(keys=[cache.make_and_validate_key(key)], args=args))


def counter_take(*, key: str, wanted: int, cap: int, timeout: int) -> int:
    """Take up to `wanted` units from the counter `key` whose limit is `cap`; return how many
    were granted (the counter grows by exactly that). A new counter lives `timeout` seconds."""
    if wanted <= 0 or cap <= 0:
        return 0
    return _run(_TAKE_LUA, key, wanted, cap, timeout)


def counter_give_back(*, key: str, count: int) -> None:
    """Return `count` units to the counter (granted for emails that did not go out)."""
    if count > 0:
        _run(_GIVE_BACK_LUA, key, count)
