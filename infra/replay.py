"""Rebuilding read models from the start of the log, beside the live ones, then switching.

`glimpse replay` (infra/replay_cli.py) and the embedded bootstrap (for a projection
that is new or whose version changed) run the same engine, `blue_green`:

1. Plan. The projections to rebuild, plus the ones they read while projecting
   (`READS`: the feed's fan-out reads the follower list as of each post, so a feed
   rebuilt from offset zero needs the graph rebuilt beside it event by event; the
   live graph is already at the head). Those helpers are built too and thrown away.
2. Project. Every event from position 1 to the log head at the start, through the
   planned projections in registry order, into an in-memory store that behaves like
   SQLite (infra/storage/indexed_memory_readmodel.py): the same projection code as
   the live projector, a fraction of the cost per operation. The store only has the
   planned tables, so a projection that reads anything else fails loudly here
   instead of reading the live tables at the wrong position.
3. Load. New SQLite tables `rm<build>_<table>` beside the live ones (same database
   file, so the switch can be one transaction), bulk-inserted, then indexed.
4. Catch up. Events appended meanwhile are applied to the new tables through the
   ordinary SQLite adapter, until the build is close to the head.
5. Switch. With every command held off (the command bus's lock), the live projector
   applies what is left, the build applies the same, and one transaction makes the
   build the active generation of the rebuilt projections at that position
   (infra/readmodel_generations.py); then the live store routes reads and writes to
   the new tables. Nothing was appended between the two catch-ups, so no event is
   lost or applied twice, and readers go from the old tables to the new ones
   between two requests.
6. Later, the old generation is dropped once its grace period is over.

The engine is a generator that yields after every batch: the serving process drives
it from its event loop (`await asyncio.sleep(0)` between steps, so requests keep
being served), a command-line replay drives it in a plain loop. Replays have no
side effects beyond their tables: projector listeners (notifications, media blob
collection) are not called.

Digests (infra/readmodel_digest.py) compare the result with the live tables: a
replay of the same log gives the same digests, and so does the live, incrementally
built model.
"""

from __future__ import annotations

import contextlib
import gc
import sqlite3
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

from commands.ports import ReadableEventLog as EventLog
from events.union import Event
from infra import readmodel_generations as generations
from infra.feed_activity import SQLITE_SCHEMA as FEED_ACTIVITY_SCHEMA
from infra.projector import ProjectionFailed, Projector
from infra.readmodel_digest import CACHE_TABLES
from infra.readmodel_digest import digests as digests  # re-exported: the replay's comparison
from infra.replay_progress import Progress, ProgressFn
from infra.storage.indexed_memory_readmodel import IndexedMemoryReadModel
from infra.storage.sqlite_eventlog import connect
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.projection import Projection
from projections.store import ReadModelWriter, Table

# Which projections' tables each projection reads while projecting (not counting its own).
# A rebuild of X rebuilds these beside it. A projection missing here is assumed to read
# every projection before it in the registry; a wrong entry fails the replay loudly
# (the replay store has no other tables), and tests/unit/test_replay_plan.py checks the
# entries against what the projections really read.
READS: Mapping[str, tuple[str, ...]] = {
    "profile": (),
    "graph": ("profile",),  # deleted accounts
    "media": ("profile",),
    "posts": ("profile",),
    "engagement": (),
    "feed": ("profile", "graph"),  # privacy, followers, follower counts
    "stories": ("profile", "graph"),
    "notifications": ("profile",),
}

Engine = Literal["memory", "sqlite"]

SERVER_BATCH = 500  # events per step when a serving process drives the replay (keeps each step short)
OFFLINE_BATCH = 5000
LOAD_CHUNK = 20_000  # rows per insert transaction


class ReplayError(RuntimeError):
    pass


