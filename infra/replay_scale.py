"""Replays in the scale mode: Kafka from offset zero into new Cassandra tables beside the live ones.

    glimpse replay --mode scale [--projection NAME ...] [--grace-seconds S] [--no-switch [--keep]]

1. Snapshot. The end offset of every partition of every stream topic, taken first: the
   bulk replays exactly the records before them.
2. Read and merge. One consumer without a group (nothing committed, the live worker's
   offsets untouched) reads each partition from offset zero to its snapshot end, and
   the partitions are merged by event id (each partition stays in its own order), the
   order the worker's merger (infra/worker/ordering.py) approximates. Projections
   converge under any order that keeps each key's events in order
   (tests/unit/test_replay_properties.py), so this order gives the read models the
   worker builds, apart from the feed's known exception.
3. Project, with the same engine and in-memory store as the embedded mode
   (infra/replay.py), then bulk-load the rows into new tables `rm<build>_<table>` in the
   live keyspace (prepared INSERTs, many in flight, unset columns left unset rather than
   written as tombstones).
4. Catch up: records appended since the snapshot, applied through `CassandraReadModel`
   on the new tables, until the build trails the ends by at most `CATCH_UP_SLACK` events.
5. Switch (docs/replay.md, "The scale mode"):
   - pause the projection workers (infra/worker/pause.py): every live worker acknowledges
     with the offsets it applied and applies nothing more; with no live worker (no fresh
     heartbeat) the replay switches directly;
   - take the partitions' ends and catch the build up to exactly them; check that it covers
     what the workers (and the group's saved positions) had applied;
   - record the build as the active generation of the replayed projections, the epoch bump
     and the retirement of the old tables in one conditional batch
     (infra/cassandra/generations.py). If every projection was rebuilt, then save the build's
     offsets as the worker group's positions (the worker skips what they cover; in this
     order, so a consistency token reached is readable in the new tables by any reader that
     re-read the registry after). If only some were, the positions stay the worker's: the
     tables not rebuilt need what it has not applied yet, and the rebuilt ones take those
     records again, as after a crash (sinks are idempotent under redelivery);
   - lift the pause: workers re-route and resume after the build's positions; API processes
     re-route within a second (`GenerationRouter`), with Redis caches keyed by the epoch.
6. Drop the helper tables at once and the old generation after the grace period (the
   command waits for it; interrupted, the next replay drops what is due), and the old
   epoch's Redis keys with it.

`--no-switch` stops after step 4, compares the digest of each rebuilt read model with the
live one, and drops the build unless `--keep`.
"""

from __future__ import annotations

import asyncio
import gc
import heapq
import json
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from events.union import Event, decode
from infra.replay import OFFLINE_BATCH, ReplayError, plan, project_event, project_in_memory, run
from infra.replay_progress import Progress, ProgressFn, ProgressLine
from infra.settings import Settings
from infra.storage.indexed_memory_readmodel import IndexedMemoryReadModel
from infra.worker.pause import ACK_TIMEOUT_SECONDS, LEASE_SECONDS, Paused, pause_workers
from projections.projection import Projection
from projections.store import Table

if TYPE_CHECKING:
    from infra.cassandra.generations import SwitchPlan

T = TypeVar("T")
Partition = tuple[str, int]
# Bulk-load pressure. At 256 requests of 50-row batches in flight, a single node with a
# 1 GB heap ran out of heap (memtables and SAI index segments of ~40 tables filling
# faster than they flush) and exited; keep well below that. A real cluster takes more.
LOAD_IN_FLIGHT = 64
LOAD_BATCH = 20  # rows of one partition per unlogged batch


