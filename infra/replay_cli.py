"""`glimpse replay` and `glimpse digest`.

    glimpse replay [--projection NAME ...] [--mode embedded|scale] [--data-dir DIR] [--grace-seconds S]
    glimpse digest [--projection NAME ...] [--mode embedded|scale] [--data-dir DIR] [--tables] [--json]

Embedded replay: when nothing serves the data dir, the command takes it exclusively and
rebuilds in its own process; when a server has it open, the command asks that server
(infra/replay_embedded.py) and follows its progress. Either way it draws a progress line
on stderr (phase, share done, events/s or rows/s, time left), then prints what it did
and the digest of each rebuilt read model on stdout.

Scale replay: infra/replay_scale.py (Kafka from offset zero into new Cassandra tables, then
a switch with the projection workers paused; `--no-switch` only builds and compares).

Digest: one line per read model (projection): its digest and row count; with --tables,
one line per table as well. It only reads (SQLite in WAL mode lets it run beside a
server), inside one read transaction, so all tables are digested at one log position.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra import readmodel_generations as generations
from infra.data_dir_lock import in_use, try_exclusive
from infra.personal_data.wiring import embedded_codec
from infra.readmodel_digest import CACHE_TABLES, combine, table_digests
from infra.replay import Engine, ReplayError, ReplayReport, blue_green, plan, run
from infra.replay_embedded import read_status, replay_projections, request_replay
from infra.replay_progress import Progress, ProgressLine
from infra.settings import Settings
from infra.storage.sqlite_eventlog import SqliteEventLog, connect
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.projection import Projection
from projections.registry import all_tables

EXIT_FAILED = 1
PICKUP_SECONDS = 30.0  # a serving process polls for requests twice a second


def add_arguments(replay: argparse.ArgumentParser, digest: argparse.ArgumentParser) -> None:
    for p in (replay, digest):
        p.add_argument("--projection", action="append", default=[], metavar="NAME", help="(repeatable) default: all")
        p.add_argument("--mode", choices=["embedded", "scale"], default=None)
        p.add_argument("--data-dir")
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    replay.add_argument(
        "--grace-seconds", type=float, default=60.0, help="keep the old generation this long after the switch"
    )
    replay.add_argument(
        "--no-switch",
        dest="switch",
        action="store_false",
        help="scale mode: build, catch up and compare with the live read model, but do not switch",
    )
    replay.add_argument("--keep", action="store_true", help="scale mode with --no-switch: keep the rebuilt tables")
    replay.add_argument(
        "--engine",
        choices=["memory", "sqlite"],
        default="memory",
        help="embedded mode: project in memory, then load (fast), or straight into SQLite (for models bigger than RAM)",
    )
    digest.add_argument("--tables", action="store_true", help="a line per table too")


# -- digests -------------------------------------------------------------------------------


def _open_readonly(data_dir: Path) -> sqlite3.Connection:
    path = data_dir / "readmodels.db"
    if not path.exists():
        raise ReplayError(f"no read models in {data_dir}")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)


def embedded_digests(data_dir: Path, projections: Sequence[Projection]) -> dict[str, dict[str, Any]]:
    """Per projection: its digest, row count and per-table digests, at one consistent point."""
    conn = _open_readonly(data_dir)
    try:
        store = SqliteReadModel(conn, all_tables())
        conn.execute("BEGIN")  # one snapshot for every table
        try:
            try:
                chosen = {
                    str(n): str(p) for n, p in conn.execute("SELECT projection, prefix FROM readmodel_generations")
                }
            except sqlite3.OperationalError:  # never replayed: every projection is in its legacy tables
                chosen = {}
            for p in projections:
                prefix = chosen.get(p.name, generations.LEGACY_PREFIX)
                store.route({t.name: prefix + t.name for t in p.tables})
            return describe(store, projections)
        finally:
            conn.execute("ROLLBACK")
    finally:
        conn.close()


def describe(store: Any, projections: Sequence[Projection]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in projections:
        tables = table_digests(store, p.tables, caches=True)
        logical = {n: d for n, (d, _) in tables.items() if n not in CACHE_TABLES}
        out[p.name] = {
            "digest": combine(logical),
            "rows": sum(n for _, n in tables.values()),
            "tables": {n: {"digest": d, "rows": rows, "cache": n in CACHE_TABLES} for n, (d, rows) in tables.items()},
        }
    return out


def print_digests(found: dict[str, dict[str, Any]], *, tables: bool, as_json: bool) -> None:
    if as_json:
        print(json.dumps(found, indent=2, sort_keys=True))
        return
    width = max((len(n) for n in found), default=10)
    for name, d in found.items():
        print(f"{name:<{width}}  {d['digest']}  {d['rows']:>12,} rows")
        if tables:
            for table, t in d["tables"].items():
                note = "  (cache: not in the read model's digest)" if t["cache"] else ""
                print(f"  {table:<{width + 14}}  {t['digest'][:16]}  {t['rows']:>12,} rows{note}")


def cmd_digest(args: argparse.Namespace, settings: Settings) -> int:
    projections = _chosen(replay_projections(settings), args.projection)
    if settings.mode == "scale":
        from infra.replay_scale import scale_digests

        found = scale_digests(settings, projections)
    else:
        found = embedded_digests(settings.data_dir, projections)
    print_digests(found, tables=args.tables, as_json=args.json)
    return 0


def _chosen(projections: Sequence[Projection], names: Sequence[str]) -> list[Projection]:
    if not names:
        return list(projections)
    known = {p.name for p in projections}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ReplayError(f"no projection named {', '.join(unknown)} (there are {', '.join(sorted(known))})")
    return [p for p in projections if p.name in names]


# -- replay --------------------------------------------------------------------------------


def print_report(report: dict[str, Any], digests: dict[str, dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"report": report, "digests": digests}, indent=2, sort_keys=True))
        return
    phases = ", ".join(f"{k} {v:.1f}s" for k, v in report["seconds"].items())
    helpers = f" (with {', '.join(report['helpers'])} rebuilt beside them)" if report["helpers"] else ""
    print(f"replayed {', '.join(report['projections'])}{helpers}")
    print(
        f"  {report['events']:,} events, {report['rows']:,} rows loaded, {report['events_per_second']:,.0f} events/s "
        f"({phases}); switched to build {report['build_id']} at log position {report['position']:,}"
    )
    print_digests(digests, tables=False, as_json=False)


def replay_offline(
    settings: Settings, names: Sequence[str], grace_seconds: float, engine: Engine = "memory"
) -> ReplayReport:
    """The replay in this process; the caller holds the data dir exclusively."""
    data_dir = settings.data_dir
    log = SqliteEventLog(data_dir / "events.db", embedded_codec(data_dir))
    conn = connect(data_dir / "readmodels.db")
    try:
        store = SqliteReadModel(conn, all_tables())
        generations.ensure_schema(conn)
        generations.abandon_unfinished(conn)
        generations.drop_due(conn)
        projections = replay_projections(settings)
        generations.activate(store, projections)
        store.create_schema()
        line = ProgressLine()
        try:
            steps = blue_green(
                log,
                store,
                plan(projections, names),
                settle=log.head,
                grace_seconds=grace_seconds,
                progress=line,
                engine=engine,
            )
            report: ReplayReport = run(steps)
        finally:
            line.close()
        return report
    finally:
        conn.close()
        log.close()


def replay_through_server(
    data_dir: Path, names: Sequence[str], grace_seconds: float, engine: Engine = "memory"
) -> dict[str, Any]:
    """Ask the process serving `data_dir` to replay, and follow it until it is done."""
    request = request_replay(data_dir, names, grace_seconds, engine)
    print(f"a server has {data_dir} open: asked it to replay (request {request.request_id})", file=sys.stderr)
    line = ProgressLine()
    asked = time.monotonic()
    try:
        while True:
            status = read_status(data_dir, request.request_id) or {}
            state = status.get("state")
            if status.get("progress"):
                line(Progress.from_dict(status["progress"]))
            if state == "done":
                report: dict[str, Any] = status["report"]
                seconds = sum(report["seconds"].values())
                line(Progress("done", report["events"], report["events"], "events", seconds, seconds))
                return report
            if state == "failed":
                raise ReplayError(f"the server's replay failed: {status.get('error')}")
            if not in_use(data_dir):
                raise ReplayError("the server stopped before the replay finished (nothing was switched)")
            if state == "requested" and time.monotonic() - asked > PICKUP_SECONDS:
                raise ReplayError(
                    f"no server picked the request up within {PICKUP_SECONDS:.0f}s; is `glimpse serve` running "
                    f"on {data_dir}?"
                )
            time.sleep(0.1)
    finally:
        line.close()


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    if settings.mode == "scale":
        from infra.replay_scale import replay_scale

        return replay_scale(
            settings,
            args.projection,
            as_json=args.json,
            keep=args.keep,
            switch=args.switch,
            grace_seconds=args.grace_seconds,
        )
    projections = replay_projections(settings)
    plan(projections, args.projection)  # unknown names fail before anything starts
    data_dir = settings.data_dir
    if not (data_dir / "events.db").exists():
        raise ReplayError(f"no event log in {data_dir}")
    alone = try_exclusive(data_dir)
    if alone is None:
        report = replay_through_server(data_dir, args.projection, args.grace_seconds, args.engine)
    else:
        try:
            report = replay_offline(settings, args.projection, args.grace_seconds, args.engine).as_dict()
        finally:
            alone.release()
    digests = embedded_digests(data_dir, _chosen(projections, report["projections"]))
    print_report(report, digests, as_json=args.json)
    return 0


def main(command: str, args: argparse.Namespace, settings: Settings) -> int:
    try:
        return cmd_replay(args, settings) if command == "replay" else cmd_digest(args, settings)
    except ReplayError as exc:
        print(f"glimpse {command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
