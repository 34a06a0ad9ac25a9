"""Read-model tables in dicts: the fake adapter for unit tests."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from projections.store import Delete, Increment, Key, Op, Patch, Put, Row, SetAdd, SetRemove, Table


class MemoryReadModel:
    def __init__(self, tables: Iterable[Table]) -> None:
        self._tables = {t.name: t for t in tables}
        self._rows: dict[str, dict[tuple[Any, ...], Row]] = {name: {} for name in self._tables}

    def create_schema(self) -> None:
        """Nothing to create; present so both adapters share one lifecycle."""

    def tables(self) -> list[Table]:
        return list(self._tables.values())

    def _table(self, name: str) -> Table:
        return self._tables[name]

    @staticmethod
    def _check_prefix(t: Table, key: Key) -> list[str]:
        cols = list(t.key[: len(key)])
        if set(cols) != set(key):
            raise ValueError(f"{t.name}: {sorted(key)} is not a prefix of the key {t.key}")
        return cols

    def _matching(self, table: str, key: Key) -> list[tuple[tuple[Any, ...], Row]]:
        t = self._table(table)
        cols = self._check_prefix(t, key)
        n = len(cols)
        want = tuple(key[c] for c in cols)
        return [(k, r) for k, r in self._rows[table].items() if k[:n] == want]

    def get(self, table: str, key: Key) -> Row | None:
        t = self._table(table)
        self._check_prefix(t, key)
        row = self._rows[table].get(tuple(key[c] for c in t.key))
        return copy.deepcopy(row) if row is not None else None

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
        t = self._table(table)
        rest = t.key[len(prefix) :]
        rows = [r for _, r in self._matching(table, prefix)]
        if rest:
            if before is not None:
                rows = [r for r in rows if r[rest[0]] < before]
            if after is not None:
                rows = [r for r in rows if r[rest[0]] > after]
            rows.sort(key=lambda r: tuple(r[c] for c in rest), reverse=desc)
        rows = rows[:limit] if limit is not None else rows
        return copy.deepcopy(rows)

    def count(self, table: str, prefix: Key) -> int:
        return len(self._matching(table, prefix))

    def find(self, table: str, where: Key, limit: int | None = None) -> list[Row]:
        rows = [r for r in self._rows[table].values() if all(r.get(c) == v for c, v in where.items())]
        return copy.deepcopy(rows[:limit] if limit is not None else rows)

    def apply(self, ops: Sequence[Op]) -> None:
        for op in ops:
            match op:
                case Put():
                    self._put(op.table, op.row, replace=True)
                case Patch():
                    t = self._table(op.table)
                    row = self._rows[op.table].get(tuple(op.key[c] for c in t.key))
                    if row is not None:
                        row.update(copy.deepcopy(op.values))
                case Delete():
                    for k, _ in self._matching(op.table, op.key):
                        del self._rows[op.table][k]
                case SetAdd():
                    if self._put(op.table, op.row, replace=False):
                        for c in op.counters:
                            self._increment(c.table, c.key, c.column, 1)
                case SetRemove():
                    t = self._table(op.table)
                    if self._rows[op.table].pop(tuple(op.key[c] for c in t.key), None) is not None:
                        for c in op.counters:
                            self._increment(c.table, c.key, c.column, -1)
                case Increment():
                    self._increment(op.table, op.key, op.column, op.delta)

    def _put(self, table: str, row: Row, *, replace: bool) -> bool:
        t = self._table(table)
        k = tuple(row[c] for c in t.key)
        if not replace and k in self._rows[table]:
            return False
        self._rows[table][k] = {c: copy.deepcopy(row.get(c)) for c in t.columns}
        return True

    def _increment(self, table: str, key: Key, column: str, delta: int) -> None:
        t = self._table(table)
        k = tuple(key[c] for c in t.key)
        row = self._rows[table].setdefault(k, {c: None for c in t.columns} | dict(key))
        row[column] = (row[column] or 0) + delta
