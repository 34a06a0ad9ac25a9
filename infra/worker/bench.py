"""How fast the projection worker's applier builds the Cassandra read models, without Kafka.

    source /work/notes/stack.env
    .venv/bin/python -m infra.worker.bench --users 80 --batch 500 [--check] [--profile out.prof]

The history is the demo seeder's (the same one the worker integration tests use),
seeded once through the embedded app and cached under .cache/ as encoded events. It
is cut into records the way the Kafka event log writes them (a topic per stream,
a partition per aggregate id), in append order, which is the order the worker's
merger hands them to the applier. Each run uses a fresh keyspace, dropped afterwards.

Reports events/s over the whole history and the p50/p99/max time to apply a batch;
`--check` compares every row with the embedded SQLite projector's, `--profile`
writes a cProfile of the applying to a file.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from events.union import Event, decode, encode
from infra.settings import Settings
from infra.worker.applier import BatchApplier, Record
from projections.registry import PROJECTIONS, all_tables

CACHE = Path(".cache/worker-bench")
PARTITIONS = 6


def history(users: int) -> tuple[list[Event], Path]:
    """The seeded history (cached) and the folder of the embedded app that seeded it."""
    from infra.bootstrap import build_embedded
    from infra.demo.seed import seed
    from infra.storage.sqlite_eventlog import SqliteEventLog

    folder = CACHE / f"users-{users}"
    events_file = folder / "events.jsonl"
    if not events_file.exists():
        folder.mkdir(parents=True, exist_ok=True)
        container = build_embedded(Settings(data_dir=folder / "embedded"))
        seed(container, users=users)
        assert isinstance(container.log, SqliteEventLog)
        events = [e for _, e in container.log.read(0, 10**9)]
        container.close()
        events_file.write_bytes(b"\n".join(encode(e) for e in events))
    events = [decode(line) for line in events_file.read_bytes().splitlines() if line]
    return events, folder / "embedded"


def records_of(events: list[Event], prefix: str) -> list[Record]:
    offsets: dict[tuple[str, int], int] = {}
    out = []
    for e in events:
        tp = (f"{prefix}.{e.STREAM}", hash(str(e.aggregate_id)) % PARTITIONS)
        offset = offsets.get(tp, -1) + 1
        offsets[tp] = offset
        out.append(Record(tp[0], tp[1], offset, e))
    return out


def reference_rows(events: list[Event]) -> dict[str, list[bytes]]:
    """The rows the embedded projector builds from `events` with today's projections:
    SQLite, every projection per event in registry order."""
    import sqlite3

    from infra.storage.sqlite_readmodel import SqliteReadModel

    read = SqliteReadModel(sqlite3.connect(":memory:"), all_tables())
    read.create_schema()
    for event in events:
        for p in PROJECTIONS:
            read.apply(p.project(event, read))
    return _rows(read)


def _rows(read: Any) -> dict[str, list[bytes]]:
    out = {}
    for t in all_tables():
        rows = read.scan(t.name, {})
        rows.sort(key=lambda r: tuple(r[c] for c in t.key))
        out[t.name] = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in rows]
    return out


def _cpu_of(pid: int | None) -> float:
    """CPU seconds (user + system) another process has used, from /proc."""
    if not pid:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=80)
    parser.add_argument("--batch", type=int, default=None, help="records per batch (default: worker_batch_size)")
    parser.add_argument("--limit", type=int, default=None, help="apply only the first N events")
    parser.add_argument("--check", action="store_true", help="compare every row with the embedded projector's")
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile of the applying here")
    parser.add_argument("--plain", action="store_true", help="apply straight to Cassandra, no batch overlay")
    parser.add_argument("--server-pid", type=int, default=None, help="also report this process's CPU (Cassandra)")
    parser.add_argument("--no-retain", action="store_true", help="forget what is known after every batch")
    parser.add_argument("--no-journal", action="store_true", help="flush without journaling the changes first")
    parser.add_argument("--lookahead", type=int, default=None, help="events a lookahead runs ahead")
    parser.add_argument("--waves", type=int, default=None, help="speculation rounds per lookahead")
    args = parser.parse_args(argv)

    from infra.cassandra.command_store import CassandraCommandStore
    from infra.cassandra.migrations import migrate
    from infra.cassandra.session import drop_keyspace, ensure_keyspace
    from infra.worker.bootstrap import build_read_model, connect_worker

    settings = Settings(cassandra_keyspace=f"glimpse_bench_{uuid.uuid4().hex[:10]}")
    batch = args.batch or settings.worker_batch_size
    events, _ = history(args.users)
    if args.limit:
        events = events[: args.limit]
    records = records_of(events, "bench")
    session = connect_worker(settings)
    keyspace = settings.cassandra_keyspace
    try:
        ensure_keyspace(session, keyspace, 1)
        migrate(session, keyspace, all_tables())
        read = build_read_model(session, settings, overlay=not args.plain)
        for name in ("lookahead", "waves"):
            if getattr(args, name) is not None and hasattr(
                read, f"_{name}_events" if name == "lookahead" else "_waves"
            ):
                setattr(read, "_lookahead_events" if name == "lookahead" else "_waves", getattr(args, name))
        from infra.cassandra.flush_journal import CassandraFlushJournal

        journal = None if args.plain or args.no_journal else CassandraFlushJournal(session, keyspace)
        applier = BatchApplier(read, PROJECTIONS, CassandraCommandStore(session, keyspace), "bench", journal=journal)
        applier.load_positions()
        applier.ownership(0, not args.no_retain)  # one worker owning every partition, as the worker sees it
        times: list[float] = []
        profiler = cProfile.Profile() if args.profile else None
        server_cpu = _cpu_of(args.server_pid)
        cpu = time.process_time()
        started = time.perf_counter()
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            t0 = time.perf_counter()
            if profiler:
                profiler.enable()
            applier.apply(chunk)
            if profiler:
                profiler.disable()
            times.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        server_cpu = _cpu_of(args.server_pid) - server_cpu
        if profiler and args.profile:
            profiler.dump_stats(str(args.profile))
        ordered = sorted(times)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(
            f"{'plain' if args.plain else 'overlay'}: {len(records)} events, batch {batch}: {elapsed:.2f} s = "
            f"{len(records) / elapsed:,.0f} events/s; batch apply p50 {statistics.median(times) * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms ({len(times)} batches)"
        )
        per_event = f"worker CPU {cpu / len(records) * 1e6:.0f} us/event"
        if args.server_pid:
            per_event += f", server CPU {server_cpu / len(records) * 1e6:.0f} us/event"
        print(f"  {per_event} ({os.getloadavg()[0]:.1f} load average)")
        stats = getattr(read, "stats", None)
        if stats is not None:
            print(f"  {stats}")
        if args.check:
            if args.limit:
                print("--check needs the whole history", file=sys.stderr)
                return 2
            from infra.cassandra.readmodel import CassandraReadModel

            want, got = reference_rows(events), _rows(CassandraReadModel(session, keyspace, all_tables()))
            bad = [name for name in want if want[name] != got.get(name)]
            for name in bad:
                print(f"  {name}: {len(want[name])} rows expected, {len(got.get(name, []))} found")
            print("check: identical to the embedded projector" if not bad else f"check: {len(bad)} tables differ")
            if bad:
                return 1
    finally:
        drop_keyspace(session, keyspace)
        session.cluster.shutdown()
    return 0


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        sys.exit(main())
