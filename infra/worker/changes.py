"""What a batch overlay hands to a read-model backend: bulk reads and the net effect of a batch.

Two small vocabularies shared by `infra.worker.overlay.BatchOverlay` and the adapters
that can serve it in bulk (`CassandraReadModel.read_bulk` / `write_changes`); any
other `ReadModelWriter` is served by the generic fallbacks below, one call at a time.

Reads (hashable tuples, so that they can be memoized and deduplicated):
    ("get", table, key)                                   -> Row | None
    ("scan", table, prefix, before, after, desc, limit)   -> list[Row]
    ("count", table, prefix)                              -> int
    ("find", table, where, limit)                         -> list[Row]
where `key`/`prefix` are the values of the table's leading key columns, in key order,
and `where` is a tuple of (column, value) pairs.

Changes: the state a batch leaves behind, not the operations that led there. Applying
them is idempotent (every write is the final value of a row or column, or a delete),
which is what makes a batch that died half-way safe to apply again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from projections.store import Delete, Key, Patch, Put, ReadModel, ReadModelWriter, Row, Table

ReadRequest = tuple[Any, ...]
# What the recounts of a flush did, per (counter table, key, column): the size written,
# or None where the cell was left alone (an empty set and a counter that was never set).
Recounted = dict[tuple[str, tuple[Any, ...], str], int | None]


@dataclass(frozen=True)
class RowWrite:
    """The final state of one row: deleted (`row` None), written whole (`columns` None),
    or some value columns set (`columns`), after deleting the old row if `cleared`."""

    table: str
    key: tuple[Any, ...]
    row: Row | None
    columns: tuple[str, ...] | None = None
    cleared: bool = False


@dataclass(frozen=True)
class Recount:
    """Set `column` of the counter row `key` of `table` to the size of `set_table`'s `partition`
    (a count of zero leaves an unset counter unset, as the SQLite adapter would)."""

    table: str
    key: tuple[Any, ...]
    column: str
    set_table: str
    partition: tuple[Any, ...]


@dataclass
class BatchChanges:
    deletes: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)  # prefixes shorter than the key
    rows: list[RowWrite] = field(default_factory=list)  # after the deletes
    recounts: list[Recount] = field(default_factory=list)  # after the rows
    # Write timestamps (deletes, then rows), fixed once the changes are journaled so that
    # writing them again gives the same cells; None: the writer takes fresh ones.
    early: int | None = None
    late: int | None = None

    def __bool__(self) -> bool:
        return bool(self.deletes or self.rows or self.recounts)


def encode_changes(changes: BatchChanges) -> bytes:
    return orjson.dumps(
        {
            "deletes": changes.deletes,
            "rows": [[w.table, w.key, w.row, w.columns, w.cleared] for w in changes.rows],
            "recounts": [[r.table, r.key, r.column, r.set_table, r.partition] for r in changes.recounts],
            "early": changes.early,
            "late": changes.late,
        }
    )


def decode_changes(body: bytes) -> BatchChanges:
    raw = orjson.loads(body)
    return BatchChanges(
        deletes=[(name, tuple(prefix)) for name, prefix in raw["deletes"]],
        rows=[
            RowWrite(table, tuple(key), row, None if columns is None else tuple(columns), cleared)
            for table, key, row, columns, cleared in raw["rows"]
        ],
        recounts=[
            Recount(table, tuple(key), column, set_table, tuple(partition))
            for table, key, column, set_table, partition in raw["recounts"]
        ],
        early=raw["early"],
        late=raw["late"],
    )


class FlushJournal(Protocol):
    """Where a batch's changes are recorded before they are written.

    A worker that dies while writing a batch's changes leaves some written and some
    not; projections that decide on what they read (is the edge there yet?) would then
    see a state that never existed when the batch comes again. So the changes are
    journaled first, and whoever applies a batch of those partitions next writes any
    journaled changes that were not marked done before projecting anything: the state
    is then the batch's complete outcome, which redelivery is made for."""

    def record(self, group: str, changes: BatchChanges) -> None:
        """Durably record `changes` (fixing their timestamps) before they are written."""
        ...

    def done(self, group: str) -> None:
        """The last recorded changes are written (and the positions saved)."""
        ...

    def unfinished(self, group: str) -> list[tuple[str, BatchChanges]]:
        """Recorded changes of any writer in the group not marked done: (writer, changes)."""
        ...

    def finish(self, group: str, writer: str) -> None:
        """Mark another writer's unfinished changes done (they were written again)."""
        ...


