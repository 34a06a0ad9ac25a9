"""Read-model tables in SQLite: one SQLite table per `Table`, keyed by its full key."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from infra.storage.codec import SQL_TYPES, from_db, to_db
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


class SqliteReadModel:
    """Implements `projections.store.ReadModelWriter` over one SQLite connection.

    The caller owns transactions: `apply` runs inside whatever transaction is open,
    so a projector can commit data and its position together.
    """

    def __init__(self, conn: sqlite3.Connection, tables: Iterable[Table], prefix: str = "rm_") -> None:
        self.conn = conn
        self._tables = {t.name: t for t in tables}
        self._prefix = prefix
        self._routes: dict[str, str] = {}  # logical -> physical name, where not prefix + name
        self._sql_cache: dict[tuple[Any, ...], str] = {}

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

    def _phys(self, name: str) -> str:
        return self._routes.get(name) or self._prefix + name

    def _table(self, name: str) -> Table:
        try:
            return self._tables[name]
        except KeyError:
            raise UnknownTable(name) from None

    def _row(self, table: Table, values: Sequence[Any], columns: Sequence[str]) -> Row:
        return {c: from_db(table, c, v) for c, v in zip(columns, values, strict=True)}

    @staticmethod
    def _where(table: Table, key: Key) -> tuple[str, list[Any]]:
        cols = [c for c in table.key if c in key]
        if len(cols) != len(key) or cols != list(table.key[: len(cols)]):
            raise ValueError(f"{table.name}: {sorted(key)} is not a prefix of the key {table.key}")
        return " AND ".join(f"{c} = ?" for c in cols) or "1", [to_db(table, c, key[c]) for c in cols]

    # -- reads --------------------------------------------------------------
    def get(self, table: str, key: Key) -> Row | None:
        t = self._table(table)
        where, args = self._where(t, key)
        cur = self.conn.execute(f"SELECT {', '.join(t.columns)} FROM {self._phys(table)} WHERE {where}", args)
        found = cur.fetchone()
        return None if found is None else self._row(t, found, t.columns)

    def get_many(self, table: str, keys: Sequence[Key]) -> list[Row]:
        rows = []
        for key in keys:
            row = self.get(table, key)
            if row is not None:
                rows.append(row)
        return rows

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
        where, args = self._where(t, prefix)
        rest = t.key[len(prefix) :]
        if rest:
            if before is not None:
                where += f" AND {rest[0]} < ?"
                args.append(to_db(t, rest[0], before))
            if after is not None:
                where += f" AND {rest[0]} > ?"
                args.append(to_db(t, rest[0], after))
        order = ", ".join(f"{c} {'DESC' if desc else 'ASC'}" for c in rest) or "1"
        sql = f"SELECT {', '.join(t.columns)} FROM {self._phys(table)} WHERE {where} ORDER BY {order}"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [self._row(t, r, t.columns) for r in self.conn.execute(sql, args)]

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
        for op in ops:
            self._apply(op)

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

    def _insert(self, table: str, row: Row, verb: str) -> bool:
        t = self._table(table)
        cols = [c for c in t.columns if c in row]
        sql = f"{verb} INTO {self._phys(table)} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        cur = self.conn.execute(sql, [to_db(t, c, row[c]) for c in cols])
        return cur.rowcount > 0

    def _increment(self, table: str, key: Key, column: str, delta: int) -> None:
        t = self._table(table)
        cols = list(key)
        self.conn.execute(
            f"INSERT INTO {self._phys(table)} ({', '.join(cols)}, {column}) VALUES ({', '.join('?' * len(cols))}, ?) "
            f"ON CONFLICT ({', '.join(t.key)}) DO UPDATE SET {column} = COALESCE({column}, 0) + excluded.{column}",
            [to_db(t, c, key[c]) for c in cols] + [delta],
        )