class _Loop:
    """An event loop in a daemon thread: the engine is synchronous, aiokafka is not."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="glimpse-replay-kafka", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


@dataclass
class _Queue:
    records: deque[tuple[int, int, Event]] = field(default_factory=deque)  # (event id, offset, event)
    next_offset: int = 0  # of the next record to queue
    rewind: bool = False  # the consumer went past the end: seek back to next_offset before fetching


class MergedTopics:
    """The stream topics read from given offsets up to given ends, merged by event id.

    Offers the `read(after, limit)` / `head()` of an ordered log, positions being the rank
    in the merged order, so the embedded engine's `project_in_memory` runs on it."""

    def __init__(self, settings: Settings, decode: Callable[[bytes], Event] = decode) -> None:
        self._settings = settings
        self._decode = decode  # opens sealed personal fields (infra/personal_data/)
        self._loop = _Loop()
        self._consumer: Any = None
        self._queues: dict[Partition, _Queue] = {}
        self._ends: dict[Partition, int] = {}
        self._position = 0
        self._total = 0

    # -- life cycle ----------------------------------------------------------------
    def open(self) -> dict[Partition, int]:
        """Assign every partition from offset zero; returns the snapshot (end offsets)."""
        self._loop.run(self._open())
        self.extend_to_ends()
        return dict(self._ends)

    async def _open(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        from infra.kafka.topics import all_topics, bootstrap_servers

        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers(self._settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=f"glimpse-replay-{uuid.uuid4().hex[:8]}",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        await consumer.start()
        self._consumer = consumer
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(self._settings))
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            wanted = [t for t in all_topics(self._settings) if t in existing]
            described = await admin.describe_topics(wanted) if wanted else []
        finally:
            await admin.close()
        partitions = [
            TopicPartition(d["topic"], int(p["partition"]))
            for d in described
            for p in sorted(d["partitions"], key=lambda p: int(p["partition"]))
        ]
        if not partitions:
            raise ReplayError(f"no topics {self._settings.kafka_topic_prefix}.* on {self._settings.kafka_bootstrap}")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._queues = {(tp.topic, tp.partition): _Queue() for tp in partitions}

    def extend_to_ends(self) -> dict[Partition, int]:
        """Move the ends to the partitions' current ends (new records become readable)."""
        ends = self._loop.run(self._end_offsets())
        for tp, end in ends.items():
            self._total += end - self._ends.get(tp, 0)
            self._ends[tp] = end
        return dict(self._ends)

    async def _end_offsets(self) -> dict[Partition, int]:
        from aiokafka import TopicPartition

        tps = [TopicPartition(t, p) for t, p in self._queues]
        ends = await self._consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): int(end) for tp, end in ends.items()}

    def close(self) -> None:
        if self._consumer is not None:
            self._loop.run(self._consumer.stop())
        self._loop.stop()

    @property
    def ends(self) -> dict[Partition, int]:
        return dict(self._ends)

    def reached(self) -> dict[Partition, int]:
        """The offset of the last record handed out, per partition (-1: none yet)."""
        return {tp: q.next_offset - len(q.records) - 1 for tp, q in self._queues.items()}

    # -- the ordered-log port --------------------------------------------------------
    def head(self) -> int:
        return self._total

    def read(self, after: int, limit: int) -> list[tuple[int, Event]]:
        if after != self._position:
            raise ReplayError(f"the merged topics are read in order: asked from {after}, at {self._position}")
        out: list[tuple[int, Event]] = []
        heads: list[tuple[int, Partition]] = []
        for tp in self._queues:
            if self._ensure_head(tp):
                heads.append((self._queues[tp].records[0][0], tp))
        heapq.heapify(heads)
        while heads and len(out) < limit:
            _, tp = heapq.heappop(heads)
            queue = self._queues[tp]
            _, _, event = queue.records.popleft()
            self._position += 1
            out.append((self._position, event))
            if self._ensure_head(tp):
                heapq.heappush(heads, (queue.records[0][0], tp))
        return out

    def _ensure_head(self, tp: Partition) -> bool:
        """Whether the partition has a record before its end, fetching if need be."""
        queue = self._queues[tp]
        while not queue.records and queue.next_offset < self._ends.get(tp, 0):
            self._loop.run(self._fetch(tp))
        return bool(queue.records)

    async def _fetch(self, tp: Partition) -> None:
        from aiokafka import TopicPartition

        part = TopicPartition(*tp)
        queue = self._queues[tp]
        if queue.rewind:
            self._consumer.seek(part, queue.next_offset)
            queue.rewind = False
        batches = await self._consumer.getmany(part, timeout_ms=2000, max_records=5000)
        for record in batches.get(part, []):
            if record.offset >= self._ends[tp]:
                queue.rewind = True  # read later, once the ends move
                break
            if record.value is None:
                raise ReplayError(f"empty record at {tp[0]}:{tp[1]}:{record.offset}")
            try:
                event = self._decode(record.value)
            except Exception as exc:
                raise ReplayError(f"undecodable record at {tp[0]}:{tp[1]}:{record.offset}: {exc}") from exc
            queue.records.append((event.event_id, record.offset, event))
            queue.next_offset = record.offset + 1


