"""How a composition root puts the Redis caches together (settings in, adapters out).

Query processes wrap their durable read model with `cached_read_model`; the worker
registers `cache_listeners` so that, after applying a batch and before saving its
positions, the cached feeds follow and changed counters are forgotten.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import redis

from events.union import Event
from infra.feed_freshness import FreshnessRecorder, RedisFreshness
from infra.redis_adapters import sync_client
from infra.redis_adapters.counters import CachedCountersReadModel, CounterInvalidator
from infra.redis_adapters.feed_cache import CachedFeedReadModel, FeedCacheMirror
from infra.settings import Settings
from projections.store import Op, ReadModel

Listener = Callable[[Event, str, Sequence[Op]], None]


def redis_client(settings: Settings) -> redis.Redis:
    return sync_client(settings.redis_url)


def cached_read_model(durable: ReadModel, client: redis.Redis, settings: Settings) -> ReadModel:
    feed = CachedFeedReadModel(
        durable,
        client,
        prefix=settings.redis_prefix,
        cap=settings.feed_cache_cap,
        ttl_seconds=settings.feed_cache_ttl_seconds,
    )
    return CachedCountersReadModel(
        feed, client, prefix=settings.redis_prefix, ttl_seconds=settings.counter_cache_ttl_seconds
    )


def cache_listeners(client: redis.Redis, settings: Settings) -> list[Listener]:
    return [
        FeedCacheMirror(client, prefix=settings.redis_prefix, cap=settings.feed_cache_cap),
        CounterInvalidator(client, prefix=settings.redis_prefix),
        # After the mirror: a post counts as fresh once its fan-out is readable from the cache.
        FreshnessRecorder(RedisFreshness(client, settings.redis_prefix)),
    ]
