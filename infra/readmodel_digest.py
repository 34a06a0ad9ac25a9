"""Digests of read models: one stable hash of each table's content, and of each projection's.

A table's digest is a multiset hash: every row is serialized canonically (all of the
table's columns by logical name, sorted keys, JSON), hashed with SHA-256, and the
row hashes are added modulo 2**256; the digest is the SHA-256 of the row count and
that sum. So it depends on the rows only, not on the order they were written or are
read in, not on the physical table (SQLite prefix, Cassandra keyspace, generation),
and not on the backend: SQLite, Cassandra and the in-memory replay store hand back
the same values for the same content.

Counter tables (`COUNTER_TABLES`: rows that only hold counts moved by SetAdd/SetRemove)
read a missing row as zero everywhere, and whether a count that went back to zero left
a row behind depends on the history (an event ignored because a deletion overtook it
never creates one; the same event applied before the deletion leaves a zero). So a
counter row whose counts are all zero or unset digests as if it were absent, and a
zero count as an unset one.

A projection's digest combines its tables' digests (by logical name). Tables that are
caches of operational state rather than functions of the log (`CACHE_TABLES`: the
hybrid home feed's per-user feeds depend on who was reading when, and the read path
writes them back) are left out of the projection digest and of `digests()`, since a
replay may legitimately rebuild them differently; `table_digests(..., caches=True)`
still reports them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson

from infra.storage.codec import from_db
from infra.storage.indexed_memory_readmodel import IndexedMemoryReadModel
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.engagement.tables import ENGAGEMENT_COUNTS
from projections.feed.tables import ACTIVITY_DEPENDENT
from projections.graph import GRAPH_COUNTS
from projections.posts import USER_POST_COUNTS
from projections.projection import Projection
from projections.store import ReadModel, Row, Table

CACHE_TABLES: frozenset[str] = frozenset(ACTIVITY_DEPENDENT)
COUNTER_TABLES: frozenset[str] = frozenset({GRAPH_COUNTS.name, ENGAGEMENT_COUNTS.name, USER_POST_COUNTS.name})
_MOD = 1 << 256


def row_hash(table: Table, row: Row) -> int:
    canonical = orjson.dumps({c: row.get(c) for c in table.columns}, option=orjson.OPT_SORT_KEYS)
    return int.from_bytes(hashlib.sha256(canonical).digest(), "big")


def rows_digest(table: Table, rows: Iterable[Row]) -> tuple[str, int]:
    """(digest, row count) of a table's rows, in any order."""
    total = count = 0
    counters = table.values if table.name in COUNTER_TABLES else ()
    for row in rows:
        if counters:
            if not any(row.get(c) for c in counters):
                continue  # all zero: the same as no row
            row = {**row, **{c: None for c in counters if not row.get(c)}}  # a zero count is an unset one
        total += row_hash(table, row)
        count += 1
    return hashlib.sha256(b"%d:%064x" % (count, total % _MOD)).hexdigest(), count


def table_rows(store: Any, table: Table) -> Iterator[Row]:
    """Every row of a table, in no particular order, by the cheapest way the store offers."""
    if isinstance(store, IndexedMemoryReadModel):
        yield from store.rows(table.name)
    elif isinstance(store, SqliteReadModel):
        columns = table.columns
        cursor = store.conn.execute(f"SELECT {', '.join(columns)} FROM {store.physical(table.name)}")
        for values in cursor:
            yield {c: from_db(table, c, v) for c, v in zip(columns, values, strict=True)}
    else:
        yield from store.scan(table.name, {})


def _tables_of(store: Any, tables: Sequence[Table] | None) -> list[Table]:
    found: list[Table] = list(tables) if tables is not None else list(store.tables())
    return sorted(found, key=lambda t: t.name)


def table_digests(
    store: ReadModel, tables: Sequence[Table] | None = None, *, caches: bool = False
) -> dict[str, tuple[str, int]]:
    """(digest, row count) per logical table name; cache tables only if `caches`."""
    return {
        t.name: rows_digest(t, table_rows(store, t))
        for t in _tables_of(store, tables)
        if caches or t.name not in CACHE_TABLES
    }


def digests(store: ReadModel, tables: Sequence[Table] | None = None) -> dict[str, str]:
    """One digest per table (cache tables left out): equal content, equal digests."""
    return {name: digest for name, (digest, _) in table_digests(store, tables).items()}


def combine(per_table: dict[str, str]) -> str:
    lines = "".join(f"{name}={digest}\n" for name, digest in sorted(per_table.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def projection_digests(store: ReadModel, projections: Sequence[Projection]) -> dict[str, str]:
    """One digest per projection, over its tables that are functions of the log."""
    return {p.name: combine(digests(store, p.tables)) for p in projections}
