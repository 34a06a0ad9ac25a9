"""The Redis rate limiter against the real server: shared across clients, refilling."""

from __future__ import annotations

import pytest
import redis

from infra.redis_adapters.ratelimit import RedisRateLimiter
from tests.integration.redis_env import delete_prefixed, redis_url, unique_prefix

pytestmark = pytest.mark.integration


def test_a_bucket_is_shared_by_every_limiter_and_says_how_long_to_wait() -> None:
    client = redis.Redis.from_url(redis_url())
    prefix = unique_prefix()
    try:
        one = RedisRateLimiter(client, per_minute=3, prefix=prefix)
        two = RedisRateLimiter(redis.Redis.from_url(redis_url()), per_minute=3, prefix=prefix)
        assert [one.take("login:ana"), two.take("login:ana"), one.take("login:ana")] == [0, 0, 0]
        wait = two.take("login:ana")
        assert 1 <= wait <= 20  # one token comes back every 20 s
        assert one.take("login:ben") == 0  # other keys have their own bucket
        assert client.ttl(f"{prefix}rl:login:ana") > 0  # idle buckets expire
    finally:
        delete_prefixed(client, prefix)


def test_an_unreachable_redis_lets_requests_through() -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    assert RedisRateLimiter(dead, per_minute=1).take("login:x") == 0