# -- Cassandra ---------------------------------------------------------------------------------


DDL_TIMEOUT = 180.0  # schema changes wait for agreement across the cluster; slow on a busy node
CATCH_UP_SLACK = 1000  # events the build may trail the log by before pausing the worker to switch


def _migrate(session: Any, keyspace: str) -> None:
    """The registry, build and pause tables (migration 0003), for keyspaces that predate them."""
    from infra.cassandra.migrations import migrate

    migrate(session, keyspace)


def load_cassandra(
    session: Any,
    keyspace: str,
    source: IndexedMemoryReadModel,
    tables: Sequence[Table],
    prefix: str,
    progress: ProgressFn | None = None,
    started: float | None = None,
) -> int:
    """Create `prefix` tables and insert the source's rows; returns how many.

    The rows of one partition go in unlogged batches (one request, one partition: the
    batch Cassandra handles best), the rest one statement each, `LOAD_IN_FLIGHT` at a time."""
    from cassandra import ConsistencyLevel
    from cassandra.concurrent import execute_concurrent
    from cassandra.query import UNSET_VALUE, BatchStatement, BatchType

    from infra.cassandra.readmodel import CassandraReadModel
    from infra.cassandra.tables import q, to_cql

    for ddl in CassandraReadModel(session, keyspace, tables, prefix=prefix).schema_statements():
        session.execute(ddl, timeout=DDL_TIMEOUT)
    total = sum(source.row_count(t.name) for t in tables)
    loaded = reported = 0
    begin = time.monotonic()
    for t in tables:
        columns = t.columns
        statement = session.prepare(
            f"INSERT INTO {keyspace}.{prefix}{t.name} ({', '.join(q(c) for c in columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})"
        )
        statement.consistency_level = ConsistencyLevel.LOCAL_QUORUM

        def values(row: dict[str, Any], t: Table = t, columns: tuple[str, ...] = columns) -> tuple[Any, ...]:
            return tuple(UNSET_VALUE if row[c] is None else to_cql(t, c, row[c]) for c in columns)

        def requests(t: Table = t, statement: Any = statement) -> Iterator[tuple[Any, Any]]:
            nonlocal loaded, reported
            for part in source.partitions(t.name):
                if len(part) == 1:
                    yield statement, values(part[0])
                else:
                    for i in range(0, len(part), LOAD_BATCH):
                        batch = BatchStatement(
                            batch_type=BatchType.UNLOGGED, consistency_level=ConsistencyLevel.LOCAL_QUORUM
                        )
                        for row in part[i : i + LOAD_BATCH]:
                            batch.add(statement, values(row))
                        yield batch, None
                loaded += len(part)
                if progress is not None and loaded - reported >= 20_000:
                    reported = loaded
                    now = time.monotonic()
                    progress(Progress("load", loaded, total, "rows", now - begin, now - (started or begin)))

        # One stream of requests per table, `LOAD_IN_FLIGHT` always in flight (no barrier
        # every few hundred requests); the results are consumed as they come, not kept.
        for ok, result in execute_concurrent(
            session, requests(), concurrency=LOAD_IN_FLIGHT, raise_on_first_error=True, results_generator=True
        ):
            if not ok:
                raise result
    if progress is not None:
        now = time.monotonic()
        progress(Progress("load", loaded, total, "rows", now - begin, now - (started or begin)))
    return loaded


@dataclass
class ScaleReport:
    build_id: int
    prefix: str
    projections: tuple[str, ...]
    helpers: tuple[str, ...]
    events: int
    rows: int
    seconds: dict[str, float]
    positions: dict[Partition, int]
    digests: dict[str, dict[str, Any]]
    live_digests: dict[str, dict[str, Any]]  # without a switch: the live read model's, to compare
    kept: bool
    switched: bool = False
    epoch: int | None = None  # the registry's epoch after the switch
    retired: tuple[str, ...] = ()  # tables the switch retired (dropped once their grace period is over)
    workers: tuple[str, ...] = ()  # the live workers that paused for the switch
    direct: bool = False  # no live worker: switched without pausing one

    @property
    def events_per_second(self) -> float:
        total = sum(self.seconds.values())
        return self.events / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "build_id": self.build_id,
            "prefix": self.prefix,
            "projections": list(self.projections),
            "helpers": list(self.helpers),
            "events": self.events,
            "rows": self.rows,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "events_per_second": self.events_per_second,
            "positions": {f"{t}:{p}": o for (t, p), o in sorted(self.positions.items())},
            "switched": self.switched,
            "epoch": self.epoch,
            "retired": list(self.retired),
            "paused_workers": len(self.workers),
            "direct": self.direct,
            "kept": self.kept,
        }


