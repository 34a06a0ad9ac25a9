"""The Redis activity store passes the `ActivityStore` contract on the real server, and the
freshness histogram the worker writes reads back on any API process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from infra.feed_activity import RedisActivityStore, bucket_of
from infra.feed_freshness import MemoryFreshness, RedisFreshness, render
from infra.redis_adapters import sync_client
from tests.contracts.feed_activity_contract import ActivityStoreContract
from tests.integration.redis_env import prefix, r, redis_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration


class TestRedisActivityStore(ActivityStoreContract):
    @pytest.fixture
    def store(self, r: redis.Redis, prefix: str) -> Iterator[RedisActivityStore]:  # noqa: F811
        yield RedisActivityStore(r, prefix, grace_ms=0)


def test_two_processes_share_the_marks(r: redis.Redis, prefix: str) -> None:  # noqa: F811
    worker = RedisActivityStore(r, prefix, grace_ms=0)
    api = RedisActivityStore(sync_client(redis_url()), prefix, grace_ms=0)
    api.record_read(1, 1_000)
    api.clear_missed(1)
    assert worker.active_among([1, 2], since_ms=5_000) == []
    assert api.record_read(1, 6_000) is True
    api.clear_missed(1)
    assert worker.active_among([1], since_ms=5_000) == [1]


def test_young_marks_outlive_a_rebuild_for_the_grace_period(r: redis.Redis, prefix: str) -> None:  # noqa: F811
    """The worker may mark a skipped reader before the post reaches the timeline the
    rebuild reads: reads keep rebuilding until the mark is older than the grace."""
    store = RedisActivityStore(r, prefix, grace_ms=60_000)
    store.record_read(1, 1_000)
    assert store.active_among([1], since_ms=5_000) == []
    assert store.record_read(1, 6_000) is True
    store.clear_missed(1)
    assert store.record_read(1, 7_000) is True  # marked a moment ago: kept
    RedisActivityStore(r, prefix, grace_ms=0).clear_missed(1)
    assert store.record_read(1, 8_000) is False


def test_a_first_reads_mark_goes_with_its_first_rebuild(r: redis.Redis, prefix: str) -> None:  # noqa: F811
    """Nothing the worker holds back can concern a mark made by a first read: the grace
    would only make the reader's next minute of reads rebuild again."""
    store = RedisActivityStore(r, prefix, grace_ms=60_000)
    assert store.record_read(1, 1_000) is True
    store.clear_missed(1)
    assert store.record_read(1, 2_000) is False


def test_a_worker_mark_after_a_first_read_keeps_its_grace(r: redis.Redis, prefix: str) -> None:  # noqa: F811
    store = RedisActivityStore(r, prefix, grace_ms=60_000)
    r.hset(store.reads_key(bucket_of(1)), "1", 0)  # read long ago: the fan-out skips them
    assert store.active_among([1], since_ms=5_000) == []
    r.hdel(store.reads_key(bucket_of(1)), "1")  # then their reads are lost: the next one is a "first"
    assert store.record_read(1, 6_000) is True
    store.clear_missed(1)
    assert store.record_read(1, 7_000) is True  # the worker's young mark is kept


def test_without_redis_everyone_is_active_and_reads_serve_as_they_are() -> None:
    down = RedisActivityStore(sync_client("redis://127.0.0.1:1/0"), "nowhere:")
    assert down.active_among([3, 1, 2], since_ms=0) == [3, 1, 2]  # push to all: nothing skipped
    assert down.record_read(1, 0) is False


def test_the_worker_histogram_reads_back_the_same(r: redis.Redis, prefix: str) -> None:  # noqa: F811
    shared, local = RedisFreshness(r, prefix), MemoryFreshness()
    for seconds in (0.003, 0.04, 0.04, 7.0, 1e4):
        shared.observe(seconds)
        local.observe(seconds)
    assert render(RedisFreshness(sync_client(redis_url()), prefix)) == render(local)
    assert r.hget(f"{prefix}feed-freshness", "count") == b"5"
