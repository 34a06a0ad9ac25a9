"""Read-model tables in SQLite: one SQLite table per `Table`, keyed by its full key."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

import orjson

from infra.storage.codec import SQL_TYPES, to_db
from projections.store import (
    Delete,
    Increment,
    Key,
    Op,
    Patch,
    Put,
    Row,
    SetAdd,
    SetRemove,
    Table,
)


class UnknownTable(KeyError):
    pass


_CONVERTED = (bool, list, dict)
# The Python type a key value must have to be looked up in a batch as it is (see get_many).
_KEY_TYPES: dict[Any, type] = {int: int, str: str}
_MAX_IN = 256


def _padded(n: int) -> int:
    """The statement size for a chunk of n keys: a power of two (repeating the last key)."""
    size = 1
    while size < n:
        size *= 2
    return size


class SqliteReadModel:
    """Implements `projections.store.ReadModelWriter` over one SQLite connection.

    The caller owns transactions: `apply` runs inside whatever transaction is open,
    so a projector can commit data and its position together.
    """

    def __init__(self, conn: sqlite3.Connection, tables: Iterable[Table], prefix: str = "rm_") -> None:
        self.conn = conn
        tables = list(tables)
        self._tables = {t.name: t for t in tables}
        self._prefix = prefix
        self._routes: dict[str, str] = {}  # logical -> physical name, where not prefix + name
        # Statement texts by shape (they embed physical names: `route` clears them). Building
        # the text, and checking a key against the table, costs more than SQLite's lookup of
        # a prepared statement, so every read and write reuses them.
        self._sql_cache: dict[tuple[Any, ...], Any] = {}
        # Per table, the columns whose stored form differs from the row's (JSON, bool):
        # every other column goes in and out as it is.
        self._decoders = {t.name: [(c, t.type_of(c)) for c in t.columns if t.type_of(c) in _CONVERTED] for t in tables}
        self._converted = {t.name: {c for c, _ in self._decoders[t.name]} for t in tables}

    # -- schema -------------------------------------------------------------
    def create_schema(self) -> None:
        for table in self._tables.values():
            cols = ", ".join(f"{c} {SQL_TYPES[table.type_of(c)]}" for c in table.columns)
            pk = ", ".join(table.key)
            self.conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._phys(table.name)} ({cols}, PRIMARY KEY ({pk})) WITHOUT ROWID"
            )
            for i, index in enumerate(table.indexes):
                self.conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {self._phys(table.name)}_ix{i} "
                    f"ON {self._phys(table.name)} ({', '.join(index)})"
                )

    def tables(self) -> list[Table]:
        return list(self._tables.values())

    def physical(self, name: str) -> str:
        """The SQLite table holding the logical table `name`."""
        return self._phys(name)

    def route(self, physical: Mapping[str, str]) -> None:
        """Point logical tables at other SQLite tables: the blue/green switch of a rebuilt
        read model (infra/readmodel_generations.py). Every later statement uses them."""
        self._routes.update(physical)
        self._sql_cache.clear()

    def _phys(self, name: str) -> str:
        return self._routes.get(name) or self._prefix + name

    def _table(self, name: str) -> Table:
        try:
            return self._tables[name]
        except KeyError:
            raise UnknownTable(name) from None

    def _row(self, table: Table, values: Sequence[Any], columns: Sequence[str]) -> Row:
        row = dict(zip(columns, values, strict=False))  # a statement's rows have exactly its columns: no check
        for c, kind in self._decoders[table.name]:
            v = row[c]
            if v is not None:
                row[c] = bool(v) if kind is bool else orjson.loads(v)
        return row

    def _args(self, table: Table, key: Key, cols: Sequence[str]) -> list[Any]:
        converted = self._converted[table.name]
        if not converted:
            return [key[c] for c in cols]
        return [to_db(table, c, key[c]) if c in converted else key[c] for c in cols]

    def _key_cols(self, table: Table, key: Key) -> tuple[str, ...]:
        """The key's columns in table order; they must be a prefix of the table's key."""
        shape = ("key", table.name, tuple(key))
        cols: tuple[str, ...] | None = self._sql_cache.get(shape)
        if cols is None:
            cols = tuple(c for c in table.key if c in key)
            if len(cols) != len(key) or cols != table.key[: len(cols)]:
                raise ValueError(f"{table.name}: {sorted(key)} is not a prefix of the key {table.key}")
            self._sql_cache[shape] = cols
        return cols

    @staticmethod
    def _clause(cols: Sequence[str]) -> str:
        return " AND ".join(f"{c} = ?" for c in cols) or "1"

    def _where(self, table: Table, key: Key) -> tuple[str, list[Any]]:
        cols = self._key_cols(table, key)
        return self._clause(cols), self._args(table, key, cols)

    # -- reads --------------------------------------------------------------
    def get(self, table: str, key: Key) -> Row | None:
        t = self._table(table)
        cols = self._key_cols(t, key)
        shape = ("get", table, cols)
        sql = self._sql_cache.get(shape)
        if sql is None:
            sql = f"SELECT {', '.join(t.columns)} FROM {self._phys(table)} WHERE {self._clause(cols)}"
            self._sql_cache[shape] = sql
        found = self.conn.execute(sql, self._args(t, key, cols)).fetchone()
        return None if found is None else self._row(t, found, t.columns)

    def get_many(self, table: str, keys: Sequence[Key]) -> list[Row]:
        """One statement per chunk of full keys (`key IN (...)`), rows in the order of `keys`.

        Partial keys, and keys with a value not of its column's declared type (SQLite would
        convert it where a lookup by value would not), are read one by one as `get` does.
        """
        if len(keys) < 2:
            return [r for r in (self.get(table, k) for k in keys) if r is not None]
        t = self._table(table)
        names, typed = self._key_types(t)
        wanted: list[tuple[Any, ...] | None] = []
        for key in keys:
            ok = key.keys() == names and all(type(key[c]) is kind for c, kind in typed)
            wanted.append(tuple(key[c] for c, _ in typed) if ok else None)
        found = self._fetch_keys(t, list(dict.fromkeys(k for k in wanted if k is not None)))
        rows: list[Row] = []
        given: set[tuple[Any, ...]] = set()
        for key, values in zip(keys, wanted, strict=True):
            if values is None:
                row = self.get(table, key)
                if row is not None:
                    rows.append(row)
            elif values in found:
                rows.append(found[values] if values not in given else dict(found[values]))
                given.add(values)
        return rows

    def _key_types(self, t: Table) -> tuple[frozenset[str], tuple[tuple[str, type | None], ...]]:
        shape = ("keytypes", t.name)
        spec = self._sql_cache.get(shape)
        if spec is None:
            spec = self._sql_cache[shape] = (frozenset(t.key), tuple((c, _KEY_TYPES.get(t.type_of(c))) for c in t.key))
        return spec

    def rows_by_key(self, table: str, keys: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], Row]:
        """The rows of these full keys, by key: each key a tuple of values in the table's key
        order, each of its column's declared type (int or str). For callers that batch reads
        themselves (query_api.request_reads) and would otherwise pay `get_many`'s checks twice."""
        return self._fetch_keys(self._table(table), list(dict.fromkeys(keys))) if keys else {}

    def _fetch_keys(self, t: Table, keys: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], Row]:
        full, width = t.key, len(t.key)
        found: dict[tuple[Any, ...], Row] = {}
        for start in range(0, len(keys), _MAX_IN):
            chunk = keys[start : start + _MAX_IN]
            size = _padded(len(chunk))
            chunk += [chunk[-1]] * (size - len(chunk))  # few distinct statement texts
            shape = ("many", t.name, size)
            sql = self._sql_cache.get(shape)
            if sql is None:
                if width == 1:
                    where = f"{full[0]} IN ({', '.join('?' * size)})"
                else:  # SQLite searches the primary key for a row value IN a subquery, not IN (VALUES ...)
                    one = f"({', '.join('?' * width)})"
                    picked = ", ".join(f"column{i + 1}" for i in range(width))
                    where = f"({', '.join(full)}) IN (SELECT {picked} FROM (VALUES {', '.join([one] * size)}))"
                sql = f"SELECT {', '.join(t.columns)} FROM {self._phys(t.name)} WHERE {where}"
                self._sql_cache[shape] = sql
            row_of, columns = self._row, t.columns
            for values in self.conn.execute(sql, list(chain.from_iterable(chunk))):
                found[values[:width]] = row_of(t, values, columns)  # a row is a tuple: so is its slice
        return found

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
        cols = self._key_cols(t, prefix)
        args = self._args(t, prefix, cols)
        rest = t.key[len(cols) :]
        bounded = bool(rest)
        shape = (
            "scan",
            table,
            cols,
            bounded and before is not None,
            bounded and after is not None,
            desc,
            limit is None,
        )
        sql = self._sql_cache.get(shape)
        if sql is None:
            where = self._clause(cols)
            if rest:
                if before is not None:
                    where += f" AND {rest[0]} < ?"
                if after is not None:
                    where += f" AND {rest[0]} > ?"
            order = ", ".join(f"{c} {'DESC' if desc else 'ASC'}" for c in rest) or "1"
            sql = f"SELECT {', '.join(t.columns)} FROM {self._phys(table)} WHERE {where} ORDER BY {order}"
            if limit is not None:
                sql += " LIMIT ?"
            self._sql_cache[shape] = sql
        if rest:
            if before is not None:
                args.append(to_db(t, rest[0], before))
            if after is not None:
                args.append(to_db(t, rest[0], after))
        if limit is not None:
            args.append(limit)
        columns = t.columns
        return [self._row(t, r, columns) for r in self.conn.execute(sql, args)]

    def count(self, table: str, prefix: Key) -> int:
        t = self._table(table)
        where, args = self._where(t, prefix)
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {self._phys(table)} WHERE {where}", args).fetchone()[0])

    def find(self, table: str, where: Key, limit: int | None = None) -> list[Row]:
        t = self._table(table)
        clause = " AND ".join(f"{c} = ?" for c in where) or "1"
        args = [to_db(t, c, v) for c, v in where.items()]
        sql = f"SELECT {', '.join(t.columns)} FROM {self._phys(table)} WHERE {clause}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._row(t, r, t.columns) for r in self.conn.execute(sql, args)]

    # -- writes -------------------------------------------------------------
    def apply(self, ops: Sequence[Op]) -> None:
        """Apply in order; a run of consecutive Puts goes as one `executemany` per table and
        column set (Puts to different tables commute; each table's keep their order)."""
        i, n = 0, len(ops)
        while i < n:
            if type(ops[i]) is not Put:
                self._apply(ops[i])
                i += 1
                continue
            j = i
            while j < n and type(ops[j]) is Put:
                j += 1
            if j - i == 1:
                self._apply(ops[i])
            else:
                self._put_run(ops[i:j])
            i = j

    def _put_run(self, puts: Sequence[Op]) -> None:
        by_table: dict[str, list[Row]] = {}
        for op in puts:
            assert isinstance(op, Put)
            by_table.setdefault(op.table, []).append(op.row)
        for table, rows in by_table.items():
            t = self._table(table)
            start, n = 0, len(rows)
            while start < n:  # consecutive rows with the same fields share a statement
                fields = rows[start].keys()
                end = start + 1
                while end < n and rows[end].keys() == fields:
                    end += 1
                cols, args_of = self._row_shape(t, tuple(fields))
                sql = self._insert_sql(t, "INSERT OR REPLACE", cols)
                self.conn.executemany(sql, map(args_of, rows[start:end]))
                start = end

    def _row_shape(self, t: Table, fields: tuple[str, ...]) -> tuple[tuple[str, ...], Callable[[Row], Any]]:
        """For rows with these fields: the table's columns among them (in table order), and how
        to take a row's statement arguments (straight out of the row where nothing converts)."""
        shape = ("row", t.name, fields)
        found: tuple[tuple[str, ...], Callable[[Row], Any]] | None = self._sql_cache.get(shape)
        if found is None:
            cols = tuple(c for c in t.columns if c in fields)
            if len(cols) > 1 and not self._converted[t.name].intersection(cols):
                found = (cols, itemgetter(*cols))
            else:

                def args_of(row: Row) -> list[Any]:
                    return self._args(t, row, cols)

                found = (cols, args_of)
            self._sql_cache[shape] = found
        return found

    def _apply(self, op: Op) -> None:
        match op:
            case Put():
                self._insert(op.table, op.row, "INSERT OR REPLACE")
            case Patch():
                t = self._table(op.table)
                if not op.values:
                    return
                where, args = self._where(t, op.key)
                sets = ", ".join(f"{c} = ?" for c in op.values)
                self.conn.execute(
                    f"UPDATE {self._phys(op.table)} SET {sets} WHERE {where}",
                    [to_db(t, c, v) for c, v in op.values.items()] + args,
                )
            case Delete():
                t = self._table(op.table)
                where, args = self._where(t, op.key)
                self.conn.execute(f"DELETE FROM {self._phys(op.table)} WHERE {where}", args)
            case SetAdd():
                if self._insert(op.table, op.row, "INSERT OR IGNORE"):
                    for c in op.counters:
                        self._increment(c.table, c.key, c.column, 1)
            case SetRemove():
                t = self._table(op.table)
                where, args = self._where(t, op.key)
                cur = self.conn.execute(f"DELETE FROM {self._phys(op.table)} WHERE {where}", args)
                if cur.rowcount:
                    for c in op.counters:
                        self._increment(c.table, c.key, c.column, -1)
            case Increment():
                self._increment(op.table, op.key, op.column, op.delta)

    def _insert_sql(self, t: Table, verb: str, cols: tuple[str, ...]) -> str:
        shape = ("insert", t.name, verb, cols)
        sql: str | None = self._sql_cache.get(shape)
        if sql is None:
            sql = f"{verb} INTO {self._phys(t.name)} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            self._sql_cache[shape] = sql
        return sql

    def _insert(self, table: str, row: Row, verb: str) -> bool:
        t = self._table(table)
        cols, args_of = self._row_shape(t, tuple(row))
        cur = self.conn.execute(self._insert_sql(t, verb, cols), args_of(row))
        return cur.rowcount > 0

    def _increment(self, table: str, key: Key, column: str, delta: int) -> None:
        t = self._table(table)
        cols = tuple(key)
        shape = ("increment", table, cols, column)
        sql = self._sql_cache.get(shape)
        if sql is None:
            sql = self._sql_cache[shape] = (
                f"INSERT INTO {self._phys(table)} ({', '.join(cols)}, {column}) VALUES ({', '.join('?' * len(cols))}, ?) "
                f"ON CONFLICT ({', '.join(t.key)}) DO UPDATE SET {column} = COALESCE({column}, 0) + excluded.{column}"
            )
        self.conn.execute(sql, [to_db(t, c, key[c]) for c in cols] + [delta])