def replay_into(
    settings: Settings,
    session: Any,
    projections: Sequence[Projection],
    names: Sequence[str],
    *,
    keep: bool = False,
    switch: bool = True,
    grace_seconds: float = 60.0,
    progress: ProgressFn | None = None,
    compare: bool = True,
    pause_timeout: float = ACK_TIMEOUT_SECONDS,
) -> ScaleReport:
    """The scale replay (see the module doc) with an open session.

    `switch=True`: pause the workers, catch up, make the build the active generation, resume
    (the old tables are retired for `grace_seconds`; due ones are dropped before returning).
    `switch=False`: build, catch up and compare with the live read model, then drop the build
    unless `keep`. `compare=False` skips the digests (they read every row back: the benchmark
    measures the replay alone)."""
    from infra.cassandra.command_store import CassandraCommandStore
    from infra.cassandra.generations import CassandraRegistry, plan_switch
    from infra.cassandra.readmodel import CassandraReadModel
    from infra.cassandra.worker_control import CassandraWorkerControl
    from infra.personal_data.wiring import scale_codec
    from infra.replay_cli import describe

    keyspace = settings.cassandra_keyspace
    chosen = plan(projections, names)
    _migrate(session, keyspace)
    registry = CassandraRegistry(session, keyspace)
    registry.drop_due(projections)  # what earlier replays retired and nobody dropped yet
    build_id = registry.new_build(chosen.switch, chosen.helpers)
    prefix = f"rm{build_id}_"
    report = progress or (lambda _: None)
    seconds: dict[str, float] = {}
    topics = MergedTopics(settings, scale_codec(session, keyspace, settings.personal_key_cache_seconds).decode)
    tables = chosen.tables
    started = time.monotonic()
    switched: SwitchPlan | None = None
    paused: Paused | None = None
    digests: dict[str, dict[str, Any]] = {}
    live_digests: dict[str, dict[str, Any]] = {}
    try:
        topics.open()
        target = topics.head()
        t0 = time.monotonic()

        def on_projected(done: int) -> None:
            now = time.monotonic()
            report(Progress("project", done, target, "events", now - t0, now - started))

        memory = run(project_in_memory(topics, chosen.build, target, batch=OFFLINE_BATCH, progress=on_projected))
        seconds["project"] = time.monotonic() - t0
        t0 = time.monotonic()
        rows = load_cassandra(session, keyspace, memory, tables, prefix, report, started)
        del memory
        seconds["load"] = time.monotonic() - t0
        t0 = time.monotonic()
        builder = CassandraReadModel(session, keyspace, tables, prefix=prefix)

        def catch_up(position: int, until: int, renew: Callable[[], None] = lambda: None) -> int:
            """Apply the merged positions after `position` up to `until` to the build."""
            while position < until:
                renew()
                events = topics.read(position, min(until - position, OFFLINE_BATCH))
                if not events:
                    raise ReplayError(f"the topics end at {position}, before {until}")
                for pos, event in events:
                    project_event(builder, chosen.build, pos, event)
                    position = pos
                now = time.monotonic()
                report(Progress("catch-up", position - target, until - target, "events", now - t0, now - started))
            return position

        position = target
        while True:  # what arrived meanwhile, while more keeps arriving
            topics.extend_to_ends()
            if topics.head() - position <= (CATCH_UP_SLACK if switch else 0):
                break
            position = catch_up(position, topics.head())
        seconds["catch-up"] = time.monotonic() - t0
        if not switch:
            positions = topics.reached()
            registry.finish_build(build_id, "built", positions, position)
            if compare:
                digests = describe(builder, chosen.switch)
                live = CassandraReadModel(session, keyspace, tables)
                live.route(registry.routes(chosen.switch))
                live_digests = describe(live, chosen.switch)
        else:
            t0 = time.monotonic()
            control = CassandraWorkerControl(session, keyspace)
            group = settings.worker_group
            paused = pause_workers(control, group, timeout=pause_timeout)
            now = time.monotonic()
            report(Progress("pause", position - target, position - target, "events", now - t0, now - started))
            request = paused.request

            def renew() -> None:
                if not control.renew(group, request, time.time() + LEASE_SECONDS):
                    raise ReplayError(f"lost the pause of worker group {group} (another replay, or the lease ran out)")

            try:
                # Every live worker has stopped applying: what the log holds now is all there is
                # to apply before the switch (more arrives, and the worker applies it afterwards).
                topics.extend_to_ends()
                position = catch_up(position, topics.head(), renew)
                positions = topics.reached()
                _check_covers(positions, paused, CassandraCommandStore(session, keyspace).positions(group))
                _complete_unfinished_flushes(session, keyspace, group, registry.routes(projections))
                switched = plan_switch(
                    registry.state(), build_id, prefix, chosen.switch, chosen.helpers, time.time(), grace_seconds
                )
                renew()
                if not registry.switch(switched):  # on an error `switched` stays set: maybe it was applied
                    switched = None
                    raise ReplayError("another replay switched the read models meanwhile; nothing switched")
                if {p.name for p in chosen.switch} >= {p.name for p in projections}:
                    # Every table the worker writes is rebuilt: it may skip what the build covers.
                    # After the generation: a reader that sees these positions reached sees the new tables.
                    CassandraCommandStore(session, keyspace).save_positions(
                        group, {tp: offset for tp, offset in positions.items() if offset >= 0}
                    )
                # Otherwise the positions stay the worker's: the tables not rebuilt need what it has not
                # applied yet, and the rebuilt ones take those records a second time, as after a crash
                # (every sink is idempotent under redelivery).
                registry.finish_build(build_id, "switched", positions, position)
            finally:
                control.lift(group, request)
            seconds["switch"] = time.monotonic() - t0
            if compare:
                digests = describe(builder, chosen.switch)
    except BaseException:
        if switched is None or not _maybe_active(registry, build_id):
            registry.finish_build(build_id, "failed", {}, 0)
            _drop_build(session, keyspace, prefix, tables)
        else:  # the switch happened (or may have): the build is live, whatever failed after it
            registry.finish_build(build_id, "switched", topics.reached(), 0)
        raise
    finally:
        topics.close()
        gc.unfreeze()  # project_in_memory froze the store's objects out of the collector's way
    if switched is not None:
        drop_retired(settings, session, projections, switched.epoch)
    elif not keep:
        _drop_build(session, keyspace, prefix, tables)
        registry.finish_build(build_id, "dropped", positions, position)
    now = time.monotonic()
    report(Progress("done", position, position, "events", now - started, now - started))
    return ScaleReport(
        build_id=build_id,
        prefix=prefix,
        projections=tuple(p.name for p in chosen.switch),
        helpers=tuple(p.name for p in chosen.helpers),
        events=position,
        rows=rows,
        seconds=seconds,
        positions=positions,
        digests=digests,
        live_digests=live_digests,
        kept=keep or switched is not None,
        switched=switched is not None,
        epoch=switched.epoch + 1 if switched is not None else None,
        retired=tuple(r.physical for r in switched.retired) if switched is not None else (),
        workers=paused.workers if paused is not None else (),
        direct=paused.direct if paused is not None else False,
    )


