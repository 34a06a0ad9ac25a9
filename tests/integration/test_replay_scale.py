"""`glimpse replay --mode scale` against the real Kafka and Cassandra (infra/replay_scale.py).

A history written by the real commands is produced to fresh topics, keyed by aggregate
as the Kafka event log keys it; the live read models are built from it in Cassandra
through the same adapter the worker uses. The replay reads the topics from offset
zero into new tables beside the live ones, and gives the live digests, twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from events.union import encode
from infra.replay import project_event
from infra.settings import Settings
from projections.registry import PROJECTIONS, all_tables
from tests.integration.kafka_env import delete_topics, isolated
from tests.unit.replay_histories import History

pytestmark = pytest.mark.integration

pytest.importorskip("cassandra")

from infra.cassandra.readmodel import CassandraReadModel  # noqa: E402
from infra.kafka.topics import ensure_topics  # noqa: E402
from infra.replay_scale import MergedTopics, _produce, replay_into  # noqa: E402

STEPS = [
    ("register", 0, 0, 0),
    ("register", 1, 0, 0),
    ("register", 2, 0, 0),
    ("follow", 0, 1, 1),
    ("follow", 2, 1, 1),
    ("follow", 1, 0, 1),
    ("post", 1, 0, 2),
    ("post", 0, 1, 1),
    ("like", 0, 0, 0),
    ("like", 2, 1, 0),
    ("comment", 2, 0, 1),
    ("story", 1, 0, 2),
    ("view_story", 0, 0, 0),
    ("close_friends", 1, 0, 5),
    ("block", 2, 0, 1),
    ("private", 0, 0, 1),
    ("follow", 2, 0, 1),
    ("approve", 0, 2, 1),
    ("delete_comment", 2, 0, 0),
    ("read_notifications", 1, 0, 0),
]


@contextmanager
def keyspace(settings: Settings) -> Iterator[Any]:
    """A migrated keyspace with the read-model tables, dropped afterwards (patiently: the
    servers are shared, and schema changes on a busy node take their time)."""
    from infra.cassandra.migrations import migrate
    from infra.cassandra.session import connect, ensure_keyspace

    session = connect(settings, request_timeout=180)
    try:
        ensure_keyspace(session, settings.cassandra_keyspace, 1)
        migrate(session, settings.cassandra_keyspace, all_tables())
        yield session
    finally:
        try:
            session.execute(f"DROP KEYSPACE IF EXISTS {settings.cassandra_keyspace}", timeout=180)
        finally:
            session.cluster.shutdown()


@pytest.fixture
def world() -> Iterator[tuple[Any, Any, History]]:
    settings = isolated(kafka_partitions=3)
    history = History().run(STEPS * 2)
    events = [e for _, e in history.events()]
    ensure_topics(settings)
    try:
        _produce(settings, [(e.STREAM, e.aggregate_id, encode(e)) for e in events])
        with keyspace(settings) as session:
            live = CassandraReadModel(session, settings.cassandra_keyspace, all_tables())
            for position, event in enumerate(events, 1):  # as the worker applies them, in log order
                project_event(live, PROJECTIONS, position, event)
            yield settings, session, history
    finally:
        delete_topics(settings)


def test_a_scale_replay_gives_the_live_digests_every_time(world: tuple[Any, Any, History]) -> None:
    settings, session, history = world
    first = replay_into(settings, session, PROJECTIONS, [], keep=True, switch=False)
    assert first.events == history.log.head()
    assert first.prefix == f"rm{first.build_id}_"
    assert {n: d["digest"] for n, d in first.digests.items()} == {n: d["digest"] for n, d in first.live_digests.items()}
    kept = {
        r[0]
        for r in session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (settings.cassandra_keyspace,)
        )
    }
    assert f"{first.prefix}accounts" in kept and "rm_accounts" in kept
    second = replay_into(settings, session, PROJECTIONS, ["notifications"], keep=False, switch=False)
    assert second.build_id == first.build_id + 1 and second.helpers == ("profile",)
    assert second.digests["notifications"]["digest"] == first.digests["notifications"]["digest"]
    left = {
        r[0]
        for r in session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (settings.cassandra_keyspace,)
        )
    }
    assert f"{second.prefix}notification_groups" not in left
    states = dict(session.execute(f"SELECT build_id, state FROM {settings.cassandra_keyspace}.readmodel_builds"))
    assert states == {first.build_id: "built", second.build_id: "dropped"}


def test_merged_topics_keep_each_partition_in_order_and_see_records_appended_later(
    world: tuple[Any, Any, History],
) -> None:
    settings, _, history = world
    events = [e for _, e in history.events()]
    topics = MergedTopics(settings)
    try:
        topics.open()
        assert topics.head() == len(events)
        merged = [e for _, e in topics.read(0, 10**6)]
        assert sorted(e.event_id for e in merged) == sorted(e.event_id for e in events)
        by_key: dict[tuple[str, int], list[int]] = {}
        for e in merged:
            by_key.setdefault((e.STREAM, e.aggregate_id), []).append(e.event_id)
        for e_ids in by_key.values():
            assert e_ids == sorted(e_ids)  # a key's events keep their log order
        extra = History().run(STEPS[:4])
        _produce(settings, [(e.STREAM, e.aggregate_id, encode(e)) for _, e in extra.events()])
        assert topics.read(len(events), 100) == []  # beyond the snapshot until the ends move
        topics.extend_to_ends()
        later = topics.read(len(events), 100)
        assert [p for p, _ in later] == list(range(len(events) + 1, len(events) + len(extra.events()) + 1))
    finally:
        topics.close()
