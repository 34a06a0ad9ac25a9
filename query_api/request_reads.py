"""A read model for the duration of one query: each row is read once, and in batches.

A page of posts asks the same questions many times and one row at a time: Privacy
reads the author's account and both block directions for every post, the page
filter and the response builder each check visibility, and the engagement of each
post is three more reads. Over SQLite each read is a statement (~10 µs), and they
were most of a feed page's time.

`RequestReads` wraps the process's read model for one request: `get` and
`get_many` remember what they found, absent rows included, so asking again costs a
dict lookup; `prefetch` (a `get_many`) reads a whole page's rows in one statement
per table before the per-post code asks for them one by one. Scans, counts and finds
go straight through.

It is safe because a query reads in one synchronous stretch on the event loop:
nothing is written between its reads (commands and projections run on the same
thread, between requests), so remembering a row changes no answer. Never keep one
across an `await` or past its request, and never write through it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from operator import itemgetter
from typing import Any, cast

from projections.store import Gets, Key, ReadModel, Row, Scan, get_each, scan_each

_EXACT = {int: int, str: str}  # declared column type -> the Python type a key value must have
Slot = tuple[str, tuple[tuple[str, Any], ...]]  # a table and a key's items, in the key's order


@cache
def _key_spec(table: str) -> tuple[frozenset[str], Callable[[Key], tuple[Any, ...]], tuple[type, ...]] | None:
    """The full key's column names, how to take its values from a key (a tuple in key order), and
    the Python type each value must have (None: unknown table, or a key column of another type)."""
    from projections.registry import all_tables

    t = next((t for t in all_tables() if t.name == table), None)
    if t is None or any(t.type_of(c) not in _EXACT for c in t.key):
        return None
    values_of: Callable[[Key], tuple[Any, ...]]
    if len(t.key) == 1:
        column = t.key[0]

        def one(key: Key) -> tuple[Any, ...]:
            return (key[column],)

        values_of = one
    else:
        values_of = cast(Callable[[Key], tuple[Any, ...]], itemgetter(*t.key))  # a tuple for 2+ columns
    return frozenset(t.key), values_of, tuple(_EXACT[t.type_of(c)] for c in t.key)


class RequestReads:
    def __init__(self, inner: ReadModel) -> None:
        self.inner = inner
        self._rows: dict[Slot, Row | None] = {}

    @staticmethod
    def of(read: ReadModel) -> RequestReads:
        return read if isinstance(read, RequestReads) else RequestReads(read)

    def get(self, table: str, key: Key) -> Row | None:
        slot = (table, tuple(key.items()))  # the order of the key's columns matters: a miss at worst
        try:
            return self._rows[slot]
        except KeyError:
            row = self._rows[slot] = self.inner.get(table, key)
            return row

    def get_many(self, table: str, keys: Sequence[Key]) -> list[Row]:
        slots = [(table, tuple(k.items())) for k in keys]
        self.prefetch_each([Gets(table, keys)])
        return [row for row in (self._rows[s] for s in slots) if row is not None]

    def get_many_each(self, gets: Sequence[Gets]) -> list[list[Row]]:
        self.prefetch_each(gets)
        return [[r for r in (self._rows[(g.table, tuple(k.items()))] for k in g.keys) if r is not None] for g in gets]

    def prefetch(self, table: str, keys: Sequence[Key]) -> None:
        """Read these rows now, in one batch, for the gets that follow."""
        if keys:
            self.prefetch_each([Gets(table, keys)])

    def prefetch_each(self, gets: Sequence[Gets]) -> None:
        """Read the rows of every table's keys now, in one batch where the inner read model
        allows (`get_each`), for the gets that follow."""
        known = self._rows
        asks: list[tuple[str, dict[Slot, tuple[Any, ...]], list[tuple[Slot, Key]]]] = []
        for g in gets:
            exact, missing = self._unknown(g.table, g.keys)
            if exact:
                asks.append((g.table, exact, missing))
            for slot, key in missing:
                if slot not in exact:
                    known[slot] = self.inner.get(g.table, key)  # not batchable: as `get` would
        if not asks:
            return
        by_key = getattr(self.inner, "rows_by_key", None)
        found_each: list[dict[tuple[Any, ...], Row]]
        if by_key is not None:
            found_each = [by_key(table, list(exact.values())) for table, exact, _ in asks]
        else:
            rows_each = get_each(
                self.inner, [Gets(table, [k for s, k in missing if s in exact]) for table, exact, missing in asks]
            )
            found_each = []
            for (table, _, _), rows in zip(asks, rows_each, strict=True):
                spec = _key_spec(table)
                assert spec is not None  # an exact key needs it
                found_each.append({spec[1](r): r for r in rows})
        for (_, exact, _), found in zip(asks, found_each, strict=True):
            for slot, values in exact.items():
                known[slot] = found.get(values)  # absent: None

    def _unknown(self, table: str, keys: Sequence[Key]) -> tuple[dict[Slot, tuple[Any, ...]], list[tuple[Slot, Key]]]:
        """The keys not read yet, and of those, the ones a batch can answer: slot -> key values."""
        known = self._rows
        missing: dict[Slot, Key] = {}
        for key in keys:
            slot = (table, tuple(key.items()))
            if slot not in known:
                missing[slot] = key
        exact: dict[Slot, tuple[Any, ...]] = {}
        spec = _key_spec(table) if missing else None
        if spec is not None:
            names, values_of, kinds = spec
            for slot, key in missing.items():
                if key.keys() == names:
                    values = values_of(key)
                    # Every value of its column's declared type, so that a row found for the key
                    # carries the same values (the backend cannot have converted them): batchable.
                    if tuple(map(type, values)) == kinds:
                        exact[slot] = values
        return exact, list(missing.items())

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
        return self.inner.scan(table, prefix, before=before, after=after, desc=desc, limit=limit)

    def scan_many(self, scans: Sequence[Scan]) -> list[list[Row]]:
        return scan_each(self.inner, scans)

    def count(self, table: str, prefix: Key) -> int:
        return self.inner.count(table, prefix)

    def find(self, table: str, where: Key, limit: int | None = None) -> list[Row]:
        return self.inner.find(table, where, limit)
