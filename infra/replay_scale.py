"""Replays in the scale mode: Kafka from offset zero into new Cassandra tables beside the live ones.

    glimpse replay --mode scale [--projection NAME ...] [--keep]

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
   on the new tables, until the build is at the current ends.
5. Compare: the digest of each rebuilt read model and of the live one.

What is not done yet: the switch. In the scale stack the read models are written by the
projection worker and read by every API process, so switching needs them to read the
active generation from `readmodel_generations` (the table is created here): pause the
worker, catch the build up to the end, save the build's offsets as the worker group's
positions, record the new generation, resume the worker and re-route the API processes
(and give the Redis caches a new key prefix, so no mirror of the old tables is served).
The worker and the API composition roots do not read the registry today, so a scale
replay builds, catches up and compares, records the build as `built`, and drops its
tables unless `--keep` is given. docs/replay.md has the protocol.
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
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from events.union import Event, decode
from infra.replay import OFFLINE_BATCH, ReplayError, plan, project_in_memory, run
from infra.replay_progress import Progress, ProgressFn, ProgressLine
from infra.settings import Settings
from infra.storage.indexed_memory_readmodel import IndexedMemoryReadModel
from projections.projection import Projection
from projections.store import Table

T = TypeVar("T")
Partition = tuple[str, int]
# Bulk-load pressure. At 256 requests of 50-row batches in flight, a single node with a
# 1 GB heap ran out of heap (memtables and SAI index segments of ~40 tables filling
# faster than they flush) and exited; keep well below that. A real cluster takes more.
LOAD_IN_FLIGHT = 32
LOAD_BATCH = 20  # rows of one partition per unlogged batch

REGISTRY = (
    "CREATE TABLE IF NOT EXISTS {ks}.readmodel_generations "
    "(projection text PRIMARY KEY, version int, prefix text, build_id int, switched_at timestamp)",
    "CREATE TABLE IF NOT EXISTS {ks}.readmodel_builds (build_id int PRIMARY KEY, prefix text, projections text, "
    "helpers text, state text, positions text, events bigint, started_at timestamp, finished_at timestamp)",
)


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

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
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
                event = decode(record.value)
            except Exception as exc:
                raise ReplayError(f"undecodable record at {tp[0]}:{tp[1]}:{record.offset}: {exc}") from exc
            queue.records.append((event.event_id, record.offset, event))
            queue.next_offset = record.offset + 1


# -- Cassandra ---------------------------------------------------------------------------------


DDL_TIMEOUT = 180.0  # schema changes wait for agreement across the cluster; slow on a busy node


def _registry(session: Any, keyspace: str) -> None:
    for statement in REGISTRY:
        session.execute(statement.format(ks=keyspace), timeout=DDL_TIMEOUT)


def _new_build(session: Any, keyspace: str, switch: Sequence[Projection], helpers: Sequence[Projection]) -> int:
    _registry(session, keyspace)
    taken = [int(r[0]) for r in session.execute(f"SELECT build_id FROM {keyspace}.readmodel_builds")]
    build_id = max(taken, default=0) + 1
    while True:
        claimed = session.execute(
            f"INSERT INTO {keyspace}.readmodel_builds (build_id, prefix, projections, helpers, state, started_at) "
            "VALUES (%s, %s, %s, %s, 'building', %s) IF NOT EXISTS",
            (
                build_id,
                f"rm{build_id}_",
                json.dumps([p.name for p in switch]),
                json.dumps([p.name for p in helpers]),
                datetime.now(UTC),
            ),
        ).one()
        if claimed[0]:
            return build_id
        build_id += 1


def _finish_build(
    session: Any, keyspace: str, build_id: int, state: str, positions: dict[Partition, int], events: int
) -> None:
    session.execute(
        f"UPDATE {keyspace}.readmodel_builds SET state = %s, positions = %s, events = %s, finished_at = %s "
        "WHERE build_id = %s",
        (state, json.dumps({f"{t}:{p}": o for (t, p), o in positions.items()}), events, datetime.now(UTC), build_id),
    )


def active_prefixes(session: Any, keyspace: str) -> dict[str, str]:
    _registry(session, keyspace)
    return {
        str(n): str(p) for n, p in session.execute(f"SELECT projection, prefix FROM {keyspace}.readmodel_generations")
    }


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
    loaded = 0
    begin = time.monotonic()
    for t in tables:
        columns = t.columns
        statement = session.prepare(
            f"INSERT INTO {keyspace}.{prefix}{t.name} ({', '.join(q(c) for c in columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})"
        )
        statement.consistency_level = ConsistencyLevel.LOCAL_QUORUM
        requests: list[tuple[Any, Any]] = []
        count = 0

        def values(row: dict[str, Any], t: Table = t, columns: tuple[str, ...] = columns) -> tuple[Any, ...]:
            return tuple(UNSET_VALUE if row[c] is None else to_cql(t, c, row[c]) for c in columns)

        for part in source.partitions(t.name):
            if len(part) == 1:
                requests.append((statement, values(part[0])))
            else:
                for i in range(0, len(part), LOAD_BATCH):
                    batch = BatchStatement(
                        batch_type=BatchType.UNLOGGED, consistency_level=ConsistencyLevel.LOCAL_QUORUM
                    )
                    for row in part[i : i + LOAD_BATCH]:
                        batch.add(statement, values(row))
                    requests.append((batch, None))
            count += len(part)
            if len(requests) >= LOAD_IN_FLIGHT * 8:
                execute_concurrent(session, requests, concurrency=LOAD_IN_FLIGHT, raise_on_first_error=True)
                requests.clear()
                loaded += count
                count = 0
                if progress is not None:
                    now = time.monotonic()
                    progress(Progress("load", loaded, total, "rows", now - begin, now - (started or begin)))
        if requests:
            execute_concurrent(session, requests, concurrency=LOAD_IN_FLIGHT, raise_on_first_error=True)
        loaded += count
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
    live_digests: dict[str, dict[str, Any]]
    kept: bool

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
            "switched": False,
            "kept": self.kept,
        }


def replay_into(
    settings: Settings,
    session: Any,
    projections: Sequence[Projection],
    names: Sequence[str],
    *,
    keep: bool,
    progress: ProgressFn | None = None,
    compare: bool = True,
) -> ScaleReport:
    """The scale replay (see the module doc) with an open session. `compare=False` skips the
    digests (they read every row back: the benchmark measures the replay alone)."""
    from infra.cassandra.readmodel import CassandraReadModel
    from infra.replay_cli import describe

    keyspace = settings.cassandra_keyspace
    chosen = plan(projections, names)
    build_id = _new_build(session, keyspace, chosen.switch, chosen.helpers)
    prefix = f"rm{build_id}_"
    report = progress or (lambda _: None)
    seconds: dict[str, float] = {}
    topics = MergedTopics(settings)
    tables = chosen.tables
    started = time.monotonic()
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
        position = target
        while True:  # what arrived meanwhile
            topics.extend_to_ends()
            head = topics.head()
            if head == position:
                break
            for pos, event in topics.read(position, head - position):
                for p in chosen.build:
                    ops = p.project(event, builder)
                    if ops:
                        builder.apply(ops)
                position = pos
            now = time.monotonic()
            report(Progress("catch-up", position - target, head - target, "events", now - t0, now - started))
        seconds["catch-up"] = time.monotonic() - t0
        positions = topics.reached()
        _finish_build(session, keyspace, build_id, "built", positions, position)
        digests: dict[str, dict[str, Any]] = {}
        live_digests: dict[str, dict[str, Any]] = {}
        if compare:
            digests = describe(builder, chosen.switch)
            live = CassandraReadModel(session, keyspace, tables, prefix=_live_prefix(session, keyspace))
            live_digests = describe(live, chosen.switch)
    except BaseException:
        _finish_build(session, keyspace, build_id, "failed", {}, 0)
        _drop_build(session, keyspace, prefix, tables)
        raise
    finally:
        topics.close()
        gc.unfreeze()  # project_in_memory froze the store's objects out of the collector's way
    if not keep:
        _drop_build(session, keyspace, prefix, tables)
        _finish_build(session, keyspace, build_id, "dropped", positions, position)
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
        kept=keep,
    )


def _live_prefix(session: Any, keyspace: str) -> str:
    chosen = set(active_prefixes(session, keyspace).values())
    return chosen.pop() if len(chosen) == 1 else "rm_"


def _drop_build(session: Any, keyspace: str, prefix: str, tables: Sequence[Table]) -> None:
    for t in tables:
        session.execute(f"DROP TABLE IF EXISTS {keyspace}.{prefix}{t.name}", timeout=DDL_TIMEOUT)


def _connect(settings: Settings) -> Any:
    from infra.cassandra.session import connect

    return connect(settings)


def replay_scale(settings: Settings, names: Sequence[str], *, as_json: bool, keep: bool = False) -> int:
    """`glimpse replay --mode scale`."""
    from infra.replay_cli import print_digests
    from infra.replay_embedded import replay_projections

    session = _connect(settings)
    line = ProgressLine()
    try:
        result = replay_into(settings, session, replay_projections(settings), names, keep=keep, progress=line)
    finally:
        line.close()
        session.cluster.shutdown()
    body = result.as_dict()
    same = {n: result.digests[n]["digest"] == result.live_digests[n]["digest"] for n in result.digests}
    if as_json:
        print(
            json.dumps({"report": body, "digests": result.digests, "live": result.live_digests, "same": same}, indent=2)
        )
        return 0
    print(
        f"replayed {', '.join(result.projections)} from Kafka offset zero into {result.prefix}* "
        f"({result.events:,} events, {result.rows:,} rows, {result.events_per_second:,.0f} events/s)"
    )
    print("  not switched: the worker and the API processes do not read readmodel_generations yet (docs/replay.md)")
    print_digests(result.digests, tables=False, as_json=False)
    for name, equal in same.items():
        print(f"  {name}: {'same as' if equal else 'DIFFERENT from'} the live read model")
    print(f"  build {'kept' if keep else 'dropped'}", file=sys.stderr)
    return 0


def scale_digests(settings: Settings, projections: Sequence[Projection]) -> dict[str, dict[str, Any]]:
    """`glimpse digest --mode scale`: the live Cassandra read models."""
    from infra.cassandra.readmodel import CassandraReadModel
    from infra.replay_cli import describe
    from projections.registry import all_tables

    session = _connect(settings)
    try:
        keyspace = settings.cassandra_keyspace
        store = CassandraReadModel(session, keyspace, all_tables(), prefix=_live_prefix(session, keyspace))
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
    from infra.replay_embedded import replay_projections

    if not os.environ.get("GLIMPSE_KAFKA_BOOTSTRAP") or not os.environ.get("GLIMPSE_CASSANDRA_HOSTS"):
        return {"skipped": "the scale stack is not running (source /work/notes/stack.env or `make stack`)"}
    name = f"rb{uuid.uuid4().hex[:10]}"
    settings = Settings(kafka_topic_prefix=name, cassandra_keyspace=name, kafka_partitions=6)
    ensure_topics(settings)
    produced = time.perf_counter()
    _produce(settings, records)
    produced = time.perf_counter() - produced
    session = _connect(settings)
    try:
        ensure_keyspace(session, name, 1)
        cpu, wall = time.process_time(), time.perf_counter()
        line = ProgressLine()
        try:
            result = replay_into(
                settings, session, replay_projections(settings), [], keep=False, compare=False, progress=line
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
        "partitions": settings.kafka_partitions,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "goal_events_per_second": 20_000,
    }


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
