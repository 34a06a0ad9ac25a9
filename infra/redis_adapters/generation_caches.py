"""The Redis feed and counter caches of the active read-model generation.

The caches mirror the durable feed and counter tables. When a scale replay switches the
read models to rebuilt tables (infra/cassandra/generations.py), whatever the caches hold
was copied from the old tables; so each generation epoch has its own key prefix
(`<redis prefix>g<epoch>:`, the bare prefix before any switch) and the new tables are
cached from scratch, read-through, as on a cold start. Nothing else keyed by the prefix
(pub/sub, rate limits, feed activity and freshness) changes with the generation.

`GenerationCaches` is the API processes' read port over the durable model and the mirror
their feed repairs go through; `GenerationListeners` the worker's cache listeners. Both
switch prefix when the router calls `switch(epoch)`. `forget_generation` deletes an old
epoch's keys once its tables are dropped (they would expire on their own anyway).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import redis

from events.union import Event
from infra.redis_adapters.counters import CachedCountersReadModel, CounterInvalidator
from infra.redis_adapters.feed_cache import CachedFeedReadModel, FeedCacheMirror
from infra.settings import Settings
from projections.store import Gets, Key, Op, ReadModel, Row, Scan, get_each, scan_each


def cache_prefix(base: str, epoch: int) -> str:
    return base if epoch <= 0 else f"{base}g{epoch}:"


class GenerationCaches:
    """A ReadModel: the durable model behind the feed and counter caches of the current epoch."""

    def __init__(self, durable: ReadModel, client: redis.Redis, settings: Settings, epoch: int = 0) -> None:
        self._durable = durable
        self._client = client
        self._settings = settings
        self._lock = threading.Lock()
        self.switch(epoch)

    def switch(self, epoch: int) -> None:
        prefix = cache_prefix(self._settings.redis_prefix, epoch)
        s = self._settings
        feed = CachedFeedReadModel(
            self._durable, self._client, prefix=prefix, cap=s.feed_cache_cap, ttl_seconds=s.feed_cache_ttl_seconds
        )
        read = CachedCountersReadModel(feed, self._client, prefix=prefix, ttl_seconds=s.counter_cache_ttl_seconds)
        mirror = FeedCacheMirror(self._client, prefix=prefix, cap=s.feed_cache_cap)
        with self._lock:
            self.epoch, self.prefix, self._read, self._mirror = epoch, prefix, read, mirror

    def mirror(self, ops: Sequence[Op]) -> None:
        """Mirror a rebuilt feed written to the durable tables (the feed's `repair`)."""
        self._mirror.apply(ops)

    # -- ReadModel --------------------------------------------------------------------
    def get(self, table: str, key: Key) -> Row | None:
        return self._read.get(table, key)

    def get_many(self, table: str, keys: Sequence[Key]) -> list[Row]:
        return self._read.get_many(table, keys)

    def get_many_each(self, gets: Sequence[Gets]) -> list[list[Row]]:
        return get_each(self._read, gets)

    def scan(
        self,
        table: str,
        prefix: Key,
        *,
        before: Any = None,
        after: Any = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[Row]:
        return self._read.scan(table, prefix, before=before, after=after, desc=desc, limit=limit)

    def scan_many(self, scans: Sequence[Scan]) -> list[list[Row]]:
        return scan_each(self._read, scans)

    def count(self, table: str, prefix: Key) -> int:
        return self._read.count(table, prefix)

    def find(self, table: str, where: Key, limit: int | None = None) -> list[Row]:
        return self._read.find(table, where, limit)


class GenerationListeners:
    """The worker's cache listeners (feed mirror, counter invalidation) for the current epoch."""

    def __init__(self, client: redis.Redis, settings: Settings, epoch: int = 0) -> None:
        self._client = client
        self._settings = settings
        self.switch(epoch)

    def switch(self, epoch: int) -> None:
        prefix = cache_prefix(self._settings.redis_prefix, epoch)
        self.epoch = epoch
        self._listeners = (
            FeedCacheMirror(self._client, prefix=prefix, cap=self._settings.feed_cache_cap),
            CounterInvalidator(self._client, prefix=prefix),
        )

    def __call__(self, event: Event, projection: str, ops: Sequence[Op]) -> None:
        for listener in self._listeners:
            listener(event, projection, ops)


def forget_generation(client: redis.Redis, base: str, epoch: int) -> int:
    """Delete the cached feeds and counters of `epoch`; returns how many keys went."""
    prefix = cache_prefix(base, epoch)
    deleted = 0
    for pattern in (f"{prefix}feed:*", f"{prefix}feed-warm:*", f"{prefix}count:*"):
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) == 500:
                deleted += int(client.delete(*batch))
                batch = []
        if batch:
            deleted += int(client.delete(*batch))
    return deleted