def _maybe_active(registry: Any, build_id: int) -> bool:
    """Is the build an active generation? True when the registry cannot say: never drop live tables."""
    try:
        return any(a.build_id == build_id for a in registry.state().active.values())
    except Exception:
        return True


def _check_covers(positions: Mapping[Partition, int], paused: Paused, saved: Mapping[Partition, int]) -> None:
    """The build must cover whatever the paused workers (and the group's saved positions) had
    applied: they will skip everything up to the positions the switch records."""
    for where, applied in [*paused.positions.items(), ("the saved positions", saved)]:
        behind = {tp: (positions.get(tp, -1), o) for tp, o in applied.items() if positions.get(tp, -1) < o}
        if behind:
            raise ReplayError(f"the build is behind {where} (build, applied): {behind}; nothing switched")


def _complete_unfinished_flushes(session: Any, keyspace: str, group: str, routes: Mapping[str, str]) -> int:
    """A worker that died half-way through writing a batch left it in the flush journal for the
    next worker to finish (infra/worker/applier.py). Finish it now, on the tables it was meant
    for, while the workers are paused: after the switch the next worker would write it to the
    new tables, which hold those records already (the build covers them)."""
    from infra.cassandra.flush_journal import CassandraFlushJournal
    from infra.cassandra.readmodel import CassandraReadModel
    from projections.registry import all_tables

    journal = CassandraFlushJournal(session, keyspace)
    unfinished = journal.unfinished(group)
    if unfinished:
        live = CassandraReadModel(session, keyspace, all_tables())
        live.route(routes)
        for writer, changes in unfinished:
            live.write_changes(changes)
            journal.finish(group, writer)
    return len(unfinished)


