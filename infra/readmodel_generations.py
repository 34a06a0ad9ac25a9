"""Which SQLite tables hold each projection's read model: blue/green generations.

A projection's tables start as `rm_<table>` (the legacy generation). A replay builds
generation N of some projections beside them, as `rm<N>_<table>`, and the switch
makes N the active generation of those projections. Three bookkeeping tables live
in the read-model database itself, so a switch commits in the same transaction as
the projections' positions:

- `readmodel_generations(projection, version, prefix, build_id, switched_at)`: the
  active generation of every projection that was ever switched; the others use the
  legacy prefix. Every process opening the read models routes its tables from it
  (`activate`), so a restart reads what the switch chose.
- `readmodel_builds(build_id, prefix, projections, helpers, tables, state, position, ...)`:
  each rebuild, from `building` to `switched`, `failed` or `abandoned`. A build still
  `building` when a process opens the data dir alone belongs to a replay that died:
  its tables are dropped.
- `readmodel_retired(physical, drop_after, reason)`: tables no reader uses any more,
  dropped once their grace period is over (`drop_due`). The old generation of a
  switched projection waits for the grace period (to compare with, or to look at);
  the helper tables of a build (projections rebuilt only because a switched one reads
  them while projecting) go at once.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from infra.projector import POSITIONS_SCHEMA
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.projection import Projection

LEGACY_PREFIX = "rm_"

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS readmodel_generations ("
    "projection TEXT PRIMARY KEY, version INTEGER NOT NULL, prefix TEXT NOT NULL, "
    "build_id INTEGER, switched_at REAL)",
    "CREATE TABLE IF NOT EXISTS readmodel_builds ("
    "build_id INTEGER PRIMARY KEY AUTOINCREMENT, prefix TEXT NOT NULL, projections TEXT NOT NULL, "
    "helpers TEXT NOT NULL, tables TEXT NOT NULL, state TEXT NOT NULL, position INTEGER NOT NULL DEFAULT 0, "
    "started_at REAL NOT NULL, finished_at REAL)",
    "CREATE TABLE IF NOT EXISTS readmodel_retired (physical TEXT PRIMARY KEY, drop_after REAL NOT NULL, reason TEXT)",
    POSITIONS_SCHEMA,
)


@dataclass(frozen=True)
class Build:
    build_id: int
    prefix: str
    switch: tuple[str, ...]  # projections this build replaces
    helpers: tuple[str, ...]  # projections rebuilt only to be read while projecting
    tables: tuple[str, ...]  # logical names of every table it builds

    def physical(self, table: str) -> str:
        return self.prefix + table

    def routes(self) -> dict[str, str]:
        return {t: self.physical(t) for t in self.tables}


def ensure_schema(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        conn.execute(statement)


def active(conn: sqlite3.Connection) -> dict[str, tuple[str, int]]:
    """projection -> (prefix, version) of its active generation, for switched projections."""
    ensure_schema(conn)
    rows = conn.execute("SELECT projection, prefix, version FROM readmodel_generations").fetchall()
    return {str(name): (str(prefix), int(version)) for name, prefix, version in rows}


def activate(store: SqliteReadModel, projections: Sequence[Projection]) -> None:
    """Route the store's tables to the active generation of their projection."""
    chosen = active(store.conn)
    routes: dict[str, str] = {}
    for p in projections:
        prefix, _ = chosen.get(p.name, (LEGACY_PREFIX, p.version))
        routes.update({t.name: prefix + t.name for t in p.tables})
    store.route(routes)


