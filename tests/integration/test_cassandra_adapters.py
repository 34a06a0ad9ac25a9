"""The Cassandra adapters against the real server: the read-model contract (with the
contract's tables and the real projection tables), a differential test against the
SQLite adapter, exact counters under redelivery, races and a killed writer, the
command store, and the schema migrations.

Each test class works in its own random keyspace, dropped afterwards. Needs
GLIMPSE_CASSANDRA_HOSTS / GLIMPSE_CASSANDRA_PORT (set by `make test` or
/work/notes/stack.env); skipped without them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from commands.ports import Reservation, ReservationTaken, StoredResult
from infra.settings import Settings
from infra.storage.sqlite_eventlog import connect as sqlite_connect
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.registry import PROJECTIONS, all_tables
from projections.store import CounterRef, Delete, Op, Patch, Put, SetAdd, SetRemove, Table
from tests.contracts.readmodel_contract import TABLES, ReadModelContract
from tests.contracts.subject_keys_contract import SubjectKeysContract

pytestmark = pytest.mark.integration

cassandra = pytest.importorskip("cassandra")

from infra.cassandra.command_store import CassandraCommandStore, token_reached  # noqa: E402
from infra.cassandra.migrations import Migration, MigrationError, applied_versions, load_migrations, migrate  # noqa: E402
from infra.cassandra.readmodel import CassandraReadModel, CounterShapeError, MissingIndex  # noqa: E402
from infra.cassandra.session import connect, drop_keyspace, ensure_keyspace  # noqa: E402
from infra.cassandra.subject_keys import CassandraSubjectKeys  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _settings() -> Settings:
    if not (os.environ.get("GLIMPSE_CASSANDRA_HOSTS") and os.environ.get("GLIMPSE_CASSANDRA_PORT")):
        pytest.skip("GLIMPSE_CASSANDRA_HOSTS/GLIMPSE_CASSANDRA_PORT are not set (run `make test` or source stack.env)")
    return Settings()


@pytest.fixture(scope="module")
def session() -> Iterator[Any]:
    s = connect(_settings())
    try:
        yield s
    finally:
        s.cluster.shutdown()


def new_keyspace(session: Any) -> str:
    name = f"glimpse_test_{uuid.uuid4().hex[:12]}"
    ensure_keyspace(session, name, 1)
    return name


@pytest.fixture(scope="class")
def keyspace(session: Any) -> Iterator[str]:
    name = new_keyspace(session)
    try:
        yield name
    finally:
        drop_keyspace(session, name)


def counter_of(rm: Any, user: int) -> Any:
    row = rm.get("t_counts", {"user_id": user})
    return None if row is None else row["n"]


def fresh_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}_"


# -- the read-model contract ---------------------------------------------------------


class TestCassandraReadModel(ReadModelContract):
    """One keyspace for the class; every test gets its own tables (a fresh prefix)."""

    @pytest.fixture(autouse=True)
    def _cassandra(self, session: Any, keyspace: str) -> None:
        self.session, self.keyspace = session, keyspace

    def make(self) -> Any:
        return CassandraReadModel(self.session, self.keyspace, TABLES, prefix=fresh_prefix())

    def test_find_without_an_index_is_refused(self, rm: Any) -> None:
        with pytest.raises(MissingIndex):
            rm.find("t_docs", {"flag": True})

    def test_scan_and_count_across_partitions(self, rm: Any) -> None:
        rm.apply([Put("t_feed", {"user_id": u, "post_id": p, "author_id": 1}) for u in (3, 1, 2) for p in (2, 1)])
        rows = rm.scan("t_feed", {})
        assert [(r["user_id"], r["post_id"]) for r in rows] == [(u, p) for u in (1, 2, 3) for p in (1, 2)]
        assert [r["user_id"] for r in rm.scan("t_feed", {}, desc=True, limit=3)] == [3, 3, 2]
        assert rm.count("t_feed", {}) == 6

    def test_delete_a_whole_table_and_a_range(self, rm: Any) -> None:
        rm.apply([Put("t_pairs", {"a": 1, "b": b, "c": c, "v": 0}) for b in (1, 2) for c in (1, 2)])
        rm.apply([Delete("t_pairs", {"a": 1, "b": 1})])
        assert [(r["b"], r["c"]) for r in rm.scan("t_pairs", {"a": 1})] == [(2, 1), (2, 2)]
        rm.apply([Put("t_feed", {"user_id": u, "post_id": 1}) for u in (1, 2)] + [Delete("t_feed", {})])
        assert rm.count("t_feed", {}) == 0

    def test_op_order_is_kept_per_key_within_one_apply(self, rm: Any) -> None:
        ops: list[Op] = []
        for d in range(100):  # reads inside ops (Patch, SetAdd) must see the ops before them
            key = {"doc_id": d}
            ops += [
                Put("t_docs", {**key, "title": "a"}),
                Patch("t_docs", key, {"flag": True}),
                Delete("t_docs", key),
                SetAdd("t_docs", {**key, "title": "b"}),
                Patch("t_docs", key, {"tags": [d]}),
            ]
        for i in range(30):
            ops += [Put("t_docs", {"doc_id": 500, "title": f"v{i}"}), Delete("t_docs", {"doc_id": 500})]
        ops.append(Put("t_docs", {"doc_id": 500, "title": "last"}))
        rm.apply(ops)
        for d in (0, 57, 99):
            assert rm.get("t_docs", {"doc_id": d}) == {
                "doc_id": d,
                "title": "b",
                "tags": [d],
                "meta": None,
                "flag": None,
            }
        assert rm.get("t_docs", {"doc_id": 500})["title"] == "last"

    def test_counter_shape_is_checked_before_any_write(self, rm: Any) -> None:
        wrong = CounterRef("t_counts", {"user_id": 2}, "n")  # not the set's partition (user 1)
        with pytest.raises(CounterShapeError):
            rm.apply(
                [
                    Put("t_docs", {"doc_id": 1, "title": "x"}),
                    SetAdd("t_feed", {"user_id": 1, "post_id": 1, "author_id": 1}, (wrong,)),
                ]
            )
        assert rm.get("t_docs", {"doc_id": 1}) is None
        with pytest.raises(CounterShapeError):
            rm.apply([SetAdd("t_feed", {"user_id": 1, "post_id": 1}, (CounterRef("t_docs", {"doc_id": 1}, "title"),))])

    def test_one_counter_counts_one_set(self, rm: Any) -> None:
        counter = CounterRef("t_counts", {"user_id": 1}, "n")
        rm.apply([SetAdd("t_feed", {"user_id": 1, "post_id": 1}, (counter,))])
        with pytest.raises(CounterShapeError):
            rm.apply([SetAdd("t_pairs", {"a": 1, "b": 1, "c": 1}, (counter,))])

    def test_a_late_remove_does_not_resurrect_a_deleted_counter_row(self, rm: Any) -> None:
        counter = CounterRef("t_counts", {"user_id": 1}, "n")
        rm.apply([SetAdd("t_feed", {"user_id": 1, "post_id": 1}, (counter,))])
        rm.apply([Delete("t_feed", {"user_id": 1}), Delete("t_counts", {"user_id": 1})])
        rm.apply([SetRemove("t_feed", {"user_id": 1, "post_id": 1}, (counter,))])
        assert rm.get("t_counts", {"user_id": 1}) is None

    def test_counters_are_exact_under_duplicates_in_one_batch(self, rm: Any) -> None:
        counter = CounterRef("t_counts", {"user_id": 1}, "n")
        add = [SetAdd("t_feed", {"user_id": 1, "post_id": p}, (counter,)) for p in range(20)]
        remove = [SetRemove("t_feed", {"user_id": 1, "post_id": p}, (counter,)) for p in range(0, 20, 2)]
        rm.apply(add + add + remove + add[:4] + remove)
        assert counter_of(rm, 1) == 10 == rm.count("t_feed", {"user_id": 1})
        # Something else on the counter row between set changes sees the count as of then.
        other = CounterRef("t_counts", {"user_id": 2}, "n")
        rm.apply(
            [
                SetAdd("t_feed", {"user_id": 2, "post_id": 1}, (other,)),
                Patch("t_counts", {"user_id": 2}, {"m": 5}),  # applies only if the first recount made the row
                SetAdd("t_feed", {"user_id": 2, "post_id": 2}, (other,)),
            ]
        )
        assert rm.get("t_counts", {"user_id": 2}) == {"user_id": 2, "n": 2, "m": 5}


def test_concurrent_recounts_settle_on_the_set_size(session: Any, keyspace: str) -> None:
    """Writers racing on one partition: the recount that read last wins, whatever arrives last."""
    rm = CassandraReadModel(session, keyspace, TABLES, prefix=fresh_prefix())
    rm.create_schema()
    counter = CounterRef("t_counts", {"user_id": 1}, "n")

    def writer(start: int) -> None:
        mine = CassandraReadModel(session, keyspace, TABLES, prefix=rm._prefix)
        for p in range(start, start + 40):
            mine.apply([SetAdd("t_feed", {"user_id": 1, "post_id": p}, (counter,))])
            if p % 3 == 0:
                mine.apply([SetRemove("t_feed", {"user_id": 1, "post_id": p}, (counter,))])

    threads = [threading.Thread(target=writer, args=(k * 1000,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    size = rm.count("t_feed", {"user_id": 1})
    assert size == len([p for k in range(6) for p in range(k * 1000, k * 1000 + 40) if p % 3])
    assert counter_of(rm, 1) == size


class _StaleCounter(CassandraReadModel):
    """Holds every recount between its COUNT and its write, as a slow or paused writer would."""

    counted = threading.Event()
    proceed = threading.Event()

    def _plan_recount(self, recount: Any) -> Any:
        inner = super()._plan_recount(recount)
        rows = yield next(inner)  # the COUNT
        self.counted.set()
        assert self.proceed.wait(30)
        try:
            step = inner.send(rows)
            while True:
                step = inner.send((yield step))
        except StopIteration:
            return


def test_a_stale_recount_never_overwrites_a_newer_one(session: Any, keyspace: str) -> None:
    prefix = fresh_prefix()
    fast = CassandraReadModel(session, keyspace, TABLES, prefix=prefix)
    fast.create_schema()
    slow = _StaleCounter(session, keyspace, TABLES, prefix=prefix)
    counter = CounterRef("t_counts", {"user_id": 1}, "n")
    stale = threading.Thread(target=slow.apply, args=([SetAdd("t_feed", {"user_id": 1, "post_id": 1}, (counter,))],))
    stale.start()
    try:
        assert slow.counted.wait(30)  # it counted 1 and is holding that number
        fast.apply([SetAdd("t_feed", {"user_id": 1, "post_id": 2}, (counter,))])
        assert counter_of(fast, 1) == 2
    finally:
        slow.proceed.set()
        stale.join(30)
    assert counter_of(fast, 1) == 2  # the late write of 1 lost: it counted earlier


# -- a writer killed mid-batch ----------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys
    from infra.cassandra.readmodel import CassandraReadModel
    from infra.cassandra.session import connect
    from infra.settings import Settings
    from tests.integration.test_cassandra_adapters import crash_batch
    from tests.contracts.readmodel_contract import TABLES

    session = connect(Settings())
    rm = CassandraReadModel(session, sys.argv[1], TABLES, prefix=sys.argv[2])
    print("ready", flush=True)
    for _ in range(1000):
        for ops in crash_batch():
            rm.apply(ops)
    """
)


