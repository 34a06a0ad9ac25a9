"""The activity stores of the embedded mode and of tests pass the `ActivityStore` contract
(the Redis one: tests/integration/test_feed_activity_redis.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.feed_activity import READ_GRANULARITY_MS, SqliteActivityStore, bucket_of
from infra.storage.sqlite_eventlog import connect
from projections.feed.activity import EVERYONE_ACTIVE, MemoryActivityStore
from tests.contracts.feed_activity_contract import ActivityStoreContract


class TestMemoryActivityStore(ActivityStoreContract):
    @pytest.fixture
    def store(self) -> MemoryActivityStore:
        return MemoryActivityStore()


class TestSqliteActivityStore(ActivityStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqliteActivityStore]:
        conn = connect(tmp_path / "readmodels.db")
        yield SqliteActivityStore(conn)
        conn.close()


def test_sqlite_marks_roll_back_with_the_projectors_transaction(tmp_path: Path) -> None:
    conn = connect(tmp_path / "readmodels.db")
    store = SqliteActivityStore(conn)
    conn.execute("BEGIN IMMEDIATE")
    assert store.active_among([1], since_ms=0) == []
    conn.execute("ROLLBACK")  # the fan-out that skipped user 1 did not commit: no mark either
    assert conn.execute("SELECT count(*) FROM feed_activity").fetchone()[0] == 0
    conn.close()


def test_sqlite_writes_a_read_only_once_per_granule(tmp_path: Path) -> None:
    conn = connect(tmp_path / "readmodels.db")
    store = SqliteActivityStore(conn)

    def last_read() -> int:
        return int(conn.execute("SELECT last_read_ms FROM feed_activity WHERE user_id = 1").fetchone()[0])

    assert store.record_read(1, 1_000) is True
    store.clear_missed(1)
    writes = conn.total_changes
    assert store.record_read(1, 1_000 + READ_GRANULARITY_MS - 1) is False
    assert conn.total_changes == writes and last_read() == 1_000  # a moment later: nothing written
    assert store.record_read(1, 1_000 + READ_GRANULARITY_MS) is False
    assert last_read() == 1_000 + READ_GRANULARITY_MS
    store.active_among([1], since_ms=10**9)  # skipped: marked
    assert store.record_read(1, 2_000 + READ_GRANULARITY_MS) is True  # the mark shows without a write
    assert store.record_read(1, 500) is True and last_read() == 500  # a backdated read is written
    conn.close()


def test_everyone_is_active_for_replay() -> None:
    assert EVERYONE_ACTIVE.active_among([3, 1, 2], since_ms=10**15) == [3, 1, 2]
    assert EVERYONE_ACTIVE.record_read(1, 0) is False


def test_time_sortable_ids_spread_over_the_redis_buckets() -> None:
    from events.ids import IdGenerator

    ids = IdGenerator(shard=3)
    buckets = {bucket_of(ids()) for _ in range(2000)}
    assert len(buckets) == 64
    assert all(0 <= b < 64 for b in buckets)


def test_sqlite_skips_writing_a_mark_that_is_there_already(tmp_path: Path) -> None:
    """At a million users each rewritten mark dirtied a page of its own for the commit."""
    conn = connect(tmp_path / "readmodels.db")
    store = SqliteActivityStore(conn)
    store.record_read(2, 1_000)
    store.clear_missed(2)
    assert store.active_among([1, 2], since_ms=10**9) == []  # both skipped: 1 never read, 2 long ago
    writes = conn.total_changes
    assert store.active_among([1, 2], since_ms=10**9) == []
    assert conn.total_changes == writes  # marked already: nothing written
    store.clear_missed(2)
    assert store.active_among([1, 2], since_ms=10**9) == []
    assert conn.total_changes == writes + 2  # the clear, and 2's new mark
    assert store.record_read(2, 2_000) is True
    conn.close()
