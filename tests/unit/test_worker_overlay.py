"""The batch overlay (infra/worker/overlay.py) against the in-memory read model.

What it must guarantee: every read made through it while a batch is projected is what
the read model would return had the batch's operations been applied one by one, and
after the flush the read model holds exactly what applying them one by one leaves.
Checked four ways: the read-model contract (with and without flushes in between),
random operations and reads against the plain model, the real projections over random
histories and over the demo seeder's history cut into batches of every size, and the
batch applier on top (poison records, positions after data, a flush that dies half-way).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from events.accounts import AccountDeleted, AccountRegistered
from events.engagement import CommentDeleted, Commented, Liked, Unliked
from events.graph import Blocked, Followed, Unfollowed
from events.posts import PostCreated, PostDeleted
from events.union import Event
from infra.storage.memory_readmodel import MemoryReadModel
from infra.worker.applier import BatchApplier, Partition, PoisonRecord, Record
from infra.worker.changes import MemoryFlushJournal, decode_changes, encode_changes
from infra.worker.overlay import BatchOverlay, run_projections
from projections.projection import Projection
from projections.registry import PROJECTIONS, all_tables
from projections.store import (
    CounterRef,
    Delete,
    Increment,
    Op,
    Patch,
    Put,
    ReadModel,
    SetAdd,
    SetRemove,
    Table,
)
from tests.contracts.eventlog_contract import registered
from tests.contracts.readmodel_contract import TABLES, ReadModelContract
from tests.unit.stories_world import World


class KeyOrderedMemory(MemoryReadModel):
    """The in-memory model with `find` in key order, as the overlay (and SQLite's index) give it:
    the port promises no order, and the reference must not differ from the overlay by that."""

    def find(self, table: str, where: Any, limit: int | None = None) -> list[Any]:
        t = self._table(table)
        rows = sorted(super().find(table, where), key=lambda r: tuple(r[c] for c in t.key))
        return rows[:limit] if limit is not None else rows


def rows_of(read: ReadModel, tables: Sequence[Table]) -> dict[str, list[bytes]]:
    out = {}
    for t in tables:
        found = read.scan(t.name, {})
        found.sort(key=lambda r: tuple(r[c] for c in t.key))
        out[t.name] = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in found]
    return out


# -- the read-model contract ----------------------------------------------------------


class TestOverlayKeepingEverything(ReadModelContract):
    """Never flushed: every read is answered from the delta over an empty base."""

    def make(self) -> Any:
        return BatchOverlay(MemoryReadModel(TABLES), TABLES)


class _FlushingEvery:
    """The overlay, flushed after every `n`-th apply: reads merge a base and a delta."""

    def __init__(self, n: int) -> None:
        self.overlay = BatchOverlay(MemoryReadModel(TABLES), TABLES)
        self.n = n
        self.applies = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.overlay, name)

    def apply(self, ops: Sequence[Op]) -> None:
        self.overlay.apply(ops)
        self.applies += 1
        if self.applies % self.n == 0:
            self.overlay.flush()


class TestOverlayFlushingEachApply(ReadModelContract):
    def make(self) -> Any:
        return _FlushingEvery(1)


class TestOverlayFlushingEveryOtherApply(ReadModelContract):
    def make(self) -> Any:
        return _FlushingEvery(2)


# -- random operations and reads --------------------------------------------------------

COUNTER = "t_counts"
users = st.integers(1, 3)
posts = st.integers(1, 5)


def _feed_counter(user: int) -> tuple[CounterRef, ...]:
    return (CounterRef(COUNTER, {"user_id": user}, "n"),)


# The set t_feed is only changed with its counter, the counter only through the set:
# that is the shape (a counter is its set's size) under which recounting is exact.
set_ops = st.one_of(
    st.builds(
        lambda u, p, a: SetAdd("t_feed", {"user_id": u, "post_id": p, "author_id": a}, _feed_counter(u)),
        users,
        posts,
        st.integers(1, 3),
    ),
    st.builds(lambda u, p: SetRemove("t_feed", {"user_id": u, "post_id": p}, _feed_counter(u)), users, posts),
)
docs = st.integers(1, 4)
titles = st.sampled_from(["x", "y", None])
other_ops = st.one_of(
    st.builds(
        lambda d, t, tags, flag: Put("t_docs", {"doc_id": d, "title": t, "tags": tags, "flag": flag}),
        docs,
        titles,
        st.one_of(st.none(), st.lists(st.integers(0, 3), max_size=2)),
        st.one_of(st.none(), st.booleans()),
    ),
    st.builds(lambda d, t: Patch("t_docs", {"doc_id": d}, {"title": t}), docs, titles),
    st.builds(lambda d: Delete("t_docs", {"doc_id": d}), docs),
    st.builds(
        lambda a, b, c, v: Put("t_pairs", {"a": a, "b": b, "c": c, "v": v}),
        st.integers(1, 2),
        st.integers(1, 3),
        st.integers(1, 3),
        st.integers(0, 9),
    ),
    st.builds(lambda a, b: Delete("t_pairs", {"a": a, "b": b}), st.integers(1, 2), st.integers(1, 3)),
    st.builds(lambda a: Delete("t_pairs", {"a": a}), st.integers(1, 2)),
    st.builds(
        lambda a, b, c: Delete("t_pairs", {"a": a, "b": b, "c": c}),
        st.integers(1, 2),
        st.integers(1, 3),
        st.integers(1, 3),
    ),
    st.builds(lambda u, d: Increment(COUNTER, {"user_id": u}, "m", d), users, st.integers(-2, 2)),
)
reads = st.one_of(
    st.tuples(st.just("get"), st.sampled_from(["t_feed"]), st.fixed_dictionaries({"user_id": users, "post_id": posts})),
    st.tuples(st.just("get"), st.just(COUNTER), st.fixed_dictionaries({"user_id": users})),
    st.tuples(st.just("get"), st.just("t_docs"), st.fixed_dictionaries({"doc_id": docs})),
    st.tuples(
        st.just("scan"),
        st.just("t_feed"),
        st.fixed_dictionaries({"user_id": users}),
        st.one_of(st.none(), posts),
        st.one_of(st.none(), posts),
        st.booleans(),
        st.one_of(st.none(), st.integers(0, 4)),
    ),
    st.tuples(
        st.just("scan"),
        st.just("t_pairs"),
        st.one_of(
            st.fixed_dictionaries({}),
            st.fixed_dictionaries({"a": st.integers(1, 2)}),
            st.fixed_dictionaries({"a": st.integers(1, 2), "b": st.integers(1, 3)}),
        ),
        st.one_of(st.none(), st.integers(1, 3)),
        st.none(),
        st.booleans(),
        st.one_of(st.none(), st.integers(1, 5)),
    ),
    st.tuples(st.just("count"), st.just("t_feed"), st.one_of(st.just({}), st.fixed_dictionaries({"user_id": users}))),
    st.tuples(st.just("count"), st.just("t_pairs"), st.fixed_dictionaries({"a": st.integers(1, 2)})),
    st.tuples(st.just("find"), st.just("t_docs"), st.sampled_from(["x", "y"]), st.one_of(st.none(), st.integers(1, 3))),
    st.tuples(st.just("get_many"), st.just("t_docs"), st.lists(docs, max_size=4)),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("apply"), st.lists(st.one_of(set_ops, other_ops), min_size=1, max_size=4)),
        st.tuples(st.just("read"), reads),
        st.tuples(st.just("flush")),
    ),
    max_size=40,
)


def _read(rm: Any, read: tuple[Any, ...]) -> Any:
    kind, table = read[0], read[1]
    if kind == "get":
        return rm.get(table, read[2])
    if kind == "scan":
        _, _, prefix, before, after, desc, limit = read
        return rm.scan(table, prefix, before=before, after=after, desc=desc, limit=limit)
    if kind == "count":
        return rm.count(table, read[2])
    if kind == "find":
        found = rm.find(table, {"title": read[2]}, limit=read[3])
        # `find` promises no order; with a limit, only how many.
        return len(found) if read[3] is not None else sorted(r["doc_id"] for r in found)
    return rm.get_many(table, [{"doc_id": d} for d in read[2]])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_reads_through_the_overlay_equal_the_plain_model(history: list[tuple[Any, ...]]) -> None:
    plain = MemoryReadModel(TABLES)
    overlay = BatchOverlay(MemoryReadModel(TABLES), TABLES)
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


def test_a_scan_with_a_limit_asks_the_base_for_the_rows_the_batch_hides() -> None:
    inner = MemoryReadModel(TABLES)
    inner.apply([Put("t_feed", {"user_id": 1, "post_id": p, "author_id": 0}) for p in range(1, 8)])
    overlay = BatchOverlay(inner, TABLES)
    overlay.apply([Delete("t_feed", {"user_id": 1, "post_id": p}) for p in (1, 2, 3)])
    overlay.apply([Put("t_feed", {"user_id": 1, "post_id": 0, "author_id": 9})])
    assert [r["post_id"] for r in overlay.scan("t_feed", {"user_id": 1}, limit=3)] == [0, 4, 5]
    assert [r["post_id"] for r in overlay.scan("t_feed", {"user_id": 1}, desc=True, before=5, limit=2)] == [4, 0]
    assert overlay.count("t_feed", {"user_id": 1}) == 5
    overlay.apply([Delete("t_pairs", {"a": 1})])
    assert overlay.scan("t_pairs", {"a": 1}) == []


def test_recounts_are_scheduled_once_per_cell_and_dropped_when_overwritten() -> None:
    overlay = BatchOverlay(MemoryReadModel(TABLES), TABLES)
    overlay.apply([SetAdd("t_feed", {"user_id": 1, "post_id": p, "author_id": 0}, _feed_counter(1)) for p in (1, 2)])
    overlay.apply([SetAdd("t_feed", {"user_id": 2, "post_id": 1, "author_id": 0}, _feed_counter(2))])
    overlay.apply([Put(COUNTER, {"user_id": 2, "n": 7})])  # overwritten after its set changed
    assert overlay.get(COUNTER, {"user_id": 1}) == {"user_id": 1, "n": 2, "m": None}
    recounts = overlay.changes().recounts
    assert [(r.key, r.column, r.set_table, r.partition) for r in recounts] == [((1,), "n", "t_feed", (1,))]
    overlay.flush()
    assert overlay.inner.get(COUNTER, {"user_id": 2}) == {"user_id": 2, "n": 7, "m": None}


def test_changes_survive_the_journal_encoding() -> None:
    overlay = BatchOverlay(MemoryReadModel(TABLES), TABLES)
    overlay.apply(
        [
            Put("t_docs", {"doc_id": 1, "tags": [1, "a"], "meta": {"k": [1]}, "flag": True}),
            SetAdd("t_feed", {"user_id": 1, "post_id": 2, "author_id": 3}, _feed_counter(1)),
            Delete("t_pairs", {"a": 1}),
            Increment(COUNTER, {"user_id": 4}, "m", 2),
        ]
    )
    changes = overlay.changes()
    changes.early, changes.late = 5, 6
    assert decode_changes(encode_changes(changes)) == changes


# -- the real projections ---------------------------------------------------------------


class RecordingWorld(World):
    """The stories world, keeping every event it applied (event by event: the reference)."""

    def __init__(self) -> None:
        super().__init__()
        self.read = KeyOrderedMemory(all_tables())
        self.events: list[Event] = []
        self.ops: list[list[Op]] = []

    def apply(self, event: Event) -> Event:
        for p in PROJECTIONS:
            ops = p.project(event, self.read)
            self.read.apply(ops)
            self.ops.append(ops)
        self.events.append(event)
        return event


actions = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "follow",
                "follow",
                "unfollow",
                "request",
                "block",
                "close_friends",
                "post",
                "post",
                "delete_post",
                "like",
                "like",
                "unlike",
                "comment",
                "delete_comment",
                "story",
                "view",
                "expire",
                "delete_account",
            ]
        ),
        st.integers(0, 5),
        st.integers(0, 5),
        st.integers(0, 9),
    ),
    min_size=1,
    max_size=45,
)


def _play(world: RecordingWorld, script: list[tuple[str, int, int, int]]) -> None:
    people = [world.user(f"u{i}", private=i == 4) for i in range(6)]
    made: dict[str, list[Any]] = {"post": [], "comment": [], "story": []}

    def pick(kind: str, n: int) -> Any:
        return made[kind][n % len(made[kind])] if made[kind] else None

    for action, a, b, n in script:
        x, y = people[a], people[b]
        if action == "follow" and a != b:
            world.follow(x, y)
        elif action == "unfollow" and a != b:
            world.unfollow(x, y)
        elif action == "request" and a != b:
            world.request(x, y)
        elif action == "block" and a != b:
            world.block(x, y)
        elif action == "close_friends":
            world.close_friends(x, *[p for p in people if p != x][: n % 3])
        elif action == "post":
            made["post"].append(world.post(x, "followers" if n % 3 == 0 else "public", mentions=(y,) if n % 2 else ()))
        elif action == "delete_post" and pick("post", n) is not None:
            world.delete_post(pick("post", n))
        elif action == "like" and pick("post", n) is not None:
            world.like(x, pick("post", n))
        elif action == "unlike" and pick("post", n) is not None:
            world.unlike(x, pick("post", n))
        elif action == "comment" and pick("post", n) is not None:
            made["comment"].append(world.comment(x, pick("post", n), mentions=(y,) if n % 2 else ()))
        elif action == "delete_comment" and pick("comment", n) is not None:
            world.delete_comment(pick("comment", n), x)
        elif action == "story":
            made["story"].append(world.story(x, "close_friends" if n % 4 == 0 else "followers"))
        elif action == "view" and pick("story", n) is not None:
            world.view(x, pick("story", n))
        elif action == "expire" and pick("story", n) is not None:
            world.expire(pick("story", n))
        elif action == "delete_account" and n < 2:
            world.delete_account(x)
        world.tick(60)


def _replay_in_batches(
    events: Sequence[Event], cuts: Sequence[int], projections: Sequence[Projection] = PROJECTIONS
) -> tuple[MemoryReadModel, list[list[Op]]]:
    inner = MemoryReadModel(all_tables())
    overlay = BatchOverlay(inner, all_tables(), lookahead=7, waves=3)
    emitted: list[list[Op]] = []
    bounds = [0, *sorted(set(cuts)), len(events)]
    for start, end in itertools.pairwise(bounds):
        if start < end:
            run_projections(overlay, events[start:end], projections, lambda i, p, ops: emitted.append(ops))
            overlay.flush()
    return inner, emitted


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(actions, st.data())
def test_projections_through_the_overlay_match_event_by_event(
    script: list[tuple[str, int, int, int]], data: st.DataObject
) -> None:
    world = RecordingWorld()
    try:
        _play(world, script)
    except Exception:
        assume(False)  # a history the projections themselves refuse is not this test's business
    n = len(world.events)
    cuts = data.draw(st.lists(st.integers(1, max(1, n - 1)), max_size=6), label="batch boundaries")
    inner, emitted = _replay_in_batches(world.events, cuts)
    # Equal operations for every event and projection: every read gave the same answer.
    assert emitted == world.ops
    assert rows_of(inner, all_tables()) == rows_of(world.read, all_tables())


_ENV = {"occurred_at": datetime(2025, 6, 2, tzinfo=UTC)}


def _destructive_tail(events: list[Event]) -> list[Event]:
    """Undo part of the seeded history: the seeder never unfollows, unlikes, deletes or blocks."""
    ids = itertools.count(max(e.event_id for e in events) + 1)
    tail: list[Event] = []

    def env(aggregate: int, actor: int) -> dict[str, Any]:
        return {"event_id": next(ids), "aggregate_id": aggregate, "actor_id": actor, **_ENV}

    follows = [e for e in events if isinstance(e, Followed)]
    for f in follows[:6]:
        tail.append(
            Unfollowed(**env(f.follower_id, f.follower_id), follower_id=f.follower_id, followee_id=f.followee_id)
        )
    for like in [e for e in events if isinstance(e, Liked)][:6]:
        tail.append(
            Unliked(
                **env(like.post_id, like.user_id),
                post_id=like.post_id,
                user_id=like.user_id,
                post_author_id=like.post_author_id,
            )
        )
    for c in [e for e in events if isinstance(e, Commented)][:4]:
        tail.append(
            CommentDeleted(
                **env(c.post_id, c.author_id), comment_id=c.comment_id, post_id=c.post_id, deleted_by=c.author_id
            )
        )
    for post in [e for e in events if isinstance(e, PostCreated)][:4]:
        tail.append(PostDeleted(**env(post.post_id, post.author_id), post_id=post.post_id, author_id=post.author_id))
    for f in follows[6:9]:
        tail.append(Blocked(**env(f.followee_id, f.followee_id), blocker_id=f.followee_id, blocked_id=f.follower_id))
    for user in [e for e in events if isinstance(e, AccountRegistered)][:2]:
        tail.append(AccountDeleted(**env(user.user_id, user.user_id), user_id=user.user_id))
    # Followed again after the unfollows: backfills over a feed the batch just emptied.
    for f in follows[:3]:
        tail.append(Followed(**env(f.follower_id, f.follower_id), follower_id=f.follower_id, followee_id=f.followee_id))
    return tail


@pytest.fixture(scope="module")
def demo_history(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list[Event], list[list[Op]], dict[str, list[bytes]]]:
    """The demo seeder's history with a destructive tail, and what event-by-event application gives."""
    from infra.bootstrap import build_embedded
    from infra.demo.seed import seed
    from infra.settings import Settings

    container = build_embedded(Settings(data_dir=tmp_path_factory.mktemp("demo")))
    try:
        seed(container, users=24)
        events = [e for _, e in container.log.read(0, 10**9)]  # type: ignore[attr-defined]
    finally:
        container.close()
    events += _destructive_tail(events)
    reference = KeyOrderedMemory(all_tables())
    ops: list[list[Op]] = []
    for event in events:
        for p in PROJECTIONS:
            found = p.project(event, reference)
            reference.apply(found)
            ops.append(found)
    return events, ops, rows_of(reference, all_tables())


@pytest.mark.parametrize("size", [1, 3, 17, 100, 10_000])
def test_the_demo_history_in_batches_of_any_size(demo_history: Any, size: int) -> None:
    events, ops, rows = demo_history
    inner, emitted = _replay_in_batches(events, range(size, len(events), size))
    assert emitted == ops
    assert rows_of(inner, all_tables()) == rows


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_the_demo_history_over_random_batch_boundaries(demo_history: Any, data: st.DataObject) -> None:
    events, ops, rows = demo_history
    cuts = data.draw(st.lists(st.integers(1, len(events) - 1), max_size=12), label="batch boundaries")
    inner, emitted = _replay_in_batches(events, cuts)
    assert emitted == ops
    assert rows_of(inner, all_tables()) == rows


# -- the applier over the overlay ---------------------------------------------------------


class MemoryPositions:
    def __init__(self) -> None:
        self.saved: dict[str, dict[Partition, int]] = {}
        self.saves = 0

    def save_positions(self, group: str, positions: Mapping[Partition, int]) -> None:
        self.saves += 1
        self.saved.setdefault(group, {}).update(positions)

    def positions(self, group: str) -> dict[Partition, int]:
        return dict(self.saved.get(group, {}))


def _records(events: Sequence[Event], partitions: int = 3) -> list[Record]:
    offsets: dict[int, int] = {}
    out = []
    for e in events:
        p = e.aggregate_id % partitions
        offsets[p] = offsets.get(p, -1) + 1
        out.append(Record(f"t.{e.STREAM}", p, offsets[p], e))
    return out


def test_the_applier_saves_positions_after_the_flush(demo_history: Any) -> None:
    events, _, rows = demo_history
    inner = MemoryReadModel(all_tables())

    class Checking(MemoryPositions):
        def save_positions(self, group: str, positions: Mapping[Partition, int]) -> None:
            assert inner.count("accounts", {}) > 0, "positions saved before the data"
            super().save_positions(group, positions)

    applier = BatchApplier(
        BatchOverlay(inner, all_tables()), PROJECTIONS, Checking(), "g", journal=MemoryFlushJournal()
    )
    records = _records(events)
    for start in range(0, len(records), 50):
        applier.apply(records[start : start + 50])
    assert applier.apply(records) == 0  # all of it again: skipped, nothing changes
    assert rows_of(inner, all_tables()) == rows


BOOM = Table("boom", partition=("id",))


def _fragile(event: Any, read: ReadModel) -> list[Op]:
    if event.username == "poison":
        raise ValueError("cannot project this")
    return [SetAdd(BOOM.name, {"id": event.event_id})]


def test_a_poison_record_stops_the_batch_loudly_after_writing_what_came_before() -> None:
    inner = MemoryReadModel([BOOM])
    positions = MemoryPositions()
    applier = BatchApplier(BatchOverlay(inner, [BOOM]), [Projection("fragile", 1, (BOOM,), _fragile)], positions, "g")
    with pytest.raises(PoisonRecord) as failed:
        applier.apply(
            [
                Record("t.accounts", 2, 40, registered("ok")),
                Record("t.accounts", 2, 41, registered("poison")),
                Record("t.accounts", 2, 42, registered("after")),
            ]
        )
    assert (failed.value.topic, failed.value.partition, failed.value.offset) == ("t.accounts", 2, 41)
    assert inner.count(BOOM.name, {}) == 1  # "ok" written, as op by op; "after" never applied
    assert positions.saves == 0


def test_an_operation_the_store_refuses_is_a_poison_record() -> None:
    inner = MemoryReadModel([BOOM])

    def bad(event: Any, read: ReadModel) -> list[Op]:
        return [Put(BOOM.name, {"id": None})]

    applier = BatchApplier(BatchOverlay(inner, [BOOM]), [Projection("bad", 1, (BOOM,), bad)], MemoryPositions(), "g")
    with pytest.raises(PoisonRecord):
        applier.apply([Record("t.accounts", 0, 0, registered("x"))])


class _DyingWrites(MemoryReadModel):
    """Dies (as a SIGKILL would) after `budget` writes."""

    def __init__(self, tables: Sequence[Table], budget: int) -> None:
        super().__init__(tables)
        self.budget = budget

    def apply(self, ops: Sequence[Op]) -> None:
        if self.budget <= 0:
            raise SystemExit("killed")
        self.budget -= 1
        super().apply(ops)


@pytest.mark.parametrize("budget", [0, 1, 40, 400])
def test_a_batch_that_died_while_writing_is_finished_before_it_comes_again(demo_history: Any, budget: int) -> None:
    events, _, rows = demo_history
    records = _records(events)
    inner = _DyingWrites(all_tables(), budget=10**9)
    positions, journal = MemoryPositions(), MemoryFlushJournal(writer="first")
    first = BatchApplier(BatchOverlay(inner, all_tables()), PROJECTIONS, positions, "g", journal=journal)
    half = len(records) // 2
    first.apply(records[:half])
    inner.budget = budget
    with pytest.raises(SystemExit):
        first.apply(records[half:])  # dies part-way through writing the batch's changes
    assert journal.unfinished("g"), "the changes were not journaled before being written"
    inner.budget = 10**9
    journal.writer = "second"  # a new process
    second = BatchApplier(BatchOverlay(inner, all_tables()), PROJECTIONS, positions, "g", journal=journal)
    for start in range(0, len(records), 97):  # redelivered from the saved positions, cut differently
        second.apply(records[start : start + 97])
    assert not journal.unfinished("g")
    assert rows_of(inner, all_tables()) == rows


def test_a_worker_that_died_while_journaling_wrote_nothing(demo_history: Any) -> None:
    events, _, rows = demo_history
    records = _records(events)
    inner = MemoryReadModel(all_tables())

    class DyingJournal(MemoryFlushJournal):
        def record(self, group: str, changes: Any) -> None:
            raise SystemExit("killed")

    positions = MemoryPositions()
    dying = BatchApplier(BatchOverlay(inner, all_tables()), PROJECTIONS, positions, "g", journal=DyingJournal())
    with pytest.raises(SystemExit):
        dying.apply(records[:60])
    assert rows_of(inner, all_tables()) == rows_of(MemoryReadModel(all_tables()), all_tables())
    again = BatchApplier(BatchOverlay(inner, all_tables()), PROJECTIONS, positions, "g", journal=MemoryFlushJournal())
    again.apply(records)
    assert rows_of(inner, all_tables()) == rows