def crash_batch() -> list[list[Op]]:
    """Per event, the ops a follow-like projection emits: 300 adds then 100 removes over 5 partitions."""
    batches: list[list[Op]] = []
    for i in range(300):
        user = i % 5
        counter = CounterRef("t_counts", {"user_id": user}, "n")
        batches.append([SetAdd("t_feed", {"user_id": user, "post_id": i, "author_id": 7}, (counter,))])
    for i in range(0, 300, 3):
        user = i % 5
        counter = CounterRef("t_counts", {"user_id": user}, "n")
        batches.append([SetRemove("t_feed", {"user_id": user, "post_id": i}, (counter,))])
    return batches


def test_counters_are_exact_after_a_writer_is_killed_mid_batch(session: Any, keyspace: str) -> None:
    prefix = fresh_prefix()
    rm = CassandraReadModel(session, keyspace, TABLES, prefix=prefix)
    rm.create_schema()
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, keyspace, prefix], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while rm.count("t_feed", {"user_id": 4}) < 20:  # well into the adds
            assert time.monotonic() < deadline, "the child wrote nothing"
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    # Redelivery of the whole batch (at least once): counters end exact.
    for ops in crash_batch():
        rm.apply(ops)
    for user in range(5):
        expected = len([i for i in range(300) if i % 5 == user and i % 3 != 0])
        assert rm.count("t_feed", {"user_id": user}) == expected
        assert counter_of(rm, user) == expected


