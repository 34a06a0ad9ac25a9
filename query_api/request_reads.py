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

from projections.store import Key, ReadModel, Row, Scan, scan_each

_EXACT = {int: int, str: str}  # declared column type -> the Python type a key value must have


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
        self._rows: dict[tuple[str, tuple[tuple[str, Any], ...]], Row | None] = {}

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
        known = self._rows
        slots = [(table, tuple(k.items())) for k in keys]
        missing = [(s, k) for s, k in zip(slots, keys, strict=True) if s not in known]
        if missing:
            spec = _key_spec(table)
            exact: dict[tuple[str, tuple[tuple[str, Any], ...]], tuple[Any, ...]] = {}
            if spec is not None:
                names, values_of, kinds = spec
                for slot, key in missing:
                    if key.keys() == names:
                        values = values_of(key)
                        # Every value of its column's declared type, so that a row found for the key
                        # carries the same values (the backend cannot have converted them): batchable.
                        if tuple(map(type, values)) == kinds:
                            exact[slot] = values
            if exact:
                by_key = getattr(self.inner, "rows_by_key", None)
                if by_key is not None:
                    found: dict[tuple[Any, ...], Row] = by_key(table, list(exact.values()))
                else:
                    assert spec is not None  # `exact` is empty without it
                    values_of = spec[1]
                    wanted = [k for s, k in missing if s in exact]
                    found = {values_of(r): r for r in self.inner.get_many(table, wanted)}
                for slot, values in exact.items():
                    known[slot] = found.get(values)  # absent: None
            for slot, key in missing:
                if slot not in known:
                    known[slot] = self.inner.get(table, key)  # not batchable: as `get` would
        return [row for row in (known[s] for s in slots) if row is not None]

    def prefetch(self, table: str, keys: Sequence[Key]) -> None:
        """Read these rows now, in one batch, for the gets that follow."""
        if keys:
            self.get_many(table, keys)

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