class MemoryFlushJournal:
    """The journal in a dict (tests); `clock` gives the write timestamps."""

    def __init__(self, writer: str = "w", clock: Any = None) -> None:
        import itertools

        self.writer = writer
        self.entries: dict[tuple[str, str], tuple[bytes, bool]] = {}
        self._clock = clock or itertools.count(1).__next__

    def record(self, group: str, changes: BatchChanges) -> None:
        changes.early, changes.late = self._clock(), self._clock()
        self.entries[(group, self.writer)] = (encode_changes(changes), False)

    def done(self, group: str) -> None:
        found = self.entries.get((group, self.writer))
        if found is not None:
            self.entries[(group, self.writer)] = (found[0], True)

    def unfinished(self, group: str) -> list[tuple[str, BatchChanges]]:
        return [(w, decode_changes(body)) for (g, w), (body, done) in self.entries.items() if g == group and not done]

    def finish(self, group: str, writer: str) -> None:
        body, _ = self.entries[(group, writer)]
        self.entries[(group, writer)] = (body, True)


class BulkReadModel(ReadModelWriter, Protocol):
    """A backend that serves many reads at once and writes a batch's changes itself."""

    def read_bulk(self, requests: Sequence[ReadRequest]) -> list[Any]: ...

    def write_changes(self, changes: BatchChanges) -> Recounted: ...


def as_key(table: Table, values: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(table.key, values, strict=False))


def read_one(read: ReadModel, tables: dict[str, Table], request: ReadRequest) -> Any:
    """Serve one request through the plain `ReadModel` port."""
    kind, name = request[0], request[1]
    t = tables[name]
    if kind == "get":
        return read.get(name, as_key(t, request[2]))
    if kind == "scan":
        _, _, prefix, before, after, desc, limit = request
        return read.scan(name, as_key(t, prefix), before=before, after=after, desc=desc, limit=limit)
    if kind == "count":
        return read.count(name, as_key(t, request[2]))
    if kind == "find":
        return read.find(name, dict(request[2]), request[3])
    raise ValueError(f"unknown read request {request!r}")


def apply_changes(write: ReadModelWriter, tables: dict[str, Table], changes: BatchChanges) -> Recounted:
    """Apply `changes` through the plain `ReadModelWriter` port (tests, SQLite, memory)."""
    recounted: Recounted = {}
    for name, prefix in changes.deletes:
        write.apply([Delete(name, as_key(tables[name], prefix))])
    for w in changes.rows:
        t = tables[w.table]
        key: Key = as_key(t, w.key)
        if w.row is None:
            write.apply([Delete(w.table, key)])
        elif w.columns is None:
            write.apply([Put(w.table, w.row)])
        else:
            values = {c: w.row[c] for c in w.columns}
            current = None if w.cleared else write.get(w.table, key)
            if current is None:
                write.apply([Put(w.table, {**key, **values})])
            elif values:
                write.apply([Patch(w.table, key, values)])
    for r in changes.recounts:
        ct, st = tables[r.table], tables[r.set_table]
        size = write.count(r.set_table, dict(zip(st.partition, r.partition, strict=True)))
        key = as_key(ct, r.key)
        current = write.get(r.table, key)
        if size == 0 and (current is None or current[r.column] is None):
            recounted[(r.table, r.key, r.column)] = None
            continue
        recounted[(r.table, r.key, r.column)] = size
        if current is None:
            write.apply([Put(r.table, {**key, r.column: size})])
        else:
            write.apply([Patch(r.table, key, {r.column: size})])
    return recounted