# -- the real projection tables --------------------------------------------------


class TestRealTables(ReadModelContract):
    """The contract again, by an adapter that holds every projection table too: the full
    schema is created once for the class, the contract tables are truncated per test."""

    schema_seconds: float | None = None

    @pytest.fixture(autouse=True)
    def _cassandra(self, session: Any, keyspace: str) -> None:
        self.session, self.keyspace = session, keyspace

    def make(self) -> Any:
        return CassandraReadModel(self.session, self.keyspace, [*TABLES, *all_tables()])

    @pytest.fixture
    def rm(self) -> Any:
        store = self.make()
        if type(self).schema_seconds is None:
            started = time.monotonic()
            store.create_schema()
            type(self).schema_seconds = time.monotonic() - started
        for t in TABLES:
            self.session.execute(f"TRUNCATE {self.keyspace}.rm_{t.name}")
        return store

    def test_every_projection_table_exists_with_its_indexes(self, rm: Any) -> None:
        tables = {
            r[0]
            for r in self.session.execute(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (self.keyspace,)
            )
        }
        assert {"rm_" + t.name for t in all_tables()} <= tables
        indexes = {
            r[0]
            for r in self.session.execute(
                "SELECT index_name FROM system_schema.indexes WHERE keyspace_name = %s", (self.keyspace,)
            )
        }
        assert {"rm_follow_requests_follower_id_sai", "rm_notification_groups_target_id_sai"} <= indexes
        assert "rm_notification_actors_user_id_sai" in indexes  # a composite partition's leading column
        assert rm.find("notification_groups", {"target_type": "comment", "target_id": 1}) == []
        assert rm.find("notification_comments", {"post_id": 1, "author_id": 2}, limit=2) == []
        print(f"\nfull read-model schema ({len(rm.schema_statements())} statements) in {self.schema_seconds:.2f} s")


