"""Read-model tables in dicts, indexed the way the SQLite tables are: the replay engine's store.

A rebuild projects the whole log into this store and then bulk-loads the rows into
their SQLite or Cassandra tables (infra/replay.py): a dict operation costs a small
fraction of a SQL statement, and projecting a million events issues tens of millions
of them. Unlike `MemoryReadModel` (the unit tests' fake, which copies and scans whole
tables), every read here is as cheap as its SQLite counterpart:

- rows live per partition, so `get` is two dict lookups and a partition `scan` or
  `count` touches that partition only;
- a partition's clustering keys are sorted the first time it is scanned and kept
  sorted afterwards (bisect), so ranged and limited scans are logarithmic;
- `Table.indexes` become dicts from values to keys, so `find` is a lookup;
- composite partition keys get an index on their first column, for the deletes
  and scans by a shorter prefix (e.g. every notification group of one user).

It keeps the SQLite adapter's semantics exactly (the read-model contract runs on it,
and replays through it are compared with the live SQLite tables digest by digest),
including what SQLite's column types do to values: lists and dicts round-trip
through JSON, bools come back as bools, numbers put into text columns come back as
text. Rows handed out are shallow copies; projections never mutate what they read.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any

import orjson

from projections.store import Delete, Increment, Key, Op, Patch, Put, Row, SetAdd, SetRemove, Table

Values = tuple[Any, ...]


class _Top:
    """Sorts after every value: the upper bound of a key prefix in a sorted key list."""

    __slots__ = ()

    def __lt__(self, other: object) -> bool:
        return False

    def __le__(self, other: object) -> bool:
        return other is self

    def __gt__(self, other: object) -> bool:
        return other is not self

    def __ge__(self, other: object) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return 0


TOP = _Top()


def _json(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def _text(value: Any) -> Any:
    return value if value.__class__ is str else str(value)


def _real(value: Any) -> Any:
    return float(value) if value.__class__ is int else value


# What SQLite hands back for a value of each declared column type (see infra/storage/codec.py).
_CONVERT: dict[Any, Callable[[Any], Any] | None] = {
    int: None,
    str: _text,
    bool: bool,
    float: _real,
    list: _json,
    dict: _json,
}


_INLINE = {
    int: "{v}",
    str: "(_x if (_x := {v}) is None or _x.__class__ is str else str(_x))",
    bool: "(_x if (_x := {v}) is None else bool(_x))",
    float: "(_x if (_x := {v}) is None or _x.__class__ is not int else float(_x))",
    list: "(_x if (_x := {v}) is None else _json(_x))",
    dict: "(_x if (_x := {v}) is None else _json(_x))",
}


def _compile(table: Table) -> tuple[Callable[[Key], Row], Callable[[Key], tuple[Values, Values]]]:
    """Per-table functions with the column list unrolled: this is the hot path of a replay.

    `normalize(row)` -> every column, converted as SQLite would; `split(key)` -> the
    (partition, clustering) tuples of a mapping holding every key column."""

    def conv(column: str, source: str) -> str:
        return _INLINE[table.type_of(column)].format(v=source)

    def tup(columns: Sequence[str]) -> str:
        return "(" + "".join(conv(c, f"m[{c!r}]") + ", " for c in columns) + ")"

    # A row is the table's columns (None where absent) with what the caller gave merged in;
    # anything else the caller passed is dropped, as SQLite's INSERT names only the columns.
    fixes = "".join(
        f"    _x = r[{c!r}]\n    if _x is not None:\n        r[{c!r}] = " + conv(c, "_x") + "\n"
        for c in table.columns
        if table.type_of(c) is not int
    )
    source = (
        "def normalize(m):\n"
        "    r = {**_empty, **m}\n"
        f"    if len(r) != {len(table.columns)}:\n"
        "        r = {c: r[c] for c in _columns}\n"
        f"{fixes}"
        "    return r\n"
        f"def split(m):\n    return {tup(table.partition)}, {tup(table.clustering)}\n"
    )
    scope: dict[str, Any] = {"_json": _json, "_empty": dict.fromkeys(table.columns), "_columns": table.columns}
    exec(compile(source, f"<read model {table.name}>", "exec"), scope)
    return scope["normalize"], scope["split"]


class _Index:
    """Equality lookups by some columns: their values -> the full keys of the rows holding them."""

    __slots__ = ("columns", "entries", "then", "values")

    def __init__(self, columns: tuple[str, ...], then: tuple[str, ...] = ()) -> None:
        self.columns = columns
        self.then = then  # the declared index's further columns, which order what a lookup finds
        getter = itemgetter(*columns)
        # One column: keyed by the value itself (itemgetter gives a scalar), saving a tuple per row.
        self.values: Callable[[Key], Any] = getter
        self.entries: dict[Any, dict[Values, None]] = {}

    def add(self, row: Row, full: Values) -> None:
        value = self.values(row)
        found = self.entries.get(value)
        if found is None:
            self.entries[value] = {full: None}
        else:
            found[full] = None

    def discard(self, row: Row, full: Values) -> None:
        value = self.values(row)
        found = self.entries.get(value)
        if found is not None:
            found.pop(full, None)
            if not found:
                del self.entries[value]


class _Data:
    """One table: partitions of rows, sorted clustering keys, secondary indexes."""

    __slots__ = (
        "clustering",
        "columns",
        "indexes",
        "key",
        "lead",
        "nkey",
        "normalize",
        "np",
        "parts",
        "sorted",
        "split",
        "table",
    )

    def __init__(self, table: Table) -> None:
        self.table = table
        self.key = table.key
        self.nkey = len(table.key)
        self.np = len(table.partition)
        self.clustering = table.clustering
        self.columns = table.columns
        self.normalize, self.split = _compile(table)
        self.parts: dict[Values, dict[Values, Row]] = {}
        self.sorted: dict[Values, list[Values]] = {}
        self.lead: dict[Any, dict[Values, None]] | None = {} if self.np > 1 else None
        # Declared indexes are kept from the start; an index by the leading columns of a
        # declared one (which SQLite uses too) is built the first time `find` needs it.
        self.indexes: list[_Index] = [_Index(tuple(cols)) for cols in table.indexes]

    def add_index(self, columns: tuple[str, ...], then: tuple[str, ...]) -> _Index:
        index = _Index(columns, then)
        for p, part in self.parts.items():
            for ck, row in part.items():
                index.add(row, p + ck)
        self.indexes.append(index)
        return index

    def values_of(self, key: Key, columns: Sequence[str]) -> Values:
        out = []
        for c in columns:
            value = key[c]
            convert = _CONVERT[self.table.type_of(c)]
            out.append(convert(value) if value is not None and convert is not None else value)
        return tuple(out)

    def prefix(self, key: Key) -> Values:
        cols = self.key[: len(key)]
        if len(cols) != len(key) or any(c not in key for c in cols):
            raise ValueError(f"{self.table.name}: {sorted(key)} is not a prefix of the key {self.key}")
        return self.values_of(key, cols)

    def sorted_keys(self, partition: Values) -> list[Values]:
        keys = self.sorted.get(partition)
        if keys is None:
            keys = self.sorted[partition] = sorted(self.parts.get(partition, ()))
        return keys

    # -- index upkeep --------------------------------------------------------
    def index(self, row: Row, full: Values) -> None:
        for index in self.indexes:
            index.add(row, full)

    def unindex(self, row: Row, full: Values) -> None:
        for index in self.indexes:
            index.discard(row, full)

    # -- row changes ---------------------------------------------------------
    def insert(self, row: Key, replace: bool) -> bool:
        r = self.normalize(row)
        p, ck = self.split(r)
        part = self.parts.get(p)
        if part is None:
            if None in p:
                raise ValueError(f"{self.table.name}: row without key columns {[c for c in self.key if r[c] is None]}")
            part = self.parts[p] = {}
            if self.lead is not None:
                self.lead.setdefault(p[0], {})[p] = None
        old = part.get(ck)
        if old is not None:
            if not replace:
                return False
            if self.indexes:
                self.unindex(old, p + ck)
        else:
            if None in ck:
                if not part:
                    self.drop_partition(p)
                raise ValueError(f"{self.table.name}: row without key columns {[c for c in self.key if r[c] is None]}")
            if self.sorted:
                keys = self.sorted.get(p)
                if keys is not None:
                    insort(keys, ck)
        part[ck] = r
        if self.indexes:
            self.index(r, p + ck)
        return True

    def drop_partition(self, p: Values) -> None:
        del self.parts[p]
        self.sorted.pop(p, None)
        if self.lead is not None:
            group = self.lead[p[0]]
            del group[p]
            if not group:
                del self.lead[p[0]]

    def remove(self, p: Values, ck: Values) -> Row | None:
        part = self.parts.get(p)
        if part is None:
            return None
        row = part.pop(ck, None)
        if row is None:
            return None
        if self.indexes:
            self.unindex(row, p + ck)
        if not part:
            self.drop_partition(p)
        elif self.sorted:
            keys = self.sorted.get(p)
            if keys is not None:
                del keys[bisect_left(keys, ck)]
        return row

    # -- finding keys --------------------------------------------------------
    def partitions_under(self, values: Values) -> list[Values]:
        """Partitions whose leading columns are `values` (fewer than the partition key)."""
        if not values:
            return list(self.parts)
        assert self.lead is not None  # a shorter prefix than the partition means a composite partition
        return [p for p in self.lead.get(values[0], ()) if p[: len(values)] == values]

    def matching(self, values: Values) -> list[Values]:
        """Full keys starting with `values`, in key order."""
        if len(values) >= self.np:
            p, cp = values[: self.np], values[self.np :]
            part = self.parts.get(p)
            if not part:
                return []
            if len(cp) == len(self.clustering):
                return [values] if cp in part else []
            if not cp:
                return [p + ck for ck in self.sorted_keys(p)]
            keys = self.sorted_keys(p)
            lo, hi = bisect_left(keys, cp), bisect_left(keys, (*cp, TOP))
            return [p + ck for ck in keys[lo:hi]]
        out = []
        for p in sorted(self.partitions_under(values)):
            out += [p + ck for ck in self.sorted_keys(p)]
        return out

    def row(self, full: Values) -> Row | None:
        part = self.parts.get(full[: self.np])
        return None if part is None else part.get(full[self.np :])


class IndexedMemoryReadModel:
    """Implements `projections.store.ReadModelWriter` in memory, with SQLite's behaviour."""

    def __init__(self, tables: Iterable[Table], *, cold: Iterable[str] = ()) -> None:
        self._data = {t.name: _Data(t) for t in tables}
        # Cache tables a replay leaves empty (infra/replay.py, `ColdCaches`): reads find
        # nothing and Put/Delete/Patch/Increment on them are dropped, as on a cache that
        # was just emptied; set operations (which move counters elsewhere) are refused.
        self.cold = frozenset(cold)
        unknown = self.cold - set(self._data)
        if unknown:
            raise KeyError(f"unknown cold tables {sorted(unknown)}")

    def create_schema(self) -> None:
        """Nothing to create; present so every adapter shares one lifecycle."""

    def tables(self) -> list[Table]:
        return [d.table for d in self._data.values()]

    def _d(self, name: str) -> _Data:
        try:
            return self._data[name]
        except KeyError:
            raise KeyError(f"unknown table {name!r}") from None

    def _split(self, d: _Data, key: Key) -> tuple[Values, Values]:
        try:
            return d.split(key)
        except KeyError:
            raise ValueError(f"{d.table.name}: {sorted(key)} is not a prefix of the key {d.key}") from None

    def rows(self, table: str) -> Iterator[Row]:
        """Every row of a table, in no particular order (for bulk loads and digests)."""
        for part in self._d(table).parts.values():
            yield from part.values()

    def rows_in_key_order(self, table: str) -> Iterator[Row]:
        """Every row of a table in key order (what a bulk load into a B-tree wants)."""
        parts = self._d(table).parts
        for p in sorted(parts):
            part = parts[p]
            if len(part) == 1:
                yield from part.values()
            else:
                for ck in sorted(part):
                    yield part[ck]

    def partitions(self, table: str) -> Iterator[list[Row]]:
        """Every partition's rows (in clustering order), partitions in no particular order."""
        for part in self._d(table).parts.values():
            yield [part[ck] for ck in sorted(part)] if len(part) > 1 else list(part.values())

    def row_count(self, table: str) -> int:
        return sum(len(part) for part in self._d(table).parts.values())

    # -- reads --------------------------------------------------------------
    def get(self, table: str, key: Key) -> Row | None:
        d = self._data[table]
        if len(key) == d.nkey:
            try:
                p, ck = d.split(key)
            except KeyError:
                raise ValueError(f"{d.table.name}: {sorted(key)} is not a prefix of the key {d.key}") from None
            part = d.parts.get(p)
            if part is None:
                return None
            row = part.get(ck)
        else:
            found = d.matching(d.prefix(key))
            row = d.row(found[0]) if found else None
        return None if row is None else row.copy()

    def get_many(self, table: str, keys: Sequence[Key]) -> list[Row]:
        return [r for r in (self.get(table, k) for k in keys) if r is not None]

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
        d = self._d(table)
        values = d.prefix(prefix)
        n = len(values)
        if n >= d.np and n < len(d.key):
            p, cp = values[: d.np], values[d.np :]
            part = d.parts.get(p)
            if not part:
                return []
            keys = d.sorted_keys(p)
            lo = bisect_left(keys, cp) if cp else 0
            hi = bisect_left(keys, (*cp, TOP)) if cp else len(keys)
            if after is not None:
                lo = max(lo, bisect_left(keys, (*cp, d.values_of({d.key[n]: after}, (d.key[n],))[0], TOP)))
            if before is not None:
                hi = min(hi, bisect_left(keys, (*cp, d.values_of({d.key[n]: before}, (d.key[n],))[0])))
            if lo >= hi:
                return []
            chosen = keys[lo:hi]
            if desc:
                chosen = chosen[::-1]
            if limit is not None:
                chosen = chosen[: max(limit, 0)]
            return [part[ck].copy() for ck in chosen]
        if n == len(d.key):
            row = d.row(values)
            rows = [] if row is None else [row]
        else:
            column = d.key[n]
            rows = [r for r in (d.row(k) for k in d.matching(values)) if r is not None]
            if after is not None:
                bound = d.values_of({column: after}, (column,))[0]
                rows = [r for r in rows if r[column] > bound]
            if before is not None:
                bound = d.values_of({column: before}, (column,))[0]
                rows = [r for r in rows if r[column] < bound]
            if desc:
                rows.reverse()
        if limit is not None:
            rows = rows[: max(limit, 0)]
        return [r.copy() for r in rows]

    def count(self, table: str, prefix: Key) -> int:
        d = self._d(table)
        values = d.prefix(prefix)
        if len(values) == d.np:
            part = d.parts.get(values)
            return 0 if part is None else len(part)
        return len(d.matching(values))

    def find(self, table: str, where: Key, limit: int | None = None) -> list[Row]:
        d = self._data[table]
        columns = tuple(where)
        wanted = dict(zip(columns, d.values_of(where, columns), strict=True))
        covering = [ix for ix in d.indexes if set(ix.columns) <= set(columns)]
        best = max(covering, key=lambda ix: len(ix.columns), default=None)
        if best is None:
            for declared in d.table.indexes:  # SQLite uses a declared index by its leading columns too
                n = 0
                while n < len(declared) and declared[n] in wanted:
                    n += 1
                if n:
                    best = d.add_index(tuple(declared[:n]), tuple(declared[n:]))
                    break
        keys: Iterable[Values]
        if best is not None:
            keys = best.entries.get(best.values(wanted), {})
        else:
            keys = [p + ck for p, part in d.parts.items() for ck in part]
        ordered = sorted(keys)  # SQLite walks an index (or the table) in key order
        if best is not None and best.then:  # ... an index by some leading columns, by the others first

            def by_rest_of_index(full: Values, then: tuple[str, ...] = best.then) -> tuple[Any, ...]:
                row = d.row(full) or {}
                return tuple((row.get(c) is not None, row.get(c)) for c in then)  # NULLs first, as SQLite

            ordered.sort(key=by_rest_of_index)
        rows = []
        for full in ordered:
            row = d.row(full)
            if row is not None and all(row[c] == v for c, v in wanted.items()):
                rows.append(row.copy())
                if limit is not None and len(rows) >= limit:
                    break
        return rows

    # -- writes -------------------------------------------------------------
    def apply(self, ops: Sequence[Op]) -> None:
        data = self._data
        cold = self.cold
        for op in ops:
            kind = op.__class__
            if cold and op.table in cold:
                if kind is SetAdd or kind is SetRemove:
                    raise ValueError(f"{op.table}: set operations on a cold cache table")
                continue
            if kind is Put:
                data[op.table].insert(op.row, True)  # type: ignore[union-attr]
            elif kind is Delete:
                self._delete(op.table, op.key)  # type: ignore[union-attr]
            elif kind is SetAdd:
                if data[op.table].insert(op.row, False):  # type: ignore[union-attr]
                    for c in op.counters:  # type: ignore[union-attr]
                        self._increment(c.table, c.key, c.column, 1)
            elif kind is SetRemove:
                if self._delete(op.table, op.key):  # type: ignore[union-attr]
                    for c in op.counters:  # type: ignore[union-attr]
                        self._increment(c.table, c.key, c.column, -1)
            elif kind is Patch:
                self._patch(op.table, op.key, op.values)  # type: ignore[union-attr]
            elif kind is Increment:
                self._increment(op.table, op.key, op.column, op.delta)  # type: ignore[union-attr]
            else:
                raise TypeError(f"unknown operation {op!r}")

    def _delete(self, table: str, key: Key) -> int:
        d = self._data[table]
        if len(key) == d.nkey:
            p, ck = self._split(d, key)
            return 1 if d.remove(p, ck) is not None else 0
        values = d.prefix(key)
        if len(values) == d.np and values in d.parts:
            doomed = [values + ck for ck in list(d.parts[values])]
        else:
            doomed = d.matching(values)
        for full in doomed:
            d.remove(full[: d.np], full[d.np :])
        return len(doomed)

    def _patch(self, table: str, key: Key, changes: Row) -> None:
        if not changes:
            return
        d = self._d(table)
        values = d.prefix(key)
        fixed = {c: v for c, v in d.normalize(changes).items() if c in changes}
        for full in [values] if len(values) == len(d.key) else d.matching(values):
            row = d.row(full)
            if row is None:
                continue
            if d.indexes:
                d.unindex(row, full)
            row.update(fixed)
            if d.indexes:
                d.index(row, full)

    def _increment(self, table: str, key: Key, column: str, delta: int) -> None:
        d = self._d(table)
        p, ck = self._split(d, key)
        part = d.parts.get(p)
        row = None if part is None else part.get(ck)
        if row is None:
            d.insert({**key, column: delta}, replace=False)
            return
        if d.indexes and any(column in ix.columns for ix in d.indexes):
            d.unindex(row, p + ck)
            row[column] = (row[column] or 0) + delta
            d.index(row, p + ck)
        else:
            row[column] = (row[column] or 0) + delta
