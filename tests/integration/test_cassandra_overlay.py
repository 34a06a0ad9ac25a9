"""The batch overlay over the real Cassandra adapter: bulk reads (IN queries over key
boxes), the concurrent flush (prefix deletes, row writes, grouped recounts), the write-
through cache across batches, and the flush journal.

The reference is always the in-memory model fed the same operations one by one (the
unit tests hold the overlay to that over the in-memory model; these hold the Cassandra
side of it: `read_bulk` and `write_changes` must serve the overlay exactly as
`get`/`scan`/`count`/`find` and `apply` would).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.storage.memory_readmodel import MemoryReadModel
from infra.worker.overlay import BatchOverlay, run_projections
from projections.registry import PROJECTIONS, all_tables
from projections.store import Put, SetAdd
from tests.contracts.readmodel_contract import TABLES, ReadModelContract
from tests.integration.test_cassandra_adapters import new_keyspace, session  # noqa: F401 - fixture
from tests.unit.test_worker_overlay import (
    RecordingWorld,
    _feed_counter,
    _play,
    _read,
    actions,
    rows_of,
    steps,
)

pytestmark = pytest.mark.integration

from infra.cassandra.flush_journal import CassandraFlushJournal  # noqa: E402
from infra.cassandra.migrations import migrate  # noqa: E402
from infra.cassandra.readmodel import CassandraReadModel  # noqa: E402
from infra.cassandra.session import drop_keyspace  # noqa: E402


@pytest.fixture(scope="module")
def keyspace(session: Any) -> Iterator[str]:  # noqa: F811
    name = new_keyspace(session)
    try:
        migrate(session, name, all_tables())
        CassandraReadModel(session, name, TABLES, prefix="c_").create_schema()
        yield name
    finally:
        drop_keyspace(session, name)


def _truncate(cql: Any, keyspace: str, prefix: str, tables: Any) -> None:
    for t in tables:
        cql.execute(f"TRUNCATE {keyspace}.{prefix}{t.name}")


class TestOverlayOverCassandra(ReadModelContract):
    @pytest.fixture(autouse=True)
    def _store(self, session: Any, keyspace: str) -> None:  # noqa: F811
        _truncate(session, keyspace, "c_", TABLES)
        self.inner = CassandraReadModel(session, keyspace, TABLES, prefix="c_")

    def make(self) -> Any:
        overlay = BatchOverlay(self.inner, TABLES)

        class FlushingEveryApply:
            def __getattr__(self, name: str) -> Any:
                return getattr(overlay, name)

            def create_schema(self) -> None:
                """The module fixture made it."""

            def apply(self, ops: Any) -> None:
                overlay.apply(ops)
                overlay.flush()

        return FlushingEveryApply()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps, st.booleans())
def test_reads_and_flushes_over_cassandra_equal_the_plain_model(
    session: Any,  # noqa: F811
    keyspace: str,
    history: list[tuple[Any, ...]],
    retain: bool,
) -> None:
    _truncate(session, keyspace, "c_", TABLES)
    plain = MemoryReadModel(TABLES)
    overlay = BatchOverlay(CassandraReadModel(session, keyspace, TABLES, prefix="c_"), TABLES)
    overlay.retain = retain
    overlay.begin()
    for step in history:
        if step[0] == "apply":
            plain.apply(step[1])
            overlay.apply(step[1])
        elif step[0] == "read":
            assert _read(overlay, step[1]) == _read(plain, step[1]), step[1]
        else:
            overlay.flush()
    overlay.flush()
    assert rows_of(overlay.inner, TABLES) == rows_of(plain, TABLES)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions, st.data())
def test_projections_over_cassandra_in_batches_match_event_by_event(
    session: Any,  # noqa: F811
    keyspace: str,
    script: list[tuple[str, int, int, int]],
    data: st.DataObject,
) -> None:
    world = RecordingWorld()
    try:
        _play(world, script)
    except Exception:
        return  # a history the projections themselves refuse is not this test's business
    _truncate(session, keyspace, "rm_", all_tables())
    inner = CassandraReadModel(session, keyspace, all_tables())
    overlay = BatchOverlay(inner, all_tables())
    overlay.retain = data.draw(st.booleans(), label="retain")
    n = len(world.events)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, n - 1)), max_size=4), label="cuts")))
    emitted: list[Any] = []
    for start, end in itertools.pairwise([0, *cuts, n]):
        if start < end:
            run_projections(overlay, world.events[start:end], PROJECTIONS, lambda i, p, ops: emitted.append(ops))
            overlay.flush()
    assert emitted == world.ops
    assert rows_of(inner, all_tables()) == rows_of(world.read, all_tables())


def test_bulk_point_reads_answer_every_key_shape(session: Any, keyspace: str) -> None:  # noqa: F811
    _truncate(session, keyspace, "c_", TABLES)
    rm = CassandraReadModel(session, keyspace, TABLES, prefix="c_")
    rm.apply(
        [
            Put("t_pairs", {"a": a, "b": b, "c": c, "v": a * 100 + b * 10 + c})
            for a in (1, 2)
            for b in (1, 2, 3)
            for c in (1, 2)
        ]
    )
    rm.apply([Put("t_docs", {"doc_id": d, "title": str(d), "tags": [d]}) for d in range(150)])
    wanted = [("get", "t_pairs", (a, b, c)) for a in (1, 2, 3) for b in (3, 1) for c in (2, 9)]
    wanted += [("get", "t_docs", (d,)) for d in range(0, 300, 7)]
    got = rm.read_bulk(wanted)
    for request, row in zip(wanted, got, strict=True):
        t = request[1]
        expected = rm.get(t, dict(zip(("a", "b", "c") if t == "t_pairs" else ("doc_id",), request[2], strict=True)))
        assert row == expected, request


def test_recounts_after_the_flush_are_the_sizes_of_the_sets(session: Any, keyspace: str) -> None:  # noqa: F811
    _truncate(session, keyspace, "c_", TABLES)
    inner = CassandraReadModel(session, keyspace, TABLES, prefix="c_")
    # Drift, as a worker killed between a set change and its counter would have left it:
    inner.apply([Put("t_feed", {"user_id": 1, "post_id": p, "author_id": 0}) for p in range(5)])
    inner.apply([Put("t_counts", {"user_id": 1, "n": 2})])
    overlay = BatchOverlay(inner, TABLES)
    overlay.retain = True
    overlay.apply([SetAdd("t_feed", {"user_id": 1, "post_id": 9, "author_id": 0}, _feed_counter(1))])
    overlay.flush()
    assert inner.get("t_counts", {"user_id": 1})["n"] == 6  # recounted, not incremented
    assert overlay.get("t_counts", {"user_id": 1})["n"] == 6  # and the cache knows


def test_the_flush_journal_round_trips_and_ignores_a_torn_record(session: Any, keyspace: str) -> None:  # noqa: F811
    group = f"g-{uuid.uuid4().hex[:8]}"
    journal = CassandraFlushJournal(session, keyspace, writer="first")
    overlay = BatchOverlay(MemoryReadModel(TABLES), TABLES)
    overlay.apply([Put("t_docs", {"doc_id": d, "title": "x" * 2000}) for d in range(300)])  # > one chunk
    changes = overlay.changes()
    journal.record(group, changes)
    assert changes.early is not None and changes.late is not None and changes.early < changes.late
    [(writer, found)] = journal.unfinished(group)
    assert writer == "first" and found == changes
    journal.done(group)
    assert journal.unfinished(group) == []
    # A record whose chunks did not all land (the writer died while journaling) is not trusted.
    torn = CassandraFlushJournal(session, keyspace, writer="torn")
    torn.record(group, overlay.changes())
    session.execute(
        f"DELETE FROM {keyspace}.worker_flushes WHERE group_name = %s AND writer = %s AND chunk = 0", (group, "torn")
    )
    assert journal.unfinished(group) == []
    # Another worker finishing a record marks it done.
    other = CassandraFlushJournal(session, keyspace, writer="other")
    other.record(group, overlay.changes())
    journal.finish(group, "other")
    assert journal.unfinished(group) == []