# -- differential: the same events through SQLite and Cassandra --------------------


def _history() -> list[Any]:
    """A small, busy history (the unit tests' event builders); returns its events in order."""
    from tests.unit.stories_world import World

    class Recording(World):
        def __init__(self) -> None:
            self.events: list[Any] = []
            super().__init__()

        def apply(self, event: Any) -> Any:
            self.events.append(event)
            return super().apply(event)

    w = Recording()
    ada, bob, cyd, dan = (w.user(n) for n in ("ada", "bob", "cyd", "dan"))
    eve = w.user("eve", private=True)
    for a, b in [(bob, ada), (cyd, ada), (dan, ada), (ada, bob), (cyd, bob), (eve, ada)]:
        w.follow(a, b)
    w.request(ada, eve)
    posts = [w.post(ada, mentions=(bob,)) for _ in range(3)] + [w.post(bob, audience="followers")]
    for user in (bob, cyd, dan, eve):
        w.like(user, posts[0])
    w.like(cyd, posts[1])
    w.unlike(bob, posts[0])
    w.like(bob, posts[0])
    comments = [w.comment(bob, posts[0]), w.comment(cyd, posts[0], mentions=(dan,)), w.comment(bob, posts[1])]
    w.delete_comment(comments[2], by=bob)
    w.close_friends(ada, bob, cyd)
    story, other = w.story(ada), w.story(bob)
    for viewer in (bob, cyd, cyd, dan):
        w.view(viewer, story)
    w.view(ada, other)
    w.expire(other)
    w.unfollow(dan, ada)
    w.block(ada, dan)
    w.delete_post(posts[2])
    w.delete_account(cyd)
    return w.events


def _project(store: Any, events: list[Any], twice: bool = False) -> list[list[Op]]:
    emitted: list[list[Op]] = []
    for event in events:
        for p in PROJECTIONS:
            for _ in range(2 if twice else 1):
                ops = p.project(event, store)
                store.apply(ops)
                emitted.append(ops)
    return emitted


