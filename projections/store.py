"""The read-model vocabulary shared by projections, queries and storage adapters.

Read models are wide-column tables in the Cassandra sense: a partition key,
ordered clustering columns and values. That shape maps one-to-one onto SQLite
tables with a primary key, onto Cassandra tables, and onto dicts in memory,
so a projection written against it runs unchanged on every backend.

Operations are idempotent under redelivery where they can be (Put, Delete,
SetAdd and SetRemove with their counters); `Increment` is not, and is only for
adapters that apply an event's operations in the same transaction as the
projection's position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Row = dict[str, Any]
Key = Mapping[str, Any]

# Column types a table may declare; lists and dicts are stored as JSON.
ColumnType = type[int] | type[str] | type[bool] | type[float] | type[list[Any]] | type[dict[str, Any]]


@dataclass(frozen=True)
class Table:
    name: str
    partition: tuple[str, ...]
    clustering: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    types: Mapping[str, ColumnType] = field(default_factory=dict)
    indexes: tuple[tuple[str, ...], ...] = ()  # secondary lookups a backend should make cheap

    @property
    def key(self) -> tuple[str, ...]:
        return self.partition + self.clustering

    @property
    def columns(self) -> tuple[str, ...]:
        return self.key + self.values

    def type_of(self, column: str) -> ColumnType:
        return self.types.get(column, int)


@dataclass(frozen=True)
class CounterRef:
    """A counter cell: `column` of the row at `key` in `table`."""

    table: str
    key: Key
    column: str


@dataclass(frozen=True)
class Put:
    """Insert or replace the whole row."""

    table: str
    row: Row


@dataclass(frozen=True)
class Patch:
    """Set some values of an existing row; does nothing if the row is absent."""

    table: str
    key: Key
    values: Row


@dataclass(frozen=True)
class Delete:
    """Delete the rows whose key starts with `key` (a full key or a prefix of it)."""

    table: str
    key: Key


@dataclass(frozen=True)
class SetAdd:
    """Insert the row if its key is absent; if it was inserted, bump each counter by one."""

    table: str
    row: Row
    counters: tuple[CounterRef, ...] = ()


@dataclass(frozen=True)
class SetRemove:
    """Delete the row at `key` if present; if it was there, lower each counter by one."""

    table: str
    key: Key
    counters: tuple[CounterRef, ...] = ()


@dataclass(frozen=True)
class Increment:
    table: str
    key: Key
    column: str
    delta: int


Op = Put | Patch | Delete | SetAdd | SetRemove | Increment


class ReadModel(Protocol):
    """Read access to read-model tables, for projections and queries."""

    def get(self, table: str, key: Key) -> Row | None: ...

    def get_many(self, table: str, keys: Sequence[Key]) -> list[Row]:
        """Rows that exist, in the order of `keys`."""
        ...

    def scan(
        self,
        table: str,
        prefix: Key,
        *,
        before: Any = None,
        after: Any = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[Row]:
        """Rows whose key starts with `prefix`, ordered by the next clustering column.

        `before`/`after` bound that column exclusively (cursor paging).
        """
        ...

    def count(self, table: str, prefix: Key) -> int: ...

    def find(self, table: str, where: Key, limit: int | None = None) -> list[Row]:
        """Rows matching equality on non-key columns; backed by a declared index."""
        ...


@dataclass(frozen=True)
class Scan:
    """One `ReadModel.scan` as a value, for `scan_each`."""

    table: str
    prefix: Key
    before: Any = None
    after: Any = None
    desc: bool = False
    limit: int | None = None


def scan_each(read: ReadModel, scans: Sequence[Scan]) -> list[list[Row]]:
    """Each scan's rows, in order.

    A read model over a remote store may offer `scan_many(scans)`, which sends them all
    before waiting for any (a merge of many timelines is then one round trip, not one
    per timeline); any other read model answers them one by one.
    """
    many = getattr(read, "scan_many", None)
    if many is not None:
        rows: list[list[Row]] = many(scans)
        return rows
    return [read.scan(s.table, s.prefix, before=s.before, after=s.after, desc=s.desc, limit=s.limit) for s in scans]


@dataclass(frozen=True)
class Gets:
    """One `ReadModel.get_many` as a value, for `get_each`."""

    table: str
    keys: Sequence[Key]


def get_each(read: ReadModel, gets: Sequence[Gets]) -> list[list[Row]]:
    """Each `get_many`'s rows, in order.

    As with `scan_each`: a read model over a remote store may offer `get_many_each(gets)`,
    which reads every table's keys in one round trip (a page's posts, authors, blocks,
    counts and media together); any other answers them one by one.
    """
    many = getattr(read, "get_many_each", None)
    if many is not None:
        rows: list[list[Row]] = many(gets)
        return rows
    return [read.get_many(g.table, g.keys) for g in gets]


class ReadModelWriter(ReadModel, Protocol):
    def apply(self, ops: Sequence[Op]) -> None: ...