def stored_versions(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """projection -> (version, position) as the projector last committed them."""
    ensure_schema(conn)
    rows = conn.execute("SELECT name, version, position FROM projection_positions").fetchall()
    return {str(n): (int(v or 0), int(p or 0)) for n, v, p in rows}


def in_transaction(conn: sqlite3.Connection, work: Callable[[], object]) -> None:
    """`work` in one immediate transaction: all of it or, if it raises, none of it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        work()
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def begin(conn: sqlite3.Connection, switch: Sequence[Projection], helpers: Sequence[Projection]) -> Build:
    ensure_schema(conn)
    tables = tuple(t.name for p in (*switch, *helpers) for t in p.tables)
    holder: list[int] = []

    def work() -> None:
        cur = conn.execute(
            "INSERT INTO readmodel_builds (prefix, projections, helpers, tables, state, started_at) "
            "VALUES ('', ?, ?, ?, 'building', ?)",
            (
                json.dumps([p.name for p in switch]),
                json.dumps([p.name for p in helpers]),
                json.dumps(tables),
                time.time(),
            ),
        )
        build_id = int(cur.lastrowid or 0)
        conn.execute("UPDATE readmodel_builds SET prefix = ? WHERE build_id = ?", (f"rm{build_id}_", build_id))
        holder.append(build_id)

    in_transaction(conn, work)
    build_id = holder[0]
    return Build(build_id, f"rm{build_id}_", tuple(p.name for p in switch), tuple(p.name for p in helpers), tables)


def record_position(conn: sqlite3.Connection, build: Build, position: int) -> None:
    """Within the caller's transaction."""
    conn.execute("UPDATE readmodel_builds SET position = ? WHERE build_id = ?", (position, build.build_id))


def _drop(conn: sqlite3.Connection, physical: str) -> None:
    if not physical.replace("_", "").isalnum():
        raise ValueError(f"not a read-model table name: {physical!r}")
    conn.execute(f"DROP TABLE IF EXISTS {physical}")


def abandon(conn: sqlite3.Connection, build: Build, state: str = "failed") -> None:
    """Drop everything a build wrote and record how it ended."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")

    def work() -> None:
        for table in build.tables:
            _drop(conn, build.physical(table))
        conn.execute(
            "UPDATE readmodel_builds SET state = ?, finished_at = ? WHERE build_id = ?",
            (state, time.time(), build.build_id),
        )

    in_transaction(conn, work)


def abandon_unfinished(conn: sqlite3.Connection) -> list[int]:
    """Builds left `building` by a replay that died; only call while no replay can be running."""
    ensure_schema(conn)
    rows = conn.execute(
        "SELECT build_id, prefix, projections, helpers, tables FROM readmodel_builds WHERE state = 'building'"
    ).fetchall()
    for build_id, prefix, switched, helpers, tables in rows:
        build = Build(
            int(build_id),
            str(prefix),
            tuple(json.loads(switched)),
            tuple(json.loads(helpers)),
            tuple(json.loads(tables)),
        )
        abandon(conn, build, "abandoned")
    return [int(r[0]) for r in rows]


def switch(
    store: SqliteReadModel,
    build: Build,
    switched: Sequence[Projection],
    helpers: Sequence[Projection],
    position: int,
    grace_seconds: float,
) -> None:
    """Make the build the active generation of `switched`, at `position` of the log.

    One transaction records the generations, the projections' positions and versions,
    and what to drop when; then the store routes its tables to the new ones. The caller
    has brought the build to `position` and holds every writer off until this returns."""
    conn = store.conn
    now = time.time()

    def work() -> None:
        for p in switched:
            conn.execute(
                "INSERT INTO readmodel_generations (projection, version, prefix, build_id, switched_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (projection) DO UPDATE SET version = excluded.version, "
                "prefix = excluded.prefix, build_id = excluded.build_id, switched_at = excluded.switched_at",
                (p.name, p.version, build.prefix, build.build_id, now),
            )
            conn.execute(
                "INSERT INTO projection_positions (name, version, position) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET version = excluded.version, position = excluded.position",
                (p.name, p.version, position),
            )
            for t in p.tables:
                old = store.physical(t.name)
                if old != build.physical(t.name):
                    conn.execute(
                        "INSERT OR REPLACE INTO readmodel_retired (physical, drop_after, reason) VALUES (?, ?, ?)",
                        (old, now + grace_seconds, f"replaced by build {build.build_id}"),
                    )
        for p in helpers:
            for t in p.tables:
                conn.execute(
                    "INSERT OR REPLACE INTO readmodel_retired (physical, drop_after, reason) VALUES (?, ?, ?)",
                    (build.physical(t.name), now, f"helper of build {build.build_id}"),
                )
        record_position(conn, build, position)
        conn.execute(
            "UPDATE readmodel_builds SET state = 'switched', finished_at = ? WHERE build_id = ?",
            (now, build.build_id),
        )

    in_transaction(conn, work)
    store.route({t.name: build.physical(t.name) for p in switched for t in p.tables})


def drop_due(conn: sqlite3.Connection, now: float | None = None) -> list[str]:
    """Drop the retired tables whose grace period is over; returns their names."""
    ensure_schema(conn)
    at = time.time() if now is None else now
    due = [str(r[0]) for r in conn.execute("SELECT physical FROM readmodel_retired WHERE drop_after <= ?", (at,))]
    if due:

        def work() -> None:
            for physical in due:
                _drop(conn, physical)
                conn.execute("DELETE FROM readmodel_retired WHERE physical = ?", (physical,))

        in_transaction(conn, work)
    return due


def retired(conn: sqlite3.Connection) -> list[tuple[str, float]]:
    ensure_schema(conn)
    return [(str(p), float(t)) for p, t in conn.execute("SELECT physical, drop_after FROM readmodel_retired")]