def _contents(store: Any, tables: list[Table]) -> dict[str, list[dict[str, Any]]]:
    return {t.name: store.scan(t.name, {}) for t in tables}


def test_projections_give_the_same_read_models_as_sqlite(session: Any, keyspace: str, tmp_path: Path) -> None:
    events = _history()
    assert len(events) > 40
    tables = all_tables()
    sqlite = SqliteReadModel(sqlite_connect(tmp_path / "rm.db"), tables)
    sqlite.create_schema()
    emitted = _project(sqlite, events)
    kinds = {type(op).__name__ for ops in emitted for op in ops}
    assert {"Put", "Patch", "Delete", "SetAdd", "SetRemove"} <= kinds
    # Every counter of the real projections went through the adapter's shape check (counter = set partition size).
    counted = {
        f"{c.table}.{c.column}"
        for ops in emitted
        for op in ops
        if isinstance(op, SetAdd | SetRemove)
        for c in op.counters
    }
    assert counted == {
        "graph_counts.followers",
        "graph_counts.following",
        "engagement_counts.like_count",
        "engagement_counts.comment_count",
        "user_post_counts.posts",
        "stories.viewer_count",
    }

    cass = CassandraReadModel(session, keyspace, tables, prefix=fresh_prefix())
    cass.create_schema()
    _project(cass, events)
    expected = _contents(sqlite, tables)
    assert _contents(cass, tables) == expected
    assert sum(len(rows) for rows in expected.values()) > 100

    # Every event delivered twice in a row (at-least-once delivery): still the same read models.
    again = CassandraReadModel(session, keyspace, tables, prefix=fresh_prefix())
    again.create_schema()
    _project(again, events, twice=True)
    assert _contents(again, tables) == expected


# -- the command store -------------------------------------------------------------


@pytest.fixture(scope="module")
def store(session: Any) -> Iterator[CassandraCommandStore]:
    name = new_keyspace(session)
    try:
        migrate(session, name)
        yield CassandraCommandStore(session, name)
    finally:
        drop_keyspace(session, name)


def test_reserve_release_by_owner_only(store: CassandraCommandStore) -> None:
    key = f"p:{uuid.uuid4().hex}"
    store.reserve([Reservation("like", key, 1)])
    store.release([Reservation("like", key, 2)])
    with pytest.raises(ReservationTaken):
        store.reserve([Reservation("like", key, 3)])
    with pytest.raises(ReservationTaken):
        store.reserve([Reservation("like", key, 1)])  # held, even by its owner: as in the SQLite log
    store.release([Reservation("like", key, 1)])
    store.reserve([Reservation("like", key, 3)])
    assert store.owner("like", key) == 3


def test_a_conflict_undoes_the_claims_of_the_call(store: CassandraCommandStore) -> None:
    x, y = f"x{uuid.uuid4().hex}", f"y{uuid.uuid4().hex}"
    store.reserve([Reservation("username", x, 1)])
    with pytest.raises(ReservationTaken) as taken:
        store.reserve([Reservation("username", y, 2), Reservation("username", x, 2)])
    assert taken.value.reservation == Reservation("username", x, 2)
    assert store.owner("username", y) is None
    store.reserve([Reservation("username", y, 3)])


def test_exactly_one_of_many_racing_claims_wins(store: CassandraCommandStore) -> None:
    name = f"race{uuid.uuid4().hex}"
    won: list[int] = []
    lost: list[int] = []
    barrier = threading.Barrier(12)

    def claim(owner: int) -> None:
        barrier.wait()
        try:
            store.reserve([Reservation("username", name, owner)])
            won.append(owner)
        except ReservationTaken:
            lost.append(owner)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 11
    assert store.owner("username", name) == won[0]


def test_results_are_written_once(store: CassandraCommandStore) -> None:
    scope = f"user:1:create_post:{uuid.uuid4().hex}"
    assert store.get_result(scope) is None
    first = StoredResult(scope, "fp", 201, b'{"id":"1"}', "glimpse.posts:0:12")
    store.put_result(first)
    store.put_result(StoredResult(scope, "other", 500, b"", "glimpse.posts:0:13"))
    assert store.get_result(scope) == first
    assert store.stored_result(scope) == first