@dataclass(frozen=True)
class ColdCacheProjection(Projection):
    """A projection whose cache tables (`CACHE_TABLES`) a replay leaves empty.

    The hybrid feed's per-user feeds depend on who was reading when, which the log does
    not say, and its read path rebuilds a feed whose reader the fan-out skipped. So a
    replay need not rebuild them: it treats every reader as inactive (`NobodyActive`:
    nothing is pushed), keeps nothing in them, and before the switch marks every reader
    as skipped (`mark_every_feed_stale`), so each one's first read after the switch
    rebuilds their feed from their followees' posts. That is most of a replay's rows:
    the push fan-out writes three per follower of every post."""

    @property
    def cold_tables(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tables if t.name in CACHE_TABLES)


class NobodyActive:
    """The `ActivityStore` of a replay with cold caches: every reader is inactive, so the
    fan-out pushes to nobody. The marks are set wholesale at the switch instead."""

    def active_among(self, user_ids: Sequence[int], since_ms: int) -> list[int]:
        return []

    def record_read(self, user_id: int, at_ms: int) -> bool:
        return True

    def clear_missed(self, user_id: int) -> None:
        pass


NOBODY_ACTIVE = NobodyActive()


def cold_tables(projections: Sequence[Projection]) -> frozenset[str]:
    return frozenset(t for p in projections if isinstance(p, ColdCacheProjection) for t in p.cold_tables)


def mark_every_feed_stale(conn: sqlite3.Connection) -> None:
    """Every reader seen so far has missed pushes (the embedded `SqliteActivityStore`'s
    table): their next read rebuilds their feed. Readers never seen are rebuilt on their
    first read anyway."""
    conn.execute(FEED_ACTIVITY_SCHEMA)
    conn.execute("UPDATE feed_activity SET missed = 1 WHERE missed = 0")


class OrderedEvents(Protocol):
    """What a replay reads: a log in one order (the SQLite log; Kafka topics merged by event id)."""

    def read(self, after: int, limit: int) -> list[tuple[int, Event]]: ...

    def head(self) -> int: ...


@dataclass(frozen=True)
class ReplayPlan:
    switch: tuple[Projection, ...]  # rebuilt, then made the active generation
    helpers: tuple[Projection, ...]  # rebuilt only because a switched projection reads them

    @property
    def build(self) -> tuple[Projection, ...]:
        """Every projection to run, in registry order (helpers come before their readers)."""
        chosen = {p.name for p in (*self.switch, *self.helpers)}
        return tuple(p for p in self._order if p.name in chosen)

    _order: tuple[Projection, ...] = field(default=(), repr=False)

    @property
    def tables(self) -> list[Table]:
        return [t for p in self.build for t in p.tables]


def plan(projections: Sequence[Projection], names: Sequence[str] | None = None) -> ReplayPlan:
    """What to build for replaying `names` (all projections if None or empty)."""
    by_name = {p.name: p for p in projections}
    wanted = list(dict.fromkeys(names or by_name))
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise ReplayError(f"no projection named {', '.join(unknown)} (there are {', '.join(by_name)})")
    order = list(by_name)
    needed: set[str] = set()
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name in needed:
            continue
        needed.add(name)
        reads = READS.get(name)
        if reads is None:
            reads = tuple(order[: order.index(name)])
        for dep in reads:
            if dep in by_name:
                if order.index(dep) > order.index(name):
                    raise ReplayError(f"{name} reads {dep}, which projects after it: put {dep} first in the registry")
                todo.append(dep)
    switch = tuple(p for p in projections if p.name in wanted)
    helpers = tuple(p for p in projections if p.name in needed and p.name not in wanted)
    return ReplayPlan(switch, helpers, tuple(projections))


