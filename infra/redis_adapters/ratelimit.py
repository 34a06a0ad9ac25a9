"""Token-bucket rate limits shared by every API process of the scale stack.

The same contract as infra/ratelimit.RateLimiter (`take(key)` → 0 or seconds to
wait), kept in Redis so that a client cannot multiply its allowance by spreading
requests over processes. One Lua script per call: the refill and the spend are
atomic. If Redis cannot answer, requests are let through (and logged): a cache
outage must not become a sign-in outage.
"""

from __future__ import annotations

import logging
import math
import time

import redis

log = logging.getLogger(__name__)

# KEYS[1] bucket; ARGV: capacity, rate per second, now (seconds). Returns tokens*1000 left or -wait_ms.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local ttl = math.ceil(capacity / rate) + 1
if tokens >= 1 then
  redis.call('HSET', KEYS[1], 'tokens', tokens - 1, 'at', now)
  redis.call('EXPIRE', KEYS[1], ttl)
  return 1
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], ttl)
return -math.ceil((1 - tokens) / rate * 1000)
"""


class RedisRateLimiter:
    def __init__(self, client: redis.Redis, per_minute: int, prefix: str = "glimpse:") -> None:
        self._client = client
        self._capacity = per_minute
        self._rate = per_minute / 60.0
        self._prefix = f"{prefix}rl:"
        self._script = client.register_script(_TAKE)

    def take(self, key: str) -> int:
        try:
            answer = int(self._script(keys=[self._prefix + key], args=[self._capacity, self._rate, time.time()]))
        except redis.RedisError:
            log.warning("rate limit for %s not checked: Redis unavailable", key, exc_info=True)
            return 0
        return 0 if answer > 0 else max(1, math.ceil(-answer / 1000))