def test_positions_round_trip_and_tokens(store: CassandraCommandStore) -> None:
    group = f"g{uuid.uuid4().hex}"
    assert store.positions(group) == {}
    store.save_positions(group, {("glimpse.posts", 0): 10, ("glimpse.graph", 3): 4})
    store.save_positions(group, {("glimpse.posts", 0): 12})
    assert store.positions(group) == {("glimpse.posts", 0): 12, ("glimpse.graph", 3): 4}
    assert store.positions(f"other{group}") == {}
    positions = store.positions(group)
    assert token_reached(positions, "glimpse.posts:0:12,glimpse.graph:3:4")
    assert not token_reached(positions, "glimpse.posts:0:13")
    assert not token_reached(positions, "glimpse.posts:1:0")
    assert token_reached(positions, "")


# -- migrations --------------------------------------------------------------------


def test_migrations_apply_once_and_record_versions(session: Any) -> None:
    name = new_keyspace(session)
    try:
        tables = [*TABLES]
        first = migrate(session, name, tables)
        assert first.applied == [m.version for m in load_migrations()] and 1 in first.applied
        assert first.readmodel_created and first.fingerprint
        second = migrate(session, name, tables)
        assert second.applied == [] and not second.readmodel_created
        assert second.fingerprint == first.fingerprint
        recorded = applied_versions(session, name)
        assert recorded[1][0] == "command_store"
        # The tables the migrations made are usable.
        CassandraCommandStore(session, name).put_result(StoredResult("s", "f", 200, b"", ""))
        CassandraReadModel(session, name, tables).apply([Put("t_docs", {"doc_id": 1})])
        # A new migration applies alone; a changed one is refused.
        version = max(m.version for m in load_migrations()) + 1
        extra = Migration(version, "extra", "CREATE TABLE IF NOT EXISTS $keyspace.extra (k int PRIMARY KEY);")
        assert migrate(session, name, migrations=[*load_migrations(), extra]).applied == [version]
        changed = Migration(version, "extra", extra.text + "\n-- edited")
        with pytest.raises(MigrationError):
            migrate(session, name, migrations=[*load_migrations(), changed])
        # A changed table spec is a new fingerprint: its tables are created.
        wider = Table("t_new", partition=("k",), values=("v",))
        assert migrate(session, name, [*tables, wider]).readmodel_created
        CassandraReadModel(session, name, [wider]).apply([Put("t_new", {"k": 1, "v": 2})])
    finally:
        drop_keyspace(session, name)


def test_no_projection_uses_increment() -> None:
    """Increment is not idempotent under redelivery; projections that run on Cassandra must not use it."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "projections").rglob("*.py")
        if path.name != "store.py" and "Increment" in path.read_text()
    ]
    assert offenders == []


class TestCassandraSubjectKeys(SubjectKeysContract):
    """Per-person data keys (crypto-shredding) in the migrated keyspace."""

    @pytest.fixture(autouse=True)
    def _cassandra(self, session: Any, keyspace: str) -> None:
        migrate(session, keyspace)
        self.session, self.keyspace = session, keyspace

    def make(self) -> Any:
        return CassandraSubjectKeys(self.session, self.keyspace)

    def test_a_sealed_log_entry_opens_in_another_process_until_erased(self) -> None:
        from events.posts import PostCreated
        from infra.personal_data.codec import EventCodec

        writer = EventCodec(CassandraSubjectKeys(self.session, self.keyspace))
        reader = EventCodec(CassandraSubjectKeys(self.session, self.keyspace))
        author = 1_000_000 + int(uuid.uuid4().int % 10**9)
        post = PostCreated(
            event_id=1,
            occurred_at="2026-01-01T00:00:00Z",
            actor_id=author,
            aggregate_id=2,
            post_id=2,
            author_id=author,
            caption="secret caption",
            media_ids=(),
            audience="public",
        )
        data = writer.encode(post)
        assert b"secret caption" not in data
        assert reader.decode(data).caption == "secret caption"  # type: ignore[union-attr]
        writer.erase(author)
        assert reader.decode(data).caption == ""  # type: ignore[union-attr]