@dataclass
class ReplayReport:
    build_id: int
    projections: tuple[str, ...]
    helpers: tuple[str, ...]
    events: int  # events projected from the log (the bulk and the catch-up)
    position: int  # the log position the new generation was switched at
    rows: int  # rows bulk-loaded
    seconds: dict[str, float] = field(default_factory=dict)  # per phase
    switch_events: int = 0  # events applied to the build while commands were held off

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    @property
    def events_per_second(self) -> float:
        return self.events / self.total_seconds if self.total_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "build_id": self.build_id,
            "projections": list(self.projections),
            "helpers": list(self.helpers),
            "events": self.events,
            "position": self.position,
            "rows": self.rows,
            "seconds": self.seconds,
            "events_per_second": self.events_per_second,
            "switch_events": self.switch_events,
        }


def project_event(store: ReadModelWriter, projections: Sequence[Projection], position: int, event: Event) -> None:
    """Apply one event through `projections` in order, as the projector does; a projection
    that raises stops the replay loudly, naming itself, the event and its position."""
    for p in projections:
        try:
            ops = p.project(event, store)
            if ops:
                store.apply(ops)
        except Exception as exc:
            raise ProjectionFailed(
                f"replay: projection {p.name} v{p.version} cannot apply {event.type} "
                f"(event {event.event_id}, position {position}): {exc!r}"
            ) from exc


def project_in_memory(
    log: OrderedEvents,
    projections: Sequence[Projection],
    until: int,
    *,
    batch: int = OFFLINE_BATCH,
    progress: Callable[[int], None] | None = None,
) -> Generator[None, None, IndexedMemoryReadModel]:
    """Project positions 1..`until` into a fresh in-memory store; yields after each batch.
    The cache tables of `ColdCacheProjection`s stay empty.

    The store grows to millions of dicts, which the cyclic garbage collector would scan
    again and again: each batch moves what exists to the collector's permanent
    generation (`gc.freeze`); the caller calls `gc.unfreeze()` once the store is gone."""
    store = IndexedMemoryReadModel([t for p in projections for t in p.tables], cold=cold_tables(projections))
    position = 0
    while position < until:
        events = log.read(position, min(batch, until - position))
        if not events:
            raise ReplayError(f"the log ends at {position}, before position {until}")
        for pos, event in events:
            project_event(store, projections, pos, event)
        position = events[-1][0]
        gc.freeze()
        if progress is not None:
            progress(position)
        yield
    return store


def _row_converter(table: Table) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """Rows to the tuples SQLite stores (lists and dicts as JSON, bools as ints), as codec.to_db does."""
    kinds = [table.type_of(c) for c in table.columns]
    columns = table.columns
    if all(k in (int, str, float) for k in kinds):
        if len(columns) == 1:
            only = columns[0]
            return lambda row: (row[only],)
        return itemgetter(*columns)  # a tuple for two or more columns

    def convert(row: dict[str, Any]) -> tuple[Any, ...]:
        out = []
        for c, kind in zip(columns, kinds, strict=True):
            v = row[c]
            if v is not None:
                if kind is list or kind is dict:
                    v = orjson.dumps(v)
                elif kind is bool:
                    v = int(bool(v))
            out.append(v)
        return tuple(out)

    return convert


def load_tables(
    conn: sqlite3.Connection,
    source: IndexedMemoryReadModel,
    tables: Sequence[Table],
    routes: Mapping[str, str],
    *,
    chunk: int = LOAD_CHUNK,
    progress: Callable[[int], None] | None = None,
) -> Generator[None, None, int]:
    """Create the routed tables, bulk-insert the source's rows, then index them; returns the row count."""
    bare = SqliteReadModel(conn, [replace(t, indexes=()) for t in tables])
    bare.route(routes)
    generations.in_transaction(conn, bare.create_schema)
    loaded = 0
    for t in tables:
        convert = _row_converter(t)
        sql = f"INSERT INTO {routes[t.name]} ({', '.join(t.columns)}) VALUES ({', '.join('?' * len(t.columns))})"
        # Key order: each insert lands at the end of the B-tree instead of splitting pages.
        rows = source.rows_in_key_order(t.name)
        while part := [convert(r) for r in islice(rows, chunk)]:
            _insert(conn, sql, part)
            loaded += len(part)
            if progress is not None:
                progress(loaded)
            yield
    full = SqliteReadModel(conn, tables)
    full.route(routes)
    generations.in_transaction(conn, full.create_schema)  # the indexes, now that the rows are in
    return loaded