def drop_retired(settings: Settings, session: Any, projections: Sequence[Projection], old_epoch: int) -> list[str]:
    """Drop the retired tables that are due, and forget the Redis caches of `old_epoch` once
    every table it retired is gone (they would expire on their own)."""
    from infra.cassandra.generations import CassandraRegistry
    from infra.redis_adapters.generation_caches import forget_generation
    from infra.redis_adapters.wiring import redis_client

    registry = CassandraRegistry(session, settings.cassandra_keyspace)
    dropped = registry.drop_due(projections)
    if dropped and not registry.state().retired:
        try:
            forget_generation(redis_client(settings), settings.redis_prefix, old_epoch)
        except Exception as exc:  # the caches expire anyway: not worth failing a switched replay
            print(f"glimpse replay: could not delete the old cached feeds and counters: {exc}", file=sys.stderr)
    return dropped


def _drop_build(session: Any, keyspace: str, prefix: str, tables: Sequence[Table]) -> None:
    for t in tables:
        session.execute(f"DROP TABLE IF EXISTS {keyspace}.{prefix}{t.name}", timeout=DDL_TIMEOUT)


def _connect(settings: Settings) -> Any:
    from infra.cassandra.session import connect

    return connect(settings)


def replay_scale(
    settings: Settings,
    names: Sequence[str],
    *,
    as_json: bool,
    keep: bool = False,
    switch: bool = True,
    grace_seconds: float = 60.0,
) -> int:
    """`glimpse replay --mode scale`: rebuild, switch, then wait out the grace period and drop
    the old tables (interrupted, it leaves them to the next replay)."""
    from infra.replay_cli import print_digests
    from infra.replay_embedded import replay_projections

    session = _connect(settings)
    projections = replay_projections(settings, cold_caches=False)
    line = ProgressLine()
    try:
        try:
            result = replay_into(
                settings,
                session,
                projections,
                names,
                keep=keep,
                switch=switch,
                grace_seconds=grace_seconds,
                progress=line,
            )
        finally:
            line.close()
        body = result.as_dict()
        same = {n: result.digests[n]["digest"] == result.live_digests[n]["digest"] for n in result.live_digests}
        if as_json:
            print(
                json.dumps(
                    {"report": body, "digests": result.digests, "live": result.live_digests, "same": same}, indent=2
                ),
                flush=True,
            )
        else:
            phases = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
            print(
                f"replayed {', '.join(result.projections)} from Kafka offset zero into {result.prefix}* "
                f"({result.events:,} events, {result.rows:,} rows, {result.events_per_second:,.0f} events/s; {phases})"
            )
            if result.switched:
                how = "no live worker" if result.direct else f"{len(result.workers)} worker(s) paused"
                print(f"  switched to build {result.build_id} (epoch {result.epoch}; {how})")
            else:
                print(f"  not switched (--no-switch); build {'kept' if keep else 'dropped'}")
            print_digests(result.digests, tables=False, as_json=False)
            for name, equal in same.items():
                print(f"  {name}: {'same as' if equal else 'DIFFERENT from'} the live read model")
            sys.stdout.flush()
        if result.switched and result.epoch is not None:
            _wait_and_drop(settings, session, projections, result.epoch - 1, grace_seconds)
    finally:
        session.cluster.shutdown()
    return 0


def _wait_and_drop(
    settings: Settings, session: Any, projections: Sequence[Projection], old_epoch: int, grace_seconds: float
) -> None:
    from infra.cassandra.generations import CassandraRegistry

    registry = CassandraRegistry(session, settings.cassandra_keyspace)
    pending = registry.state().retired
    if not pending:
        return
    last = max(r.drop_after for r in pending.values())
    wait = max(0.0, last - time.time())
    print(
        f"  the old tables go in {wait:.0f}s (grace period; interrupted, the next replay drops them)",
        file=sys.stderr,
        flush=True,
    )
    time.sleep(wait)
    dropped = drop_retired(settings, session, projections, old_epoch)
    print(f"  dropped {len(dropped)} old table(s)", file=sys.stderr)


