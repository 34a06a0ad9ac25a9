"""Read-model tables in Cassandra: `projections.store.ReadModelWriter` over one session.

Behaves exactly like the SQLite adapter (the read-model contract and a differential
test against it hold it to that), with these Cassandra-shaped choices:

Writes and their order
    `apply` turns each operation into a short plan of statements (most are one
    statement) and runs the plans concurrently with async requests. Operations that
    touch the same partition (of the table they write, or of a counter they maintain)
    keep their order. Every write carries a client timestamp taken when it is sent
    (the session must use client timestamps; the adapter checks), so a later write to
    a row wins over an earlier one wherever it lands: a blind write (Put, Delete,
    SetRemove without counters) therefore only waits until the blind writes before
    it on its partition have been sent, while an operation that reads (Patch, SetAdd,
    a recount, Increment) waits until everything before it on its partitions has
    finished, and so does any write after it. A delete by a prefix shorter than the
    partition key touches the whole table and orders against everything on it.
    Rows are read by position: the session's row factory must give tuples (the
    driver's default named tuples, or `tuple_factory` as `session.connect` sets).

Insert-if-absent and update-if-present without Paxos
    `SetAdd` and `Patch` read the row, then write only if it was absent (SetAdd) or
    present (Patch). The write carries the timestamp taken *before* the read, so a
    delete by anyone that lands after our read shadows our write instead of being
    resurrected by it. Lightweight transactions would make the check atomic at four
    round trips each; two writers racing to insert the same set member with
    different values are already ruled out upstream (reservations), and a
    redelivered event writes the same values.

Counters: recounted, never incremented
    Delivery is at least once and a worker can die between a set change and its
    counter change, so "bump by one if the set changed" cannot be made exact, and
    Cassandra `counter` columns are not idempotent either. Every `CounterRef` of a
    `SetAdd`/`SetRemove` must therefore name the size of the set's partition (the
    counter row's key equals the set row's partition key, and one counter column is
    fed by one set table only; anything else raises `CounterShapeError` before any
    write). After the set change the adapter counts the partition (`COUNT(*)`) and
    writes the number as a plain bigint `USING TIMESTAMP t`, t taken just before the
    count: whoever counted last wins, so a stale recount racing a newer one can never
    overwrite it, and a redelivered or replayed operation simply recounts. As in the
    SQLite adapter, where only a removal that really happened moves a counter, a count
    of zero leaves a counter that is unset (or whose row is gone) unset: a late remove
    after the owner's rows were deleted must not resurrect a half row.
    Within one `apply`, consecutive set changes that feed the same counter recount
    once, after the last of them. Across processes "last" is by wall clock: writers
    on different machines need synchronized clocks (NTP), as Cassandra itself does.

    Cost: a recount reads the whole partition, O(set size) per change. That is fine
    for likes, followers, story viewers and post counts at demo scale (thousands per
    partition). For celebrity-sized sets the path is sharded counting: the set
    partition split into N buckets (key + bucket), each bucket's count recounted the
    same way into its own cell, and the reader summing N cells.

`Increment` is a read-modify-write and is NOT idempotent: a redelivered event adds
twice. It exists for the contract and for callers that apply an event and its
position atomically (the SQLite projector); no projection uses it, and projections
that run on Cassandra must not (test_no_projection_uses_increment checks it).

Bulk (the projection worker's batch overlay, infra/worker/overlay.py)
    `read_bulk` serves many reads in one concurrent round: point reads as IN queries
    (by partition key, or IN on every key column over small boxes of keys), the rest
    one statement each. `write_changes` writes a batch's net effect: prefix deletes at
    one timestamp and final rows at a later one, all at once, packed into unlogged
    batches (one per partition, small partitions together within the server's warning
    thresholds), then every counter it names recounted as above, with the counts
    grouped by partition (IN ... GROUP BY).

Reads
    `get`/`get_many` by full key (get_many runs its reads concurrently); `scan` by any
    key prefix: prefixes that cover the partition key are one ordered partition or
    range read, shorter prefixes (admin and replay tools: `count(table, {})`) read the
    table or its partition index and sort client-side, like SQLite would order them.
    `find` is served by SAI indexes and raises `MissingIndex` for a column that has none
    rather than fall back to ALLOW FILTERING.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from cassandra import ConsistencyLevel
from cassandra.cluster import ResponseFuture, Session
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from infra.cassandra.session import check_name
from infra.cassandra.tables import ddl, from_cql, indexed_columns, q, to_cql
from infra.worker.changes import BatchChanges, ReadRequest, Recounted
from infra.worker.changes import Recount as BatchRecount
from projections.store import (
    CounterRef,
    Delete,
    Gets,
    Increment,
    Key,
    Op,
    Patch,
    Put,
    Row,
    Scan,
    SetAdd,
    SetRemove,
    Table,
)

MAX_IN_FLIGHT = 128  # concurrent requests per apply/get_many; the driver multiplexes them
MAX_IN_KEYS = 100  # keys per IN query of a bulk read
MAX_BATCH_STATEMENTS = 50  # statements per single-partition unlogged batch of a flush
# A batch across partitions stays under the server's default warning thresholds
# (unlogged_batch_across_partitions_warn_threshold 10, batch_size_warn_threshold 5 KiB):
BATCH_PARTITIONS = 10
BATCH_BYTES = 3000  # estimated from the values (`_weight`), with room for cell overhead


MAX_BOX_COMBINATIONS = 100  # key combinations one IN-on-every-column read may look up


def _boxes(keys: Sequence[tuple[Any, ...]], width: int, limit: int) -> list[list[set[Any]]]:
    """Cut sorted keys into groups whose per-column value sets multiply to at most `limit`."""
    boxes: list[list[set[Any]]] = []
    current: list[set[Any]] = [set() for _ in range(width)]
    size = 0
    for key in keys:
        grown = 1
        for values, v in zip(current, key, strict=True):
            grown *= len(values) + (v not in values)
        if size and grown > limit:
            boxes.append(current)
            current = [set() for _ in range(width)]
            grown = 1
        for values, v in zip(current, key, strict=True):
            values.add(v)
        size = grown
    if size:
        boxes.append(current)
    return boxes


def _weight(params: tuple[Any, ...]) -> int:
    """A rough size of a statement's mutation, in bytes."""
    return sum(len(v) if isinstance(v, str | bytes) else 8 for v in params if v is not None) + 8 * len(params)


class UnknownTable(KeyError):
    pass


class MissingIndex(ValueError):
    """`find` was asked for columns that no SAI index serves."""


class CounterShapeError(ValueError):
    """A CounterRef that is not the size of its set's partition: it cannot be recounted."""


@dataclass(frozen=True)
class _Stmt:
    statement: PreparedStatement | BatchStatement
    params: tuple[Any, ...] | None


@dataclass(frozen=True)
class _Job:
    """One statement of a bulk read, and what to do with its rows."""

    statement: PreparedStatement
    params: list[Any]
    done: Callable[[list[Any]], None]


