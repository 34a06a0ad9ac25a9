"""Measure the feed cache on a Redis server: memory per entry and write/read throughput.

    python -m infra.redis_adapters.measure [--url redis://127.0.0.1:6379/11]

Uses a random key prefix and deletes its keys afterwards, so it can run against a
shared server (pick a database nobody else uses).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable

import redis

from events.ids import IdGenerator
from infra.redis_adapters.feed_cache import DEFAULT_CAP, FLOOR, CachedFeedReadModel, FeedCacheMirror, entry
from infra.storage.memory_readmodel import MemoryReadModel
from projections.feed import FEED
from projections.store import Put


def _cleanup(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


def bytes_per_entry(client: redis.Redis, prefix: str, n: int) -> tuple[float, str]:
    gen = IdGenerator(shard=5)
    key = f"{prefix}feed:{{mem{n}}}"
    client.zadd(key, {entry(gen(), 1_000_000 + i % 5000): 0 for i in range(n)})
    usage = client.memory_usage(key, samples=0) or 0
    encoding = client.object("encoding", key)
    client.delete(key)
    return usage / n, encoding.decode() if isinstance(encoding, bytes) else str(encoding)


def _rate(count: int, run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def pipelined_zadd_per_second(client: redis.Redis, prefix: str, total: int = 200_000, batch: int = 1000) -> float:
    gen = IdGenerator(shard=6)

    def run() -> None:
        for start in range(0, total, batch):
            pipe = client.pipeline(transaction=False)
            for i in range(start, start + batch):
                pipe.zadd(f"{prefix}feed:{{z{i % 10_000}}}", {entry(gen(), i): 0})
            pipe.execute()

    return _rate(total, run)


def mirrored_entries_per_second(client: redis.Redis, prefix: str, followers: int = 1000, posts: int = 50) -> float:
    """A post fanned out to `followers` cached feeds per mirror call (one script per feed, one round trip)."""
    mirror = FeedCacheMirror(client, prefix=prefix)
    pipe = client.pipeline(transaction=False)
    for user in range(followers):
        pipe.zadd(mirror.keys.feed(user), {FLOOR: 0})  # every follower has a cached feed
    pipe.execute()
    gen = IdGenerator(shard=7)

    def run() -> None:
        for _ in range(posts):
            post = gen()
            mirror.apply([Put(FEED.name, {"user_id": u, "post_id": post, "author_id": 42}) for u in range(followers)])

    return _rate(followers * posts, run)


def cached_pages_per_second(client: redis.Redis, prefix: str, pages: int = 5000, limit: int = 20) -> float:
    durable = MemoryReadModel([FEED])
    gen = IdGenerator(shard=8)
    reader = 10**9  # nobody the other measurements touch
    durable.apply([Put(FEED.name, {"user_id": reader, "post_id": gen(), "author_id": 7}) for _ in range(500)])
    cached = CachedFeedReadModel(durable, client, prefix=prefix)
    cached.scan(FEED.name, {"user_id": reader}, desc=True, limit=limit)  # warm

    def run() -> None:
        for _ in range(pages):
            cached.scan(FEED.name, {"user_id": reader}, desc=True, limit=limit)

    rate = _rate(pages, run)
    assert cached.stats["hits"] == pages
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("GLIMPSE_REDIS_URL", "redis://127.0.0.1:6379/11"))
    args = parser.parse_args()
    client = redis.Redis.from_url(args.url)
    prefix = f"measure{uuid.uuid4().hex[:8]}:"
    try:
        listpack_max = client.config_get("zset-max-listpack-entries").get("zset-max-listpack-entries")
        print(f"server: Redis {client.info('server')['redis_version']}, zset-max-listpack-entries={listpack_max}")
        for n in (DEFAULT_CAP, 400, 800):
            per_entry, encoding = bytes_per_entry(client, prefix, n)
            print(f"feed of {n:4d} entries: {per_entry:6.1f} bytes/entry ({encoding})")
        print(f"pipelined ZADD (1000 per round trip): {pipelined_zadd_per_second(client, prefix):,.0f}/s")
        print(f"mirrored feed entries (fan-out of 1000): {mirrored_entries_per_second(client, prefix):,.0f}/s")
        print(f"cached feed pages of 20 (one client): {cached_pages_per_second(client, prefix):,.0f}/s")
    finally:
        _cleanup(client, prefix)
        client.close()


if __name__ == "__main__":
    main()