def scale_digests(settings: Settings, projections: Sequence[Projection]) -> dict[str, dict[str, Any]]:
    """`glimpse digest --mode scale`: the live Cassandra read models (the active generation)."""
    from infra.cassandra.generations import CassandraRegistry
    from infra.cassandra.readmodel import CassandraReadModel
    from infra.replay_cli import describe
    from projections.registry import all_tables

    session = _connect(settings)
    try:
        keyspace = settings.cassandra_keyspace
        _migrate(session, keyspace)
        store = CassandraReadModel(session, keyspace, all_tables())
        store.route(CassandraRegistry(session, keyspace).routes(projections))
        return describe(store, projections)
    finally:
        session.cluster.shutdown()


def bench_scale_replay(records: Sequence[tuple[str, int, bytes]]) -> dict[str, Any]:
    """For bench/replay_bench.py: produce `records` (stream, key, value) to fresh topics,
    replay them into a fresh keyspace, and time it."""
    import os
    import resource

    from infra.cassandra.session import drop_keyspace, ensure_keyspace
    from infra.kafka.topics import ensure_topics
    from infra.personal_data.wiring import scale_codec
    from infra.replay_embedded import replay_projections

    if not os.environ.get("GLIMPSE_KAFKA_BOOTSTRAP") or not os.environ.get("GLIMPSE_CASSANDRA_HOSTS"):
        return {"skipped": "the scale stack is not running (source /work/notes/stack.env or `make stack`)"}
    name = f"rb{uuid.uuid4().hex[:10]}"
    settings = Settings(kafka_topic_prefix=name, cassandra_keyspace=name, kafka_partitions=6)
    session = _connect(settings)
    try:
        ensure_keyspace(session, name, 1)
        _migrate(session, name)
        # As a deployment writes them: personal fields sealed with each person's key, kept
        # in the bench keyspace, so the replay's figure includes opening them.
        sealing = time.perf_counter()
        records = _seal(records, scale_codec(session, name, settings.personal_key_cache_seconds))
        sealing = time.perf_counter() - sealing
        ensure_topics(settings)
        produced = time.perf_counter()
        _produce(settings, records)
        produced = time.perf_counter() - produced
        cpu, wall = time.process_time(), time.perf_counter()
        line = ProgressLine()
        try:
            result = replay_into(
                settings,
                session,
                replay_projections(settings, cold_caches=False),
                [],
                keep=False,
                switch=False,
                compare=False,
                progress=line,
            )
        finally:
            line.close()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        try:
            drop_keyspace(session, name)
        finally:
            session.cluster.shutdown()
            _delete_topics(settings)
    return {
        "events": result.events,
        "rows": result.rows,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "events_per_second": round(result.events / wall),
        "events_per_cpu_second": round(result.events / cpu),
        "phases": {k: round(v, 2) for k, v in result.seconds.items()},
        "produce_seconds": round(produced, 1),
        "seal_seconds": round(sealing, 1),
        "sealed": True,
        "partitions": settings.kafka_partitions,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "goal_events_per_second": 20_000,
    }


def _seal(records: Sequence[tuple[str, int, bytes]], codec: Any) -> list[tuple[str, int, bytes]]:
    import orjson

    from events.union import EVENT_CLASSES

    personal = {kind for kind, cls in EVENT_CLASSES.items() if getattr(cls, "PERSONAL", None)}
    return [
        (stream, key, codec.encode(decode(value)) if orjson.loads(value)["type"] in personal else value)
        for stream, key, value in records
    ]


def _produce(settings: Settings, records: Sequence[tuple[str, int, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    from infra.kafka.topics import bootstrap_servers, topic_of

    async def produce() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers(settings), acks="all", linger_ms=20, max_batch_size=1 << 20
        )
        await producer.start()
        try:
            pending = []
            for stream, key, value in records:
                pending.append(await producer.send(topic_of(settings, stream), value, key=str(key).encode()))
                if len(pending) >= 20_000:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
        finally:
            await producer.stop()

    asyncio.run(produce())


def _delete_topics(settings: Settings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from infra.kafka.topics import all_topics, bootstrap_servers

    async def delete() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings))
        await admin.start()
        try:
            await admin.delete_topics(all_topics(settings))
        finally:
            await admin.close()

    asyncio.run(delete())