# An operation's plan: yields statements, receives each one's rows.
_Plan = Generator[_Stmt, list[Any], None]
_Resource = tuple[str, tuple[Any, ...] | None]  # (table, partition values); None = the whole table


@dataclass(frozen=True)
class _Deps:
    started: frozenset[int]  # ops that must have sent their (only) write
    finished: frozenset[int]  # ops that must be done


@dataclass(frozen=True)
class _Recount:
    """Set `column` of the row `key` of `table` to the size of `set_table`'s `partition`."""

    table: str
    key: tuple[Any, ...]  # the counter row's full key, in key order, as stored
    column: str
    set_table: str
    partition: tuple[Any, ...]
    resource: _Resource  # the counter row's partition


class _Codec:
    """One table's values to and from CQL, with the per-column type checks done once."""

    __slots__ = ("columns", "decode_special", "encode_special", "key_special", "nkey", "npart")

    def __init__(self, t: Table) -> None:
        self.columns = t.columns
        self.nkey = len(t.key)
        self.npart = len(t.partition)
        special = [(i, c) for i, c in enumerate(t.columns) if t.type_of(c) in (list, dict, bool, float)]
        self.decode_special = [(c, t.type_of(c)) for _, c in special if t.type_of(c) in (list, dict)]
        self.encode_special = [(i, c, t.type_of(c)) for i, c in special]
        self.key_special = [(i, c, t.type_of(c)) for i, c in special if i < self.nkey]

    @staticmethod
    def _encode(kind: type, value: Any) -> Any:
        if value is None:
            return None
        if kind is list or kind is dict:
            return orjson.dumps(value).decode()
        return kind(value)

    def decode(self, values: Sequence[Any]) -> Row:
        row = dict(zip(self.columns, values, strict=True))
        for c, _ in self.decode_special:
            if row[c] is not None:
                row[c] = orjson.loads(row[c])
        return row

    def encode(self, row: Row) -> list[Any]:
        out = [row.get(c) for c in self.columns]
        for i, _, kind in self.encode_special:
            out[i] = self._encode(kind, out[i])
        return out

    def key(self, values: Sequence[Any]) -> tuple[Any, ...]:
        if not self.key_special:
            return tuple(values)
        out = list(values)
        for i, _, kind in self.key_special:
            out[i] = self._encode(kind, out[i])
        return tuple(out)