def _insert(conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    generations.in_transaction(conn, lambda: conn.executemany(sql, rows))


def apply_sql(
    log: OrderedEvents,
    builder: SqliteReadModel,
    projections: Sequence[Projection],
    build: generations.Build,
    start: int,
    until: int,
    *,
    batch: int,
) -> Iterator[int]:
    """Apply positions start+1..until to the build's SQLite tables, a transaction per batch,
    recording the build's position with its data; yields the position after each batch."""
    conn = builder.conn
    position = start
    while position < until:
        events = log.read(position, min(batch, until - position))
        if not events:
            raise ReplayError(f"the log ends at {position}, before position {until}")

        def work(events: list[tuple[int, Event]] = events) -> None:
            for pos, event in events:
                project_event(builder, projections, pos, event)
            generations.record_position(conn, build, events[-1][0])

        generations.in_transaction(conn, work)
        position = events[-1][0]
        yield position


@dataclass
class _Clock:
    started: float = field(default_factory=time.monotonic)
    phase_started: float = field(default_factory=time.monotonic)
    seconds: dict[str, float] = field(default_factory=dict)
    phase: str = ""

    def enter(self, phase: str) -> None:
        now = time.monotonic()
        if self.phase:
            self.seconds[self.phase] = self.seconds.get(self.phase, 0.0) + now - self.phase_started
        self.phase, self.phase_started = phase, now

    def progress(self, done: int, total: int, unit: str) -> Progress:
        now = time.monotonic()
        return Progress(self.phase, done, total, unit, now - self.phase_started, now - self.started)


def blue_green(
    log: EventLog,
    store: SqliteReadModel,
    replay_plan: ReplayPlan,
    *,
    settle: Callable[[], int],
    pause: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    grace_seconds: float = 60.0,
    progress: ProgressFn | None = None,
    batch: int = OFFLINE_BATCH,
    load_chunk: int = LOAD_CHUNK,
    engine: Engine = "memory",
) -> Generator[None, None, ReplayReport]:
    """Rebuild `replay_plan` beside the live tables of `store` and switch to it (see the module doc).

    `settle()` brings the live read models up to the log head and returns their position
    (the live projector's catch-up; the head itself when nothing projects live). `pause()`
    holds every command off around the final catch-up and the switch. `engine="sqlite"`
    projects straight into the new SQLite tables instead of memory: several times slower,
    but it needs no more memory than the projector (for read models too big for RAM)."""
    conn = store.conn
    build = generations.begin(conn, replay_plan.switch, replay_plan.helpers)
    projections = replay_plan.build
    tables = replay_plan.tables
    clock = _Clock()
    report = progress or (lambda _: None)
    rows = 0
    try:
        builder = SqliteReadModel(conn, tables)
        builder.route(build.routes())
        target = log.head()
        clock.enter("project")
        report(clock.progress(0, target, "events"))
        if engine == "memory":
            memory = yield from project_in_memory(
                log,
                projections,
                target,
                batch=batch,
                progress=lambda done: report(clock.progress(done, target, "events")),
            )
            clock.enter("load")
            total_rows = sum(memory.row_count(t.name) for t in tables)
            rows = yield from load_tables(
                conn,
                memory,
                tables,
                build.routes(),
                chunk=load_chunk,
                progress=lambda done: report(clock.progress(done, total_rows, "rows")),
            )
            del memory
            generations.in_transaction(conn, lambda: generations.record_position(conn, build, target))
        else:
            generations.in_transaction(conn, builder.create_schema)
            for reached in apply_sql(log, builder, projections, build, 0, target, batch=batch):
                report(clock.progress(reached, target, "events"))
                yield
        position = target
        clock.enter("catch-up")
        while log.head() - position > batch:  # events that arrived meanwhile, while others keep arriving
            head = log.head()
            for reached in apply_sql(log, builder, projections, build, position, head, batch=batch):
                position = reached
                report(clock.progress(position - target, head - target, "events"))
                yield
        clock.enter("switch")
        with pause():
            live = settle()
            caught_up = position
            for reached in apply_sql(log, builder, projections, build, position, live, batch=batch):
                position = reached
            if position != live:
                raise ReplayError(f"the build reached position {position}, the live read models {live}")
            if cold_tables(replay_plan.switch):
                # Before the switch: should it fail, the marks cost each reader one redundant rebuild.
                generations.in_transaction(conn, lambda: mark_every_feed_stale(conn))
            generations.switch(store, build, replay_plan.switch, replay_plan.helpers, live, grace_seconds)
        clock.enter("")
    except BaseException:
        generations.abandon(conn, build)
        raise
    finally:
        gc.unfreeze()
    overall = time.monotonic() - clock.started
    report(Progress("done", live, live, "events", overall, overall))
    return ReplayReport(
        build_id=build.build_id,
        projections=tuple(p.name for p in replay_plan.switch),
        helpers=tuple(p.name for p in replay_plan.helpers),
        events=live,
        position=live,
        rows=rows,
        seconds=clock.seconds,
        switch_events=live - caught_up,
    )


def run(steps: Generator[None, None, Any]) -> Any:
    """Drive an engine generator to its end in the calling thread; returns its result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


async def run_async(steps: Generator[None, None, Any]) -> Any:
    """Drive an engine generator on the event loop, letting other tasks run between steps."""
    import asyncio

    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        await asyncio.sleep(0)


# -- the read models of an embedded data dir ------------------------------------------------


def catch_up_new_projections(
    log: EventLog,
    store: SqliteReadModel,
    projections: Sequence[Projection],
    progress: ProgressFn | None = None,
    memory_max_events: int | None = None,
) -> ReplayReport | None:
    """Rebuild, from offset zero and the blue/green way, every projection the read models
    have never applied (a projection added since) or applied with another version (its
    output for the same log changed). Called when a process opens the read models, before
    its projector runs, so that projector then finds every projection at one position.

    The rebuild projects in memory (fast, but the whole read model is held: ~2 KB per
    event of a social graph), or straight into SQLite once the log holds more than
    `memory_max_events` (None: no limit)."""
    stored = generations.stored_versions(store.conn)
    stale = [p.name for p in projections if p.name not in stored or stored[p.name][0] != p.version]
    head = log.head()
    if not stale or head == 0:
        return None
    engine: Engine = "memory" if memory_max_events is None or head <= memory_max_events else "sqlite"
    # Rebuilt to the head; the projector then brings the others there (it tracks each
    # projection's position and skips what one already has).
    report: ReplayReport = run(
        blue_green(
            log, store, plan(projections, stale), settle=log.head, grace_seconds=0.0, progress=progress, engine=engine
        )
    )
    return report


def rebuild(log: EventLog, path: Path, projections: Sequence[Projection]) -> SqliteReadModel:
    """Project the whole log into a fresh SQLite file at `path` (tables `rm_<table>`)."""
    if path.exists():
        raise FileExistsError(f"{path} exists; a rebuild writes a new read model beside the live one")
    tables = [t for p in projections for t in p.tables]
    head = log.head()
    try:
        memory = run(project_in_memory(log, projections, head))
        store = SqliteReadModel(connect(path), tables)
        run(load_tables(store.conn, memory, tables, {t.name: store.physical(t.name) for t in tables}))
        del memory
    finally:
        gc.unfreeze()
    generations.ensure_schema(store.conn)
    store.conn.executemany(
        "INSERT INTO projection_positions (name, version, position) VALUES (?, ?, ?)",
        [(p.name, p.version, head) for p in projections],
    )
    Projector(log, store, projections).catch_up()  # anything appended since
    return store