class CassandraReadModel:
    def __init__(
        self,
        session: Session,
        keyspace: str,
        tables: Iterable[Table],
        prefix: str = "rm_",
        consistency: int = ConsistencyLevel.LOCAL_QUORUM,
    ) -> None:
        self._session = session
        self._consistency = consistency
        self._keyspace = check_name(keyspace)
        self._tables = {t.name: t for t in tables}
        self._prefix = prefix  # of the tables it was made for (route() may move them since)
        self._physical = {name: check_name(prefix + name) for name in self._tables}
        self._prepared: dict[tuple[Any, ...], PreparedStatement] = {}
        self._prepare_lock = threading.Lock()
        self._counter_sources: dict[tuple[str, str], str] = {}
        self._codecs = {name: _Codec(t) for name, t in self._tables.items()}
        if not session.use_client_timestamp:
            raise ValueError("CassandraReadModel orders writes by client timestamps; enable use_client_timestamp")
        self._timestamp: Callable[[], int] = session.cluster.timestamp_generator

    # -- schema -------------------------------------------------------------
    def create_schema(self) -> None:
        for statement in self.schema_statements():
            self._session.execute(statement)

    def schema_statements(self) -> list[str]:
        return [s for t in self._tables.values() for s in ddl(self._keyspace, t, self._physical[t.name])]

    def tables(self) -> list[Table]:
        return list(self._tables.values())

    # -- generations (blue/green, infra/cassandra/generations.py) -------------
    def physical(self, table: str) -> str:
        """The Cassandra table that holds logical `table` now."""
        return self._physical[self._table(table).name]

    def route(self, routes: Mapping[str, str]) -> None:
        """Read and write logical tables in other physical tables (a switched generation).

        Names of tables this model does not hold are ignored. Statements prepared for the old
        tables are forgotten under the prepare lock, so none is cached for the wrong table; a
        request already running finishes on the old table (kept for a grace period)."""
        chosen = {name: check_name(physical) for name, physical in routes.items() if name in self._tables}
        with self._prepare_lock:
            if all(self._physical[name] == physical for name, physical in chosen.items()):
                return
            self._physical = {**self._physical, **chosen}
            self._prepared = {}

    def _phys(self, name: str) -> str:
        return f"{self._keyspace}.{self._physical[name]}"

    def _table(self, name: str) -> Table:
        try:
            return self._tables[name]
        except KeyError:
            raise UnknownTable(name) from None

    def _prepare(self, shape: tuple[Any, ...], cql: Callable[[], str]) -> PreparedStatement:
        found = self._prepared.get(shape)
        if found is not None:
            return found
        with self._prepare_lock:
            found = self._prepared.get(shape)
            if found is None:
                found = self._session.prepare(cql())
                found.consistency_level = self._consistency
                self._prepared[shape] = found
            return found

    # -- keys ---------------------------------------------------------------
    @staticmethod
    def _prefix_columns(table: Table, key: Key) -> tuple[str, ...]:
        cols = table.key[: len(key)]
        if set(cols) != set(key):
            raise ValueError(f"{table.name}: {sorted(key)} is not a prefix of the key {table.key}")
        return cols

    def _full_key(self, table: Table, key: Key) -> tuple[Any, ...]:
        if set(key) != set(table.key) or any(key[c] is None for c in table.key):
            raise ValueError(f"{table.name}: {dict(key)} is not a full key {table.key}")
        return tuple(to_cql(table, c, key[c]) for c in table.key)

    @staticmethod
    def _covers_partition(table: Table, cols: Sequence[str]) -> bool:
        return len(cols) >= len(table.partition)

    @staticmethod
    def _row(table: Table, values: Sequence[Any], columns: Sequence[str]) -> Row:
        return {c: from_cql(table, c, v) for c, v in zip(columns, values, strict=True)}

    def _where(self, cols: Sequence[str]) -> str:
        return " AND ".join(f"{q(c)} = ?" for c in cols)

    def _select(self, table: Table, cols: Sequence[str], tail: str = "") -> str:
        where = f" WHERE {self._where(cols)}" if cols else ""
        return f"SELECT {', '.join(q(c) for c in table.columns)} FROM {self._phys(table.name)}{where}{tail}"

    # -- reads --------------------------------------------------------------
    def _get_statement(self, t: Table) -> PreparedStatement:
        return self._prepare(("get", t.name), lambda: self._select(t, t.key))

    def get(self, table: str, key: Key) -> Row | None:
        t = self._table(table)
        found = self._session.execute(self._get_statement(t), self._full_key(t, key)).one()
        return None if found is None else self._row(t, found, t.columns)

    def get_many(self, table: str, keys: Sequence[Key]) -> list[Row]:
        """The rows of these full keys that exist, in the keys' order: a few IN queries
        (see `_get_jobs`), not one request per key."""
        return self.get_many_each([Gets(table, keys)])[0]

    def get_many_each(self, gets: Sequence[Gets]) -> list[list[Row]]:
        """`get_many` of every table at once: all their IN queries go out together."""
        requests: list[ReadRequest] = []
        for g in gets:
            t = self._table(g.table)
            for k in g.keys:
                self._check_full_key(t, k)
            requests += [("get", t.name, tuple(k[c] for c in t.key)) for k in g.keys]
        found = iter(self.read_bulk(requests))
        given: set[int] = set()
        out: list[list[Row]] = []
        for g in gets:
            rows: list[Row] = []
            for row in itertools.islice(found, len(g.keys)):
                if row is not None:
                    # A key asked twice shares one decoded row: each caller gets its own dict.
                    rows.append(row if id(row) not in given else dict(row))
                    given.add(id(row))
            out.append(rows)
        return out

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
        t = self._table(table)
        cols = self._prefix_columns(t, prefix)
        if limit is not None and limit <= 0:
            return []
        if not self._covers_partition(t, cols):
            return self._scan_across_partitions(t, prefix, cols, before, after, desc, limit)
        statement, params = self._scan_query(t, cols, prefix, before, after, desc, limit)
        return [self._row(t, r, t.columns) for r in self._session.execute(statement, params)]

    def scan_many(self, scans: Sequence[Scan]) -> list[list[Row]]:
        """Several scans at once. Those alike but for their one-column partition (a merge of
        many timelines) go out as one `IN` query with PER PARTITION LIMIT, whose rows are
        handed back to each scan by partition; the rest as one statement each, all concurrently."""
        results: list[list[Row]] = [[] for _ in scans]
        alike: dict[tuple[Any, ...], list[int]] = {}
        single: list[int] = []
        for i, s in enumerate(scans):
            t = self._table(s.table)
            cols = self._prefix_columns(t, s.prefix)
            if len(t.partition) == 1 and len(cols) == 1 and t.clustering and s.limit is not None and s.limit > 0:
                alike.setdefault((t.name, s.before, s.after, s.desc, s.limit), []).append(i)
            else:
                single.append(i)
        jobs: list[_Job] = []
        for group, members in alike.items():
            if len(members) > 1:
                jobs += self._partitions_jobs(self._table(group[0]), [scans[i] for i in members], members, results)
            else:
                single += members
        for i in single:
            s, t = scans[i], self._table(scans[i].table)
            cols = self._prefix_columns(t, s.prefix)
            if (s.limit is not None and s.limit <= 0) or not self._covers_partition(t, cols):
                results[i] = self.scan(t.name, s.prefix, before=s.before, after=s.after, desc=s.desc, limit=s.limit)
                continue
            statement, params = self._scan_query(t, cols, s.prefix, s.before, s.after, s.desc, s.limit)
            jobs.append(_Job(statement, params, self._rows_into(results, i, t)))
        self._execute_all(jobs)
        return results

    def _partitions_jobs(
        self, t: Table, scans: Sequence[Scan], slots: Sequence[int], results: list[list[Row]]
    ) -> list[_Job]:
        """IN queries for scans of `t` that differ only in their partition (all else alike)."""
        first, column = scans[0], t.partition[0]
        rest = t.key[1:]
        has_before, has_after = first.before is not None, first.after is not None
        shape = ("scan_in", t.name, has_before, has_after, first.desc)

        def cql() -> str:
            where = [f"{q(column)} IN ?"]
            if has_before:
                where.append(f"{q(rest[0])} < ?")
            if has_after:
                where.append(f"{q(rest[0])} > ?")
            order = ", ".join(f"{q(c)} {'DESC' if first.desc else 'ASC'}" for c in t.clustering)
            return (
                f"SELECT {', '.join(q(c) for c in t.columns)} FROM {self._phys(t.name)} "
                f"WHERE {' AND '.join(where)} ORDER BY {order} PER PARTITION LIMIT ?"
            )

        # The server refuses ORDER BY with IN on the partition key when it pages: it cannot
        # page a merge. A merge asks for at most a page per partition, so one answer it is.
        statement = self._prepare(shape, cql)
        statement.fetch_size = None
        decode = self._codecs[t.name].decode
        by_partition: dict[Any, list[int]] = {}
        for slot, s in zip(slots, scans, strict=True):
            by_partition.setdefault(to_cql(t, column, s.prefix[column]), []).append(slot)

        def deliver(rows: list[Any]) -> None:
            index = t.columns.index(column)
            for r in rows:
                for slot in by_partition[r[index]]:
                    results[slot].append(decode(r))

        bounds = [to_cql(t, rest[0], b) for b in (first.before, first.after) if b is not None]
        partitions = list(by_partition)
        return [
            _Job(statement, [partitions[i : i + MAX_IN_KEYS], *bounds, int(first.limit or 0)], deliver)
            for i in range(0, len(partitions), MAX_IN_KEYS)
        ]

    def _scan_query(
        self,
        t: Table,
        cols: Sequence[str],
        prefix: Key,
        before: Any,
        after: Any,
        desc: bool,
        limit: int | None,
    ) -> tuple[PreparedStatement, list[Any]]:
        """The statement of a scan whose prefix covers the partition key."""
        rest = t.key[len(cols) :]
        bounded = bool(rest)
        has_before, has_after = bounded and before is not None, bounded and after is not None
        shape = ("scan", t.name, len(cols), has_before, has_after, desc, limit is not None)

        def cql() -> str:
            where = [f"{q(c)} = ?" for c in cols]
            if has_before:
                where.append(f"{q(rest[0])} < ?")
            if has_after:
                where.append(f"{q(rest[0])} > ?")
            # All clustering columns in one direction: always a valid ORDER BY, also when some are fixed.
            order = ""
            if t.clustering and rest:
                order = " ORDER BY " + ", ".join(f"{q(c)} {'DESC' if desc else 'ASC'}" for c in t.clustering)
            return (
                f"SELECT {', '.join(q(c) for c in t.columns)} FROM {self._phys(t.name)} "
                f"WHERE {' AND '.join(where)}{order}{' LIMIT ?' if limit is not None else ''}"
            )

        params = [to_cql(t, c, prefix[c]) for c in cols]
        if has_before:
            params.append(to_cql(t, rest[0], before))
        if has_after:
            params.append(to_cql(t, rest[0], after))
        if limit is not None:
            params.append(int(limit))
        return self._prepare(shape, cql), params

    def _rows_by_partial_partition(
        self, t: Table, prefix: Key, cols: Sequence[str], columns: Sequence[str]
    ) -> list[Any]:
        """Rows whose leading partition columns match: through the partition index, or all rows."""
        shape = ("partial", t.name, tuple(cols), tuple(columns))
        statement = self._prepare(
            shape,
            lambda: (
                f"SELECT {', '.join(q(c) for c in columns)} FROM {self._phys(t.name)}"
                + (f" WHERE {self._where(cols)}" if cols else "")
            ),
        )
        return list(self._session.execute(statement, [to_cql(t, c, prefix[c]) for c in cols]))

    def _scan_across_partitions(
        self,
        t: Table,
        prefix: Key,
        cols: Sequence[str],
        before: Any,
        after: Any,
        desc: bool,
        limit: int | None,
    ) -> list[Row]:
        rows = [self._row(t, r, t.columns) for r in self._rows_by_partial_partition(t, prefix, cols, t.columns)]
        rest = t.key[len(cols) :]
        if before is not None:
            rows = [r for r in rows if r[rest[0]] < before]
        if after is not None:
            rows = [r for r in rows if r[rest[0]] > after]
        rows.sort(key=lambda r: tuple(r[c] for c in rest), reverse=desc)
        return rows[:limit] if limit is not None else rows

    def count(self, table: str, prefix: Key) -> int:
        t = self._table(table)
        cols = self._prefix_columns(t, prefix)
        if cols and not self._covers_partition(t, cols):
            return len(self._rows_by_partial_partition(t, prefix, cols, t.partition))
        statement, params = self._count_query(t, cols, prefix)
        found = self._session.execute(statement, params).one()
        return int(found[0])

    def _count_query(self, t: Table, cols: Sequence[str], prefix: Key) -> tuple[PreparedStatement, list[Any]]:
        statement = self._prepare(
            ("count", t.name, len(cols)),
            lambda: f"SELECT COUNT(*) FROM {self._phys(t.name)}" + (f" WHERE {self._where(cols)}" if cols else ""),
        )
        return statement, [to_cql(t, c, prefix[c]) for c in cols]

    def find(self, table: str, where: Key, limit: int | None = None) -> list[Row]:
        t = self._table(table)
        if limit is not None and limit <= 0:
            return []
        statement, params = self._find_query(t, where, limit)
        return [self._row(t, r, t.columns) for r in self._session.execute(statement, params)]

    def _find_query(self, t: Table, where: Key, limit: int | None) -> tuple[PreparedStatement, list[Any]]:
        cols = tuple(where)
        indexed = set(indexed_columns(t))
        whole_partition = set(t.partition) <= set(cols)
        missing = [c for c in cols if c not in indexed and not (whole_partition and c in t.partition)]
        if missing:
            raise MissingIndex(
                f"{t.name}: no index serves find() by {missing}; declare it in Table.indexes "
                f"(indexed: {sorted(indexed)})"
            )
        shape = ("find", t.name, cols, limit is not None)
        statement = self._prepare(shape, lambda: self._select(t, cols, " LIMIT ?" if limit is not None else ""))
        params = [to_cql(t, c, where[c]) for c in cols]
        if limit is not None:
            params.append(int(limit))
        return statement, params

    # -- bulk (a batch overlay's reads and flush) -------------------------------
    def read_bulk(self, requests: Sequence[ReadRequest]) -> list[Any]:
        """Serve many reads at once (the request vocabulary of `infra.worker.changes`).

        Point reads of one table go out as `IN` queries (by partition key, or by the one
        clustering column within a partition), everything else as one statement each,
        all concurrently. Prefixes shorter than the partition key are read one by one
        (only admin tools ask for those)."""
        results: list[Any] = [None] * len(requests)
        jobs: list[_Job] = []
        gets: dict[str, dict[tuple[Any, ...], list[int]]] = {}
        for i, request in enumerate(requests):
            kind, t = request[0], self._table(request[1])
            if kind == "get":
                gets.setdefault(t.name, {}).setdefault(tuple(request[2]), []).append(i)
                continue
            if kind == "find":
                where, limit = dict(request[2]), request[3]
                if limit is not None and limit <= 0:
                    results[i] = []
                    continue
                statement, params = self._find_query(t, where, limit)
                jobs.append(_Job(statement, params, self._rows_into(results, i, t)))
                continue
            prefix = dict(zip(t.key, request[2], strict=False))
            cols = self._prefix_columns(t, prefix)
            if kind == "scan":
                _, _, _, before, after, desc, limit = request
                if (limit is not None and limit <= 0) or not self._covers_partition(t, cols):
                    results[i] = self.scan(t.name, prefix, before=before, after=after, desc=desc, limit=limit)
                    continue
                statement, params = self._scan_query(t, cols, prefix, before, after, desc, limit)
                jobs.append(_Job(statement, params, self._rows_into(results, i, t)))
            elif kind == "count":
                if cols and not self._covers_partition(t, cols):
                    results[i] = self.count(t.name, prefix)
                    continue
                statement, params = self._count_query(t, cols, prefix)
                jobs.append(_Job(statement, params, self._count_into(results, i)))
            else:
                raise ValueError(f"unknown read request {request!r}")
        for name, keys in gets.items():
            jobs += self._get_jobs(self._table(name), keys, results)
        self._execute_all(jobs)
        return results

    def _rows_into(self, results: list[Any], i: int, t: Table) -> Callable[[list[Any]], None]:
        decode = self._codecs[t.name].decode

        def done(rows: list[Any]) -> None:
            results[i] = [decode(r) for r in rows]

        return done

    @staticmethod
    def _count_into(results: list[Any], i: int) -> Callable[[list[Any]], None]:
        def done(rows: list[Any]) -> None:
            results[i] = int(rows[0][0])

        return done

    def _get_jobs(self, t: Table, keys: dict[tuple[Any, ...], list[int]], results: list[Any]) -> list[_Job]:
        """Point reads of table `t`, grouped into IN queries where the key allows it."""
        by_cql: dict[tuple[Any, ...], list[int]] = {}
        encode = self._codecs[t.name].key
        for key, slots in keys.items():
            if len(key) != len(t.key) or None in key:
                raise ValueError(f"{t.name}: {key} is not a full key {t.key}")
            by_cql.setdefault(encode(key), []).extend(slots)
        width = len(t.key)
        decode = self._codecs[t.name].decode

        def deliver(rows: list[Any]) -> None:
            for r in rows:
                for slot in by_cql.get(tuple(r[:width]), ()):
                    results[slot] = decode(r)

        for slots in by_cql.values():  # absent unless a row comes back
            for slot in slots:
                results[slot] = None
        jobs: list[_Job] = []
        npart = len(t.partition)
        if not t.clustering and npart == 1:
            statement = self._prepare(("get_in", t.name), lambda: self._select(t, ()) + f" WHERE {q(t.key[0])} IN ?")
            wanted = [k[0] for k in by_cql]
            for start in range(0, len(wanted), MAX_IN_KEYS):
                jobs.append(_Job(statement, [wanted[start : start + MAX_IN_KEYS]], deliver))
            return jobs
        # Keys with clustering columns: IN on every key column, over "boxes" of keys whose
        # cross product stays small (the server looks up every combination; the rows that
        # were not asked for are dropped here). One request answers many sparse keys.
        statement = self._prepare(
            ("get_box", t.name),
            lambda: self._select(t, ()) + " WHERE " + " AND ".join(f"{q(c)} IN ?" for c in t.key),
        )
        for box in _boxes(sorted(by_cql), len(t.key), MAX_BOX_COMBINATIONS):
            jobs.append(_Job(statement, [sorted(values) for values in box], deliver))
        return jobs

    def _execute_all(self, jobs: Sequence[_Job]) -> None:
        """Run every job's statement, at most MAX_IN_FLIGHT at a time, handing each its rows.
        The first failure stops new requests and is raised once those in flight are back."""
        answers: queue.SimpleQueue[tuple[int, list[Any] | None, BaseException | None]] = queue.SimpleQueue()
        pending = deque(range(len(jobs)))
        in_flight = 0
        error: BaseException | None = None
        while True:
            while pending and in_flight < MAX_IN_FLIGHT and error is None:
                j = pending.popleft()
                self._collect(self._session.execute_async(jobs[j].statement, jobs[j].params), j, answers)
                in_flight += 1
            if in_flight == 0:
                break
            j, rows, exc = answers.get()
            in_flight -= 1
            if exc is not None:
                error = error or exc
            elif error is None:
                jobs[j].done(rows or [])
        if error is not None:
            raise error

    def validate(self, ops: Sequence[Op]) -> None:
        """Raise for an operation `apply` would refuse (the checks of `_resources`), without
        writing anything and without encoding any value."""
        for op in ops:
            match op:
                case Put() | SetAdd():
                    t = self._table(op.table)
                    missing = [c for c in t.key if op.row.get(c) is None]
                    if missing:
                        raise ValueError(f"{t.name}: row without key columns {missing}")
                    for counter in op.counters if isinstance(op, SetAdd) else ():
                        self._check_counter_shape(t, op.row, counter)
                case Patch():
                    t = self._table(op.table)
                    self._check_full_key(t, op.key)
                    for c in op.values:
                        if c not in t.values:
                            raise ValueError(f"{t.name}: cannot patch {c!r}, not a value column")
                case Increment():
                    t = self._table(op.table)
                    self._check_full_key(t, op.key)
                    self._check_value_column(t, op.column, int)
                case SetRemove():
                    t = self._table(op.table)
                    self._check_full_key(t, op.key)
                    for counter in op.counters:
                        self._check_counter_shape(t, op.key, counter)
                case Delete():
                    self._prefix_columns(self._table(op.table), op.key)
                case _:
                    raise TypeError(f"unknown operation {op!r}")

    @staticmethod
    def _check_full_key(table: Table, key: Key) -> None:
        if len(key) != len(table.key) or any(key.get(c) is None for c in table.key):
            raise ValueError(f"{table.name}: {dict(key)} is not a full key {table.key}")

    def write_changes(self, changes: BatchChanges) -> Recounted:
        """Write a batch's net effect (see `infra.worker.changes`).

        Prefix deletes carry one timestamp and every row write a later one, so all of
        them go out at once and still land in the batch's order; statements of one
        partition share an unlogged batch (one mutation, one request). Recounts run
        once the rows are written, like those of `apply`."""
        if changes.early is not None and changes.late is not None:
            early, late = changes.early, changes.late  # journaled: written again, the same cells
        else:
            early, late = self._timestamp(), self._timestamp()
        if late <= early:  # pragma: no cover - the driver's generator is monotonic
            late = early + 1
        per_partition: dict[_Resource, list[tuple[PreparedStatement, tuple[Any, ...]]]] = {}
        plans: list[_Plan] = []

        def add(t: Table, key: tuple[Any, ...], statement: PreparedStatement, params: tuple[Any, ...]) -> None:
            per_partition.setdefault((t.name, key[: len(t.partition)]), []).append((statement, params))

        for name, prefix in changes.deletes:
            t = self._table(name)
            cols = t.key[: len(prefix)]
            values = tuple(to_cql(t, c, v) for c, v in zip(cols, prefix, strict=True))
            if self._covers_partition(t, cols):
                add(t, values, self._delete_at_statement(t, len(cols)), (early, *values))
            else:
                plans.append(self._plan_delete_partitions(t, cols, values, early))
        statements: dict[tuple[Any, ...], PreparedStatement] = {}

        def statement(kind: str, t: Table, make: Callable[[], PreparedStatement]) -> PreparedStatement:
            found = statements.get((kind, t.name))
            if found is None:
                found = statements[(kind, t.name)] = make()
            return found

        for w in changes.rows:
            t = self._table(w.table)
            codec = self._codecs[t.name]
            key = codec.key(w.key)
            where = per_partition.setdefault((t.name, key[: codec.npart]), [])
            if w.row is None:
                delete = statement("delete", t, lambda: self._delete_at_statement(t, len(t.key)))  # noqa: B023
                where.append((delete, (late, *key)))
                continue
            if w.columns is None:
                insert = statement("insert", t, lambda: self._insert_statement(t, True))  # noqa: B023
                where.append((insert, (*codec.encode(w.row), late)))
                continue
            if w.cleared:
                delete = statement("delete", t, lambda: self._delete_at_statement(t, len(t.key)))  # noqa: B023
                where.append((delete, (early, *key)))
            if w.columns:
                values = tuple(to_cql(t, c, w.row[c]) for c in w.columns)
                where.append((self._update_statement(t, w.columns), (late, *values, *key)))
        plans += [self._plan_statement(step) for step in self._packed(per_partition)]
        self._run(plans, [_Deps(frozenset(), frozenset())] * len(plans))
        return self._recount_all(changes.recounts)

    def _packed(self, per_partition: dict[_Resource, list[tuple[Any, tuple[Any, ...]]]]) -> list[_Stmt]:
        """Statements as few requests: a partition's statements in one unlogged batch (one
        mutation), and small partitions together in one batch, within the server's limits
        for batches across partitions (BATCH_PARTITIONS, BATCH_BYTES) so it never warns."""
        steps: list[_Stmt] = []
        group: list[tuple[Any, tuple[Any, ...]]] = []
        partitions = size = 0

        def close() -> None:
            nonlocal group, partitions, size
            if len(group) == 1:
                steps.append(_Stmt(*group[0]))
            elif group:
                steps.append(_Stmt(self._batch(group), None))
            group, partitions, size = [], 0, 0

        for statements in per_partition.values():
            weight = sum(_weight(params) for _, params in statements)
            if weight > BATCH_BYTES or len(statements) > MAX_BATCH_STATEMENTS:
                for start in range(0, len(statements), MAX_BATCH_STATEMENTS):
                    steps.append(_Stmt(self._batch(statements[start : start + MAX_BATCH_STATEMENTS]), None))
                continue
            if partitions + 1 > BATCH_PARTITIONS or size + weight > BATCH_BYTES:
                close()
            group += statements
            partitions += 1
            size += weight
        close()
        return steps

    def _batch(self, statements: Sequence[tuple[Any, tuple[Any, ...]]]) -> BatchStatement:
        batch = BatchStatement(batch_type=BatchType.UNLOGGED, consistency_level=self._consistency)
        for statement, params in statements:
            batch.add(statement, params)
        return batch

    @staticmethod
    def _plan_statement(step: _Stmt) -> _Plan:
        yield step

    def _recount_all(self, recounts: Sequence[BatchRecount]) -> Recounted:
        """Set every counter cell to the size of its set partition, all at once: the counts
        go out together (by partition IN ... GROUP BY where the key allows), then the writes,
        all with one timestamp taken before any count (a recount that read later wins)."""
        recounted: Recounted = {}
        if not recounts:
            return recounted
        stamp = self._timestamp()
        cells: list[tuple[Table, tuple[Any, ...], str, Table, tuple[Any, ...], BatchRecount]] = []
        for r in recounts:
            ct, st = self._table(r.table), self._table(r.set_table)
            key = self._full_key(ct, dict(zip(ct.key, r.key, strict=True)))
            partition = tuple(to_cql(st, c, v) for c, v in zip(st.partition, r.partition, strict=True))
            cells.append((ct, key, r.column, st, partition, r))
        sizes: dict[tuple[str, tuple[Any, ...]], int] = {}
        jobs: list[_Job] = []
        by_set: dict[str, set[tuple[Any, ...]]] = {}
        for _, _, _, st, partition, _ in cells:
            by_set.setdefault(st.name, set()).add(partition)
        for name, partitions in by_set.items():
            st = self._table(name)
            for partition in partitions:
                sizes[(name, partition)] = 0  # unless counted below
            jobs += self._count_jobs(st, sorted(partitions), sizes)
        self._execute_all(jobs)
        empty = [(ct, key, column) for ct, key, column, st, partition, _ in cells if sizes[(st.name, partition)] == 0]
        current: dict[tuple[str, tuple[Any, ...]], Row | None] = {}
        if empty:
            wanted = {(ct.name, key) for ct, key, _ in empty}
            found = self.read_bulk([("get", name, self._key_values(name, key)) for name, key in wanted])
            current = dict(zip(wanted, found, strict=True))
        per_partition: dict[_Resource, list[tuple[Any, tuple[Any, ...]]]] = {}
        for ct, key, column, st, partition, r in cells:
            size = sizes[(st.name, partition)]
            if size == 0:
                row = current.get((ct.name, key))
                if row is None or row[column] is None:
                    # As in SQLite, where only a removal that happened moves a counter: an empty
                    # set leaves a counter that was never set (or whose row is gone) unset.
                    recounted[(r.table, r.key, r.column)] = None
                    continue
            recounted[(r.table, r.key, r.column)] = size
            per_partition.setdefault((ct.name, key[: len(ct.partition)]), []).append(
                (self._set_value_statement(ct, column), (stamp, size, *key))
            )
        steps = self._packed(per_partition)
        self._run([self._plan_statement(step) for step in steps], [_Deps(frozenset(), frozenset())] * len(steps))
        return recounted

    def _key_values(self, name: str, key: tuple[Any, ...]) -> tuple[Any, ...]:
        t = self._table(name)
        return tuple(from_cql(t, c, v) for c, v in zip(t.key, key, strict=True))

    def _count_jobs(
        self, st: Table, partitions: list[tuple[Any, ...]], sizes: dict[tuple[str, tuple[Any, ...]], int]
    ) -> list[_Job]:
        if len(st.partition) != 1:
            statement = self._prepare(
                ("count", st.name, len(st.partition)),
                lambda: f"SELECT COUNT(*) FROM {self._phys(st.name)} WHERE {self._where(st.partition)}",
            )

            def one(partition: tuple[Any, ...]) -> Callable[[list[Any]], None]:
                def done(rows: list[Any]) -> None:
                    sizes[(st.name, partition)] = int(rows[0][0])

                return done

            return [_Job(statement, list(p), one(p)) for p in partitions]
        column = q(st.partition[0])
        grouped = self._prepare(
            ("count_in", st.name),
            lambda: f"SELECT {column}, COUNT(*) FROM {self._phys(st.name)} WHERE {column} IN ? GROUP BY {column}",
        )

        def done(rows: list[Any]) -> None:
            for value, n in rows:
                sizes[(st.name, (value,))] = int(n)

        keys = [p[0] for p in partitions]
        return [_Job(grouped, [keys[i : i + MAX_IN_KEYS]], done) for i in range(0, len(keys), MAX_IN_KEYS)]

    def _plan_delete_partitions(self, t: Table, cols: Sequence[str], values: tuple[Any, ...], stamp: int) -> _Plan:
        """Drop every partition whose leading partition columns are `values` (found through the index)."""
        statement = self._prepare(
            ("partitions", t.name, tuple(cols)),
            lambda: (
                f"SELECT {', '.join(q(c) for c in t.partition)} FROM {self._phys(t.name)}"
                + (f" WHERE {self._where(cols)}" if cols else "")
            ),
        )
        rows = yield _Stmt(statement, values)
        drop = self._delete_at_statement(t, len(t.partition))
        for partition in dict.fromkeys(tuple(r) for r in rows):
            yield _Stmt(drop, (stamp, *partition))

    def _delete_at_statement(self, t: Table, n: int) -> PreparedStatement:
        return self._prepare(
            ("delete_at", t.name, n),
            lambda: f"DELETE FROM {self._phys(t.name)} USING TIMESTAMP ? WHERE {self._where(t.key[:n])}",
        )

    def _update_statement(self, t: Table, cols: tuple[str, ...]) -> PreparedStatement:
        return self._prepare(
            ("patch", t.name, cols),
            lambda: (
                f"UPDATE {self._phys(t.name)} USING TIMESTAMP ? SET "
                + ", ".join(f"{q(c)} = ?" for c in cols)
                + f" WHERE {self._where(t.key)}"
            ),
        )

    # -- writes: planning ----------------------------------------------------
    def apply(self, ops: Sequence[Op]) -> None:
        if not ops:
            return
        resources = [self._resources(op) for op in ops]  # also validates every op before any write
        recounts = self._recounts_to_run(ops, resources)
        plans = [self._plan(op, recounts[i]) for i, op in enumerate(ops)]
        self._run(plans, self._dependencies(ops, resources))

    def _resources(self, op: Op) -> list[_Resource]:
        """The partitions an op reads or writes, after checking the op is well formed."""
        match op:
            case Put() | SetAdd():
                t = self._table(op.table)
                missing = [c for c in t.key if op.row.get(c) is None]
                if missing:
                    raise ValueError(f"{t.name}: row without key columns {missing}")
                own = [self._partition_of(t, op.row)]
                counters = op.counters if isinstance(op, SetAdd) else ()
                return own + [self._check_counter(t, op.row, c) for c in counters]
            case Patch():
                t = self._table(op.table)
                self._full_key(t, op.key)
                for c in op.values:
                    if c not in t.values:
                        raise ValueError(f"{t.name}: cannot patch {c!r}, not a value column")
                return [self._partition_of(t, op.key)]
            case Increment():
                t = self._table(op.table)
                self._full_key(t, op.key)
                self._check_value_column(t, op.column, int)
                return [self._partition_of(t, op.key)]
            case SetRemove():
                t = self._table(op.table)
                self._full_key(t, op.key)
                return [self._partition_of(t, op.key)] + [self._check_counter(t, op.key, c) for c in op.counters]
            case Delete():
                t = self._table(op.table)
                cols = self._prefix_columns(t, op.key)
                if self._covers_partition(t, cols):
                    return [self._partition_of(t, op.key)]
                return [(t.name, None)]
        raise TypeError(f"unknown operation {op!r}")

    def _partition_of(self, t: Table, key: Key) -> _Resource:
        return (t.name, tuple(to_cql(t, c, key[c]) for c in t.partition))

    @staticmethod
    def _check_value_column(t: Table, column: str, kind: type) -> None:
        if column not in t.values:
            raise ValueError(f"{t.name}: {column!r} is not a value column")
        if t.type_of(column) is not kind:
            raise ValueError(f"{t.name}.{column} is not {kind.__name__}")

    def _check_counter(self, set_table: Table, key: Key, counter: CounterRef) -> _Resource:
        self._check_counter_shape(set_table, key, counter)
        return self._partition_of(self._table(counter.table), counter.key)

    def _check_counter_shape(self, set_table: Table, key: Key, counter: CounterRef) -> None:
        ct = self._table(counter.table)
        where = f"counter {ct.name}.{counter.column} of set {set_table.name}"
        if set(counter.key) != set(ct.key):
            raise CounterShapeError(f"{where}: the counter key {sorted(counter.key)} is not the full key {ct.key}")
        try:
            self._check_value_column(ct, counter.column, int)
        except ValueError as exc:
            raise CounterShapeError(f"{where}: {exc}") from None
        partition = tuple(key[c] for c in set_table.partition)
        counter_key = tuple(counter.key[c] for c in ct.key)
        if partition != counter_key:
            raise CounterShapeError(
                f"{where}: the counter key {counter_key} is not the set's partition {partition}; "
                "a counter must be the size of one set partition to be recounted"
            )
        source = self._counter_sources.setdefault((ct.name, counter.column), set_table.name)
        if source != set_table.name:
            raise CounterShapeError(f"{where}: that counter already counts {source}; one counter, one set")

    def _recounts_to_run(self, ops: Sequence[Op], resources: Sequence[list[_Resource]]) -> list[list[_Recount]]:
        """Per op, the recounts it runs: a counter fed again by a later op of this batch,
        with nothing else touching the counter's partition in between, is left to that op."""
        todo: list[list[_Recount]] = [[] for _ in ops]
        later: set[_Recount] = set()  # recounts a later op runs, as seen walking backwards
        for i in range(len(ops) - 1, -1, -1):
            op = ops[i]
            mine: list[_Recount] = []
            if isinstance(op, SetAdd | SetRemove) and op.counters:
                t = self._table(op.table)
                key = op.row if isinstance(op, SetAdd) else op.key
                partition = tuple(to_cql(t, c, key[c]) for c in t.partition)
                mine = [self._recount(c, t.name, partition) for c in op.counters]
            todo[i] = [r for r in mine if r not in later]
            # Anything else on a counter's partition (a put, a patch, a delete, another
            # counter of the row) must find it as it would have been: that op's
            # predecessors recount for themselves.
            touched = set(resources[i])
            later = {r for r in later if r in mine or (r.resource not in touched and (r.table, None) not in touched)}
            later |= set(mine)
        return todo

    def _recount(self, counter: CounterRef, set_table: str, partition: tuple[Any, ...]) -> _Recount:
        ct = self._table(counter.table)
        key = tuple(to_cql(ct, c, counter.key[c]) for c in ct.key)
        return _Recount(ct.name, key, counter.column, set_table, partition, self._partition_of(ct, counter.key))

    @staticmethod
    def _blind(op: Op) -> bool:
        """A single write that reads nothing: its client timestamp alone orders it."""
        match op:
            case Put():
                return True
            case SetRemove():
                return not op.counters
            case Delete():
                return True  # only called for deletes that cover the partition
        return False

    def _dependencies(self, ops: Sequence[Op], resources: Sequence[list[_Resource]]) -> list[_Deps]:
        """For each op, the earlier ops sharing a partition with it that must have started
        or finished before it starts.

        Writes carry client timestamps taken when they are sent, so a blind write need
        only be sent after the blind writes before it (last write wins does the rest),
        while anything that reads (or follows a reader) waits for them to finish.
        """
        last_reader: dict[_Resource, int] = {}
        blind_since: dict[_Resource, list[int]] = {}
        whole: dict[str, int] = {}
        since_whole: dict[str, list[int]] = {}
        deps: list[_Deps] = []
        for i, touched in enumerate(resources):
            started: set[int] = set()
            finished: set[int] = set()
            blind = all(p is not None for _, p in touched) and self._blind(ops[i])
            for res in touched:
                table, partition = res
                if table in whole:
                    finished.add(whole[table])
                if partition is None:
                    finished.update(since_whole.get(table, ()))
                    whole[table] = i
                    since_whole[table] = []
                    continue
                if res in last_reader:
                    finished.add(last_reader[res])
                if blind:
                    started.update(blind_since.get(res, ()))
                    blind_since.setdefault(res, []).append(i)
                else:
                    finished.update(blind_since.get(res, ()))
                    last_reader[res] = i
                    blind_since[res] = []
                since_whole.setdefault(table, []).append(i)
            finished.discard(i)
            deps.append(_Deps(frozenset(started - finished - {i}), frozenset(finished)))
        return deps

    # -- writes: plans -------------------------------------------------------
    def _plan(self, op: Op, recounts: list[_Recount]) -> _Plan:
        match op:
            case Put():
                return self._plan_put(op)
            case Patch():
                return self._plan_patch(op)
            case Delete():
                return self._plan_delete(op)
            case SetAdd():
                return self._plan_set_add(op, recounts)
            case SetRemove():
                return self._plan_set_remove(op, recounts)
            case Increment():
                return self._plan_increment(op)
        raise TypeError(f"unknown operation {op!r}")

    def _insert_statement(self, t: Table, timestamped: bool) -> PreparedStatement:
        def cql() -> str:
            using = " USING TIMESTAMP ?" if timestamped else ""
            return (
                f"INSERT INTO {self._phys(t.name)} ({', '.join(q(c) for c in t.columns)}) "
                f"VALUES ({', '.join('?' * len(t.columns))}){using}"
            )

        return self._prepare(("insert", t.name, timestamped), cql)

    def _exists_statement(self, t: Table) -> PreparedStatement:
        return self._prepare(
            ("exists", t.name),
            lambda: f"SELECT {q(t.key[0])} FROM {self._phys(t.name)} WHERE {self._where(t.key)} LIMIT 1",
        )

    @staticmethod
    def _row_values(t: Table, row: Row) -> tuple[Any, ...]:
        return tuple(to_cql(t, c, row.get(c)) for c in t.columns)

    def _plan_put(self, op: Put) -> _Plan:
        t = self._table(op.table)
        yield _Stmt(self._insert_statement(t, False), self._row_values(t, op.row))

    def _plan_patch(self, op: Patch) -> _Plan:
        t = self._table(op.table)
        if not op.values:
            return
        cols = tuple(op.values)
        key = self._full_key(t, op.key)
        stamp = self._timestamp()
        if not (yield _Stmt(self._exists_statement(t), key)):
            return
        statement = self._prepare(
            ("patch", t.name, cols),
            lambda: (
                f"UPDATE {self._phys(t.name)} USING TIMESTAMP ? SET "
                + ", ".join(f"{q(c)} = ?" for c in cols)
                + f" WHERE {self._where(t.key)}"
            ),
        )
        yield _Stmt(statement, (stamp, *(to_cql(t, c, op.values[c]) for c in cols), *key))

    def _delete_statement(self, t: Table, n: int) -> PreparedStatement:
        return self._prepare(
            ("delete", t.name, n), lambda: f"DELETE FROM {self._phys(t.name)} WHERE {self._where(t.key[:n])}"
        )

    def _plan_delete(self, op: Delete) -> _Plan:
        t = self._table(op.table)
        cols = self._prefix_columns(t, op.key)
        if self._covers_partition(t, cols):
            yield _Stmt(self._delete_statement(t, len(cols)), tuple(to_cql(t, c, op.key[c]) for c in cols))
            return
        # Shorter than the partition key: find the partitions (through the partition index), drop each.
        shape = ("partitions", t.name, tuple(cols))
        statement = self._prepare(
            shape,
            lambda: (
                f"SELECT {', '.join(q(c) for c in t.partition)} FROM {self._phys(t.name)}"
                + (f" WHERE {self._where(cols)}" if cols else "")
            ),
        )
        rows = yield _Stmt(statement, tuple(to_cql(t, c, op.key[c]) for c in cols))
        drop = self._delete_statement(t, len(t.partition))
        for partition in dict.fromkeys(tuple(r) for r in rows):
            yield _Stmt(drop, partition)

    def _plan_set_add(self, op: SetAdd, recounts: list[_Recount]) -> _Plan:
        t = self._table(op.table)
        stamp = self._timestamp()
        key = tuple(to_cql(t, c, op.row[c]) for c in t.key)
        if not (yield _Stmt(self._exists_statement(t), key)):
            yield _Stmt(self._insert_statement(t, True), (*self._row_values(t, op.row), stamp))
        for recount in recounts:
            yield from self._plan_recount(recount)

    def _plan_set_remove(self, op: SetRemove, recounts: list[_Recount]) -> _Plan:
        t = self._table(op.table)
        yield _Stmt(self._delete_statement(t, len(t.key)), self._full_key(t, op.key))
        for recount in recounts:
            yield from self._plan_recount(recount)

    def _plan_recount(self, recount: _Recount) -> _Plan:
        st, ct, column = self._table(recount.set_table), self._table(recount.table), recount.column
        count = self._prepare(
            ("count", st.name, len(st.partition)),
            lambda: f"SELECT COUNT(*) FROM {self._phys(st.name)} WHERE {self._where(st.partition)}",
        )
        stamp = self._timestamp()  # before the count: a recount that read later always wins
        rows = yield _Stmt(count, recount.partition)
        size = int(rows[0][0])
        key = recount.key
        if size == 0:
            current = yield _Stmt(self._value_statement(ct, column), key)
            if not current or current[0][0] is None:
                # As in SQLite, where only a removal that happened moves a counter: an empty
                # set leaves a counter that was never set (or whose row is gone) unset.
                return
        yield _Stmt(self._set_value_statement(ct, column), (stamp, size, *key))

    def _value_statement(self, t: Table, column: str) -> PreparedStatement:
        return self._prepare(
            ("value", t.name, column),
            lambda: f"SELECT {q(column)} FROM {self._phys(t.name)} WHERE {self._where(t.key)}",
        )

    def _set_value_statement(self, t: Table, column: str) -> PreparedStatement:
        return self._prepare(
            ("set", t.name, column),
            lambda: f"UPDATE {self._phys(t.name)} USING TIMESTAMP ? SET {q(column)} = ? WHERE {self._where(t.key)}",
        )

    def _plan_increment(self, op: Increment) -> _Plan:
        t = self._table(op.table)
        key = self._full_key(t, op.key)
        stamp = self._timestamp()
        rows = yield _Stmt(self._value_statement(t, op.column), key)
        current = int(rows[0][0] or 0) if rows else 0
        yield _Stmt(self._set_value_statement(t, op.column), (stamp, current + op.delta, *key))

    # -- writes: running ----------------------------------------------------
    def _run(self, plans: list[_Plan], deps: list[_Deps]) -> None:
        """Drive every plan, each as soon as its dependencies allow, with at most
        MAX_IN_FLIGHT requests out. The first failure stops new work and is raised
        once the requests in flight have come back."""
        waiting = [len(d.started) + len(d.finished) for d in deps]
        on_start: list[list[int]] = [[] for _ in plans]
        on_finish: list[list[int]] = [[] for _ in plans]
        for i, d in enumerate(deps):
            for j in d.started:
                on_start[j].append(i)
            for j in d.finished:
                on_finish[j].append(i)
        ready = deque(i for i, n in enumerate(waiting) if n == 0)
        answers: queue.SimpleQueue[tuple[int, list[Any] | None, BaseException | None]] = queue.SimpleQueue()
        in_flight = 0
        finished = 0
        error: BaseException | None = None

        def release(dependents: list[int]) -> None:
            for j in dependents:
                waiting[j] -= 1
                if waiting[j] == 0:
                    ready.append(j)

        def advance(i: int, rows: list[Any] | None) -> None:
            nonlocal in_flight, finished, error
            try:
                step = plans[i].send(rows)  # type: ignore[arg-type]  # None starts a plan
            except StopIteration:
                finished += 1
                if rows is None:
                    release(on_start[i])
                release(on_finish[i])
                return
            except Exception as exc:
                error = error or exc
                return
            future = self._session.execute_async(step.statement, step.params)
            self._collect(future, i, answers)
            in_flight += 1
            if rows is None:  # sent its first statement: its timestamp is taken
                release(on_start[i])

        while True:
            while ready and in_flight < MAX_IN_FLIGHT and error is None:
                advance(ready.popleft(), None)
            if in_flight == 0:
                break
            i, rows, exc = answers.get()
            in_flight -= 1
            if exc is not None:
                error = error or exc
            elif error is None:
                advance(i, rows)
        for plan in plans:
            plan.close()
        if error is not None:
            raise error
        if finished != len(plans):  # pragma: no cover - would mean a dependency cycle
            raise RuntimeError(f"apply finished {finished} of {len(plans)} operations")

    @staticmethod
    def _collect(
        future: ResponseFuture,
        i: int,
        answers: queue.SimpleQueue[tuple[int, list[Any] | None, BaseException | None]],
    ) -> None:
        rows: list[Any] = []

        def page(found: list[Any] | None) -> None:
            if found:
                rows.extend(found)
            if future.has_more_pages:
                future.start_fetching_next_page()
            else:
                answers.put((i, rows, None))

        def failed(exc: BaseException) -> None:
            answers.put((i, None, exc))

        future.add_callbacks(page, failed)
