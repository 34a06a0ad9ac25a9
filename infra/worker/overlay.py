"""A per-batch read model in front of the durable one: reads see the batch's own writes,
writes are kept until the batch ends and then written once, all at the same time.

Why: a projection reads while it projects (the follower list, privacy, the row a
SetAdd must not duplicate), and applying event by event costs a round trip for each
of those reads and for each write, one after the other. The overlay turns a batch
into (1) a few rounds of concurrent reads and (2) one concurrent flush.

Exactness. Every read returns what the inner read model would return had the
batch's operations been applied to it one by one, as the SQLite projector does:
- the *base* is what the inner model held when the batch began; what has been read
  of it is memoized (the inner model does not change while a batch is projected:
  the worker is its only writer), including which key prefixes are known completely;
- the *delta* is what the batch did: the current state of each row it touched
  (`_Entry`), and the key prefixes it deleted (`masks`), which hide base rows;
- a read combines both: a row in the delta wins, a masked base row is gone, a scan
  merges base rows (asking the base for `limit` plus as many rows as the delta could
  hide) with the delta's rows and orders them as the adapters do; a count adds the
  delta's presence changes to the base count; `find` filters the delta's rows by the
  same equality. When a prefix deleted inside the scanned range could hide base
  rows in any number, the range is read whole once and answered locally.
Counters behave as in SQLite while the batch runs (SetAdd/SetRemove move them by one
when the set changed). The flush then recounts every counter cell a SetAdd/SetRemove
named and that nothing overwrote later in the batch, as the Cassandra adapter
always has: a counter stays the size of its set across crashes and redeliveries.

Prefetching. Reads are what make a batch slow, and the reads of an event depend on
the state the events before it left. When a projection needs a row the overlay does
not know yet, it is stopped (`_Missing`, it is pure: nothing is lost), and a
*lookahead* runs the projections of the next events speculatively over a throwaway
overlay stacked on this one: reads it cannot answer return "absent" and are
collected, then fetched all at once (`read_bulk`), and the lookahead runs again
with what came back, until it asks for nothing new. Wrong guesses only cost a
wasted read; the real projection runs afterwards against exact state.

Flushing. `changes()` is the net effect of the batch (final rows, deleted prefixes,
recounts); a bulk backend writes them concurrently (`write_changes`: prefix deletes
at one timestamp, rows at a later one, recounts after the rows). Rows are final
values, so writing the changes again after a crash is harmless (the applier journals
them first: infra/worker/applier.py).

Between batches. With `retain` on, the flushed outcome becomes the next batch's base
(a write-through cache), which is only right while nobody else writes the read
models: the applier turns it on while its worker owns every partition, forgets
everything on a rebalance, and `volatile` tables (written by others too) are
forgotten after every batch.
"""

from __future__ import annotations

import copy
import logging
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from events.union import Event
from infra.worker.changes import (
    BatchChanges,
    ReadRequest,
    Recount,
    Recounted,
    RowWrite,
    apply_changes,
    read_one,
)
from projections.projection import Projection
from projections.store import (
    CounterRef,
    Delete,
    Increment,
    Key,
    Op,
    Patch,
    Put,
    ReadModel,
    ReadModelWriter,
    Row,
    SetAdd,
    SetRemove,
    Table,
)

log = logging.getLogger(__name__)

LOOKAHEAD_EVENTS = 10_000  # events a lookahead runs ahead of the one that missed (the rest of a batch)
LOOKAHEAD_WAVES = 8  # rounds of speculation and fetching per lookahead, at most
LOOKAHEAD_SETTLE = 32  # a round that finds fewer new reads than this is the last one
MAX_RETAINED_ROWS = 1_000_000  # rows kept from one batch to the next, at most

_UNKNOWN = object()
_PLACEHOLDERS = {"get": None, "scan": (), "count": 0, "find": ()}


class CounterShapeError(ValueError):
    """A CounterRef that is not the size of its set's partition: the flush could not recount it."""


class _Missing(BaseException):
    """A read the overlay cannot answer without the inner model (raised in strict mode).

    A BaseException so that no projection's `except Exception` can swallow it."""

    def __init__(self, requests: list[ReadRequest]) -> None:
        super().__init__(f"{len(requests)} reads missing")
        self.requests = requests


@dataclass
class Stats:
    fetched: int = 0  # requests sent to the inner model
    rounds: int = 0  # bulk rounds (each one round trip of concurrent requests)
    lookaheads: int = 0
    waves: int = 0
    guesses: int = 0  # events run speculatively
    flushes: int = 0
    fetch_seconds: float = 0.0  # waiting for reads
    speculate_seconds: float = 0.0  # running lookaheads (their fetches excluded)
    flush_seconds: float = 0.0

    def add(self, other: Stats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _copy_row(row: Row) -> Row:
    return {k: copy.deepcopy(v) if isinstance(v, list | dict) else v for k, v in row.items()}


def _covered(index: dict[int, set[tuple[Any, ...]]], q: tuple[Any, ...]) -> bool:
    """Is `q` (a key or prefix) under one of the prefixes in `index` (by length)?"""
    return any(length <= len(q) and q[:length] in prefixes for length, prefixes in index.items())


def _has_under(index: dict[int, set[tuple[Any, ...]]], q: tuple[Any, ...]) -> bool:
    """Does `index` hold a prefix strictly longer than `q` that starts with `q`?"""
    n = len(q)
    return any(length > n and any(p[:n] == q for p in prefixes) for length, prefixes in index.items())


class _Shape:
    """What the overlay needs to know of a table, precomputed."""

    __slots__ = ("_many", "_pick", "columns", "key", "npart", "table", "types", "values")

    def __init__(self, table: Table) -> None:
        self.table = table
        self.key = table.key
        self.columns = table.columns
        self.npart = len(table.partition)
        self.types = {c: table.type_of(c) for c in table.columns}
        self.values = frozenset(table.values)
        self._pick = operator.itemgetter(*self.key)
        self._many = len(self.key) > 1

    def key_of(self, row: Key) -> tuple[Any, ...]:
        try:
            key = self._pick(row)
        except KeyError as exc:
            raise ValueError(f"{self.table.name}: row without key column {exc}") from None
        if not self._many:
            key = (key,)
        if None in key:
            raise ValueError(f"{self.table.name}: {dict(row)} has an empty key column")
        return key  # type: ignore[no-any-return]

    def full_key(self, key: Key) -> tuple[Any, ...]:
        if len(key) != len(self.key):
            raise ValueError(f"{self.table.name}: {sorted(key)} is not the full key {self.key}")
        return self.key_of(key)

    def prefix(self, key: Key) -> tuple[Any, ...]:
        cols = self.key[: len(key)]
        if set(cols) != set(key):
            raise ValueError(f"{self.table.name}: {sorted(key)} is not a prefix of the key {self.key}")
        return tuple(key[c] for c in cols)

    def order(
        self,
        prefix: tuple[Any, ...],
        rows: Iterable[Row],
        before: Any,
        after: Any,
        desc: bool,
        limit: int | None,
    ) -> list[Row]:
        """Bound, sort and cut rows under `prefix` exactly as the adapters do."""
        rest = self.key[len(prefix) :]
        out = list(rows)
        if rest:
            first = rest[0]
            if before is not None:
                out = [r for r in out if r[first] < before]
            if after is not None:
                out = [r for r in out if r[first] > after]
            out.sort(key=lambda r: tuple(r[c] for c in rest), reverse=desc)
        return out[:limit] if limit is not None else out


def _normalizer(shape: _Shape) -> Callable[[Row], Row]:
    """Values as a storage round trip gives them back (lists and dicts via JSON, bools, floats)."""
    special = {c: k for c, k in shape.types.items() if k in (list, dict, bool, float)}

    def normalize(row: Row) -> Row:
        out = {c: row.get(c) for c in shape.columns}
        for c, kind in special.items():
            v = out[c]
            if v is None:
                continue
            if kind is bool:
                out[c] = bool(v)
            elif kind is float:
                out[c] = float(v)
            else:
                out[c] = orjson.loads(orjson.dumps(v))
        return out

    return normalize


def _filling(shape: _Shape) -> Callable[[Row], Row]:
    columns = shape.columns

    def fill(row: Row) -> Row:
        return {c: row.get(c) for c in columns}

    return fill


def _refuse(requests: list[ReadRequest]) -> list[Any]:
    raise _Missing(requests)


def _copying(shape: _Shape) -> Callable[[Row], Row]:
    columns = shape.columns

    def normalize(row: Row) -> Row:
        return {c: copy.deepcopy(row.get(c)) for c in columns}

    return normalize


class _Base:
    """What the batch has learnt of one table's base state (memoized inner reads)."""

    __slots__ = ("complete", "counts", "parts", "rows", "scans")

    def __init__(self) -> None:
        self.rows: dict[tuple[Any, ...], Row | None] = {}
        self.parts: dict[tuple[Any, ...], dict[tuple[Any, ...], None]] = {}  # present keys per partition
        self.complete: dict[int, set[tuple[Any, ...]]] = {}  # prefixes whose every row is in `rows`
        self.scans: dict[tuple[Any, ...], tuple[int | None, list[Row]]] = {}
        self.counts: dict[tuple[Any, ...], int] = {}

    def put(self, shape: _Shape, key: tuple[Any, ...], row: Row | None) -> None:
        self.rows[key] = row
        if row is not None:
            self.parts.setdefault(key[: shape.npart], {})[key] = None
        else:
            part = self.parts.get(key[: shape.npart])
            if part:
                part.pop(key, None)

    def forget(self, shape: _Shape, key: tuple[Any, ...]) -> None:
        """No longer know this row (nor, therefore, any prefix above it completely)."""
        self.rows.pop(key, None)
        part = self.parts.get(key[: shape.npart])
        if part:
            part.pop(key, None)
        for length, prefixes in self.complete.items():
            prefixes.discard(key[:length])

    def under(self, shape: _Shape, prefix: tuple[Any, ...]) -> list[Row]:
        """Known present base rows under `prefix` (all of them if `prefix` is complete)."""
        n = len(prefix)
        if n >= shape.npart:
            keys: Iterable[tuple[Any, ...]] = self.parts.get(prefix[: shape.npart], {})
        else:
            keys = (k for k, r in self.rows.items() if r is not None)
        out = []
        for k in keys:
            if k[:n] == prefix:
                row = self.rows[k]
                if row is not None:
                    out.append(row)
        return out


class _Entry:
    """A row the batch touched: its current state, and how the flush must write it."""

    __slots__ = ("cleared", "cols", "row", "whole")

    def __init__(self, row: Row | None, whole: bool = False, cleared: bool = False) -> None:
        self.row = row
        self.whole = whole  # written whole (Put, inserting SetAdd) since the batch began or was cleared
        self.cols: set[str] = set()  # otherwise: the value columns set since
        self.cleared = cleared  # deleted in the batch before `cols` were set


class _Delta:
    """What the batch did to one table."""

    __slots__ = ("entries", "mask_order", "masks", "parts")

    def __init__(self) -> None:
        self.entries: dict[tuple[Any, ...], _Entry] = {}
        self.parts: dict[tuple[Any, ...], dict[tuple[Any, ...], None]] = {}
        self.masks: dict[int, set[tuple[Any, ...]]] = {}  # deleted prefixes, shorter than the key
        self.mask_order: list[tuple[Any, ...]] = []

    def set(self, shape: _Shape, key: tuple[Any, ...], entry: _Entry) -> None:
        self.entries[key] = entry
        self.parts.setdefault(key[: shape.npart], {})[key] = None

    def under(self, shape: _Shape, prefix: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], _Entry]]:
        n = len(prefix)
        if n >= shape.npart:
            keys: Iterable[tuple[Any, ...]] = list(self.parts.get(prefix[: shape.npart], ()))
        else:
            keys = list(self.entries)
        return [(k, self.entries[k]) for k in keys if k[:n] == prefix]

    def drop(self, shape: _Shape, key: tuple[Any, ...]) -> None:
        del self.entries[key]
        part = self.parts[key[: shape.npart]]
        del part[key]


Source = Callable[[list[ReadRequest]], list[Any]]


class BatchOverlay:
    """`ReadModelWriter` over `inner` that buffers a batch (see the module docstring).

    Use: `begin(events, projections)`, then for each event and projection in order
    `ops = project(i, p)` and `apply(ops)`, then `flush()`. Used without `begin` it
    is simply a buffering read model whose reads fetch what they miss one at a time.
    """

    def __init__(
        self,
        inner: ReadModel,
        tables: Iterable[Table],
        *,
        normalize: bool = True,
        lookahead: int = LOOKAHEAD_EVENTS,
        waves: int = LOOKAHEAD_WAVES,
        settle: int = LOOKAHEAD_SETTLE,
        incremental: bool = True,
        volatile: Iterable[str] = (),
        max_rows: int = MAX_RETAINED_ROWS,
        _parent: BatchOverlay | None = None,
    ) -> None:
        self.inner = inner
        # Keep what is known of the read models from one batch to the next (a write-through
        # cache). Only right while nobody else writes them: the applier turns it on while
        # its worker owns every partition, and `volatile` names tables others write too.
        self.retain = False
        self._volatile = frozenset(volatile)
        self._max_rows = max_rows
        self._warm = False
        self._lookahead_events = lookahead
        self._waves = waves
        self._settle = settle
        self._incremental = incremental
        self.missed: set[ReadRequest] = set()  # speculative only: the inner reads it could not answer
        self.stats = Stats()
        self._strict = False
        self._answers: dict[ReadRequest, Any] = {}
        self._presence: dict[str, tuple[int, int]] = {}  # gets that found a row / found none, per table
        self._counters_checked: set[tuple[str, str, str]] = set()
        self._counter_sources: dict[tuple[str, str], str] = {}
        self._events: Sequence[Event] = ()
        self._projections: Sequence[Projection] = ()
        shared: BatchOverlay | None = None
        self._shapes: dict[str, _Shape]
        self._tables: dict[str, Table]
        self._normalize: dict[str, Callable[[Row], Row]]
        self._fill: dict[str, Callable[[Row], Row]]
        self._source: Source
        if _parent is None:
            self._shapes = {t.name: _Shape(t) for t in tables}
            self._tables = {name: s.table for name, s in self._shapes.items()}
            make = _normalizer if normalize else _copying
            self._normalize = {name: make(s) for name, s in self._shapes.items()}
            self._fill = {name: _filling(s) for name, s in self._shapes.items()}
            self._copy: Callable[[Row], Row] = _copy_row
            bulk = getattr(inner, "read_bulk", None)
            self._source = bulk or (lambda reqs: [read_one(inner, self._tables, r) for r in reqs])
            self._speculative = False
        else:
            # A speculative overlay stacked on `_parent`: it only guesses, so rows are filled
            # out but neither copied nor encoded, and nothing it reads is fetched.
            self._shapes, self._tables = _parent._shapes, _parent._tables
            self._normalize = self._fill = _parent._fill
            # Copies still: what it reads may be the parent's own rows, and projections get them.
            self._copy = _copy_row
            self._speculative = True
            if any(d.entries or d.masks for d in _parent._delta.values()):
                self._source = _parent._answer_strictly  # reads through the parent's current state
            else:
                self._source = _refuse  # the parent's state is its base: share what it knows of it
                shared = _parent
        self._base: dict[str, _Base] = {}
        self._results: dict[ReadRequest, Any] = {}
        self._reset()
        if shared is not None:
            self._base = shared._base
            self._results = shared._results

    # -- lifecycle ------------------------------------------------------------
    def _reset(self) -> None:
        self._base = {name: _Base() for name in self._shapes}
        self._delta: dict[str, _Delta] = {name: _Delta() for name in self._shapes}
        self._results = {}
        self._recounts: dict[tuple[str, tuple[Any, ...], str], tuple[str, tuple[Any, ...]]] = {}
        self._recount_rows: dict[tuple[str, tuple[Any, ...]], set[str]] = {}

    def begin(self, events: Sequence[Event] = (), projections: Sequence[Projection] = ()) -> None:
        """Start a batch: forget everything (the inner model may have moved on), unless the
        last batch was flushed with `retain` on and its outcome kept as the new base."""
        if self._warm and self.retain:
            self._delta = {name: _Delta() for name in self._shapes}
            self._recounts, self._recount_rows = {}, {}
        else:
            self._reset()
        self._events = events
        self._projections = projections

    def forget(self) -> None:
        """Drop everything known (someone else may have written the read models)."""
        self._warm = False
        self._reset()

    def tables(self) -> list[Table]:
        return list(self._tables.values())

    def create_schema(self) -> None:
        self.inner.create_schema()  # type: ignore[attr-defined]

    def dirty(self) -> bool:
        return any(d.entries or d.masks for d in self._delta.values()) or bool(self._recounts)

    # -- fetching -------------------------------------------------------------
    def _record(self, request: ReadRequest, result: Any) -> None:
        self._results[request] = result
        kind, name = request[0], request[1]
        shape, base = self._shapes[name], self._base[name]
        if kind == "get":
            base.put(shape, request[2], result)
            present, absent = self._presence.get(name, (0, 0))
            self._presence[name] = (present + 1, absent) if result is not None else (present, absent + 1)
        elif kind == "scan":
            _, _, prefix, before, after, desc, limit = request
            for row in result:
                base.put(shape, shape.key_of(row), row)
            memo = (prefix, before, after, desc)
            known = base.scans.get(memo)
            if known is None or (known[0] is not None and (limit is None or limit > known[0])):
                base.scans[memo] = (limit, result)
            if before is None and after is None and (limit is None or len(result) < limit):
                base.complete.setdefault(len(prefix), set()).add(prefix)
        elif kind == "count":
            base.counts[request[2]] = result
        elif kind == "find":
            for row in result:
                base.put(shape, shape.key_of(row), row)

    def fetch(self, requests: Iterable[ReadRequest]) -> None:
        """Read what is not known yet of `requests` from the inner model, in one round."""
        todo = [r for r in dict.fromkeys(requests) if r not in self._results]
        if not todo:
            return
        started = time.perf_counter()
        try:
            results = self._source(todo)
        finally:
            self.stats.fetch_seconds += time.perf_counter() - started
        self.stats.fetched += len(todo)
        self.stats.rounds += 1
        for request, result in zip(todo, results, strict=True):
            self._record(request, result)

    def _need(self, requests: list[ReadRequest]) -> bool:
        """Make `requests` known; False (speculative) if some cannot be known now."""
        todo = [r for r in requests if r not in self._results]
        if not todo:
            return True
        if self._speculative:
            answered = True
            for request in todo:  # one by one: each miss names the inner reads it needs
                try:
                    self.fetch([request])
                except _Missing as miss:
                    self.missed.update(miss.requests)
                    answered = False
            return answered
        if self._strict:
            raise _Missing(todo)
        self.fetch(todo)
        return True

    def _one(self, request: ReadRequest) -> Any:
        found = self._results.get(request, _UNKNOWN)
        if found is not _UNKNOWN:
            return found
        if self._speculative:
            try:
                (found,) = self._source([request])
            except _Missing as miss:
                self.missed.update(miss.requests)
                return self._guess(request)
            self._record(request, found)
            return found
        if not self._need([request]):
            return self._guess(request)
        return self._results[request]

    def _guess(self, request: ReadRequest) -> Any:
        """What a speculative read returns for a row nobody knows yet: present if most rows of
        that table read so far were (a row with only its key), so that the guess follows the
        path the real run most likely takes and finds the reads down that path."""
        if request[0] == "get" and self._likely_present(request[1]):
            row: Row = dict.fromkeys(self._shapes[request[1]].columns)
            row.update(zip(self._shapes[request[1]].key, request[2], strict=True))
            return row
        return _PLACEHOLDERS[request[0]]

    def _likely_present(self, name: str) -> bool:
        source = self.inner if isinstance(self.inner, BatchOverlay) else self
        present, absent = source._presence.get(name, (0, 0))
        return present > absent

    # -- base reads (the state before the batch) ------------------------------
    def _base_get(self, name: str, key: tuple[Any, ...]) -> Row | None:
        base = self._base[name]
        row = base.rows.get(key, _UNKNOWN)
        if row is not _UNKNOWN:
            return row  # type: ignore[return-value]
        if base.complete and _covered(base.complete, key):
            return None
        result: Row | None = self._one(("get", name, key))
        return result

    def _base_scan(
        self, name: str, prefix: tuple[Any, ...], before: Any, after: Any, desc: bool, limit: int | None
    ) -> list[Row]:
        shape, base = self._shapes[name], self._base[name]
        if base.complete and _covered(base.complete, prefix):
            return shape.order(prefix, base.under(shape, prefix), before, after, desc, limit)
        known = base.scans.get((prefix, before, after, desc))
        if known is not None:
            known_limit, rows = known
            if known_limit is None or (limit is not None and limit <= known_limit) or len(rows) < known_limit:
                return rows[:limit] if limit is not None else rows
        return list(self._one(("scan", name, prefix, before, after, desc, limit)))

    def _base_count(self, name: str, prefix: tuple[Any, ...]) -> int:
        shape, base = self._shapes[name], self._base[name]
        if base.complete and _covered(base.complete, prefix):
            return len(base.under(shape, prefix))
        found = base.counts.get(prefix)
        if found is not None:
            return found
        return int(self._one(("count", name, prefix)))

    def _base_find(self, name: str, where: tuple[tuple[str, Any], ...], limit: int | None) -> list[Row]:
        everything = self._results.get(("find", name, where, None))
        if everything is not None:
            return everything[:limit] if limit is not None else everything  # type: ignore[no-any-return]
        return list(self._one(("find", name, where, limit)))

    # -- current reads (base + delta) -----------------------------------------
    def _shape(self, name: str) -> _Shape:
        try:
            return self._shapes[name]
        except KeyError:
            raise KeyError(f"unknown table {name!r}") from None

    def _get(self, name: str, key: tuple[Any, ...]) -> Row | None:
        delta = self._delta[name]
        entry = delta.entries.get(key)
        if entry is not None:
            return entry.row
        if delta.masks and _covered(delta.masks, key):
            return None
        return self._base_get(name, key)

    def _scan(
        self, name: str, prefix: tuple[Any, ...], before: Any, after: Any, desc: bool, limit: int | None
    ) -> list[Row]:
        shape, delta = self._shapes[name], self._delta[name]
        if limit is not None and limit <= 0:
            return []
        touched = delta.under(shape, prefix) if delta.entries else []
        if delta.masks and _covered(delta.masks, prefix):  # the whole range was deleted in this batch
            return shape.order(prefix, [e.row for _, e in touched if e.row is not None], before, after, desc, limit)
        holes = bool(delta.masks) and _has_under(delta.masks, prefix)
        if not touched and not holes:
            return self._base_scan(name, prefix, before, after, desc, limit)
        base = self._base[name]
        if holes or (base.complete and _covered(base.complete, prefix)):
            rows = self._base_scan(name, prefix, None, None, False, None)
            masks = delta.masks
            rows = [
                r for r in rows if (k := shape.key_of(r)) not in delta.entries and not (masks and _covered(masks, k))
            ]
        else:
            # The delta hides at most len(touched) base rows: ask for that many more.
            wanted = None if limit is None else limit + len(touched)
            rows = self._base_scan(name, prefix, before, after, desc, wanted)
            rows = [r for r in rows if shape.key_of(r) not in delta.entries]
        rows += [e.row for _, e in touched if e.row is not None]
        return shape.order(prefix, rows, before, after, desc, limit)

    def _count(self, name: str, prefix: tuple[Any, ...]) -> int:
        shape, delta = self._shapes[name], self._delta[name]
        touched = delta.under(shape, prefix) if delta.entries else []
        if delta.masks and _covered(delta.masks, prefix):
            return sum(1 for _, e in touched if e.row is not None)
        holes = bool(delta.masks) and _has_under(delta.masks, prefix)
        if not touched and not holes:
            return self._base_count(name, prefix)
        base = self._base[name]
        if holes or (base.complete and _covered(base.complete, prefix)):
            return len(self._scan(name, prefix, None, None, False, None))
        unknown = [("get", name, k) for k, _ in touched if k not in base.rows]
        if unknown and not self._need([*unknown, ("count", name, prefix)]):
            return 0
        n = self._base_count(name, prefix)
        for k, e in touched:
            n += (e.row is not None) - (self._base_get(name, k) is not None)
        return n

    def _find(self, name: str, where: tuple[tuple[str, Any], ...], limit: int | None) -> list[Row]:
        shape, delta = self._shapes[name], self._delta[name]
        if limit is not None and limit <= 0:
            return []
        if not delta.entries and not delta.masks:
            rows = sorted(self._base_find(name, where, None), key=shape.key_of)
            return rows[:limit] if limit is not None else rows
        masks = delta.masks
        rows = [
            r
            for r in self._base_find(name, where, None)
            if (k := shape.key_of(r)) not in delta.entries and not (masks and _covered(masks, k))
        ]
        rows += [
            e.row for e in delta.entries.values() if e.row is not None and all(e.row.get(c) == v for c, v in where)
        ]
        # In key order, whatever the batch boundaries (and as SQLite's index gives them);
        # the port promises no order, but the same reads must give the same answers.
        rows.sort(key=shape.key_of)
        return rows[:limit] if limit is not None else rows

    # -- the ReadModel port ---------------------------------------------------
    def get(self, table: str, key: Key) -> Row | None:
        row = self._get(table, self._shape(table).full_key(key))
        return None if row is None else self._copy(row)

    def get_many(self, table: str, keys: Sequence[Key]) -> list[Row]:
        shape, delta, base = self._shape(table), self._delta[table], self._base[table]
        tuples = [shape.full_key(k) for k in keys]
        unknown = [
            ("get", table, k)
            for k in tuples
            if k not in delta.entries and k not in base.rows and not (delta.masks and _covered(delta.masks, k))
        ]
        if unknown:
            self._need(unknown)
        rows = (self._get(table, k) for k in tuples)
        return [self._copy(r) for r in rows if r is not None]

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
        p = self._shape(table).prefix(prefix)
        return [self._copy(r) for r in self._scan(table, p, before, after, desc, limit)]

    def count(self, table: str, prefix: Key) -> int:
        return self._count(table, self._shape(table).prefix(prefix))

    def find(self, table: str, where: Key, limit: int | None = None) -> list[Row]:
        self._shape(table)
        return [self._copy(r) for r in self._find(table, tuple(where.items()), limit)]

    # -- writes ---------------------------------------------------------------
    def apply(self, ops: Sequence[Op]) -> None:
        if not self._speculative:
            for op in ops:  # every operation before any changes, as the adapters do
                self._check(op)
        for op in ops:
            match op:
                case Put():
                    self._put(op.table, op.row)
                case Patch():
                    self._patch(op)
                case Delete():
                    self._delete(op.table, op.key)
                case SetAdd():
                    self._set_add(op)
                case SetRemove():
                    self._set_remove(op)
                case Increment():
                    shape = self._shape(op.table)
                    key = shape.full_key(op.key)
                    self._bump(op.table, key, op.column, op.delta)
                    self._forget_recounts(op.table, key, (op.column,))
                case _:
                    raise TypeError(f"unknown operation {op!r}")

    def _check(self, op: Op) -> None:
        """Refuse what the adapters refuse (the Cassandra adapter's checks, which are the
        strictest), so a bad operation is a poison record here as it was there."""
        match op:
            case Put():
                self._shape(op.table).key_of(op.row)
            case SetAdd():
                self._shape(op.table).key_of(op.row)
                for counter in op.counters:
                    self._check_counter(op.table, op.row, counter)
            case Patch():
                shape = self._shape(op.table)
                shape.full_key(op.key)
                for c in op.values:
                    if c not in shape.values:
                        raise ValueError(f"{op.table}: cannot patch {c!r}, not a value column")
            case Increment():
                shape = self._shape(op.table)
                shape.full_key(op.key)
                if op.column not in shape.values or shape.types[op.column] is not int:
                    raise ValueError(f"{op.table}.{op.column} is not an int value column")
            case SetRemove():
                self._shape(op.table).full_key(op.key)
                for counter in op.counters:
                    self._check_counter(op.table, op.key, counter)
            case Delete():
                self._shape(op.table).prefix(op.key)
            case _:
                raise TypeError(f"unknown operation {op!r}")

    def _check_counter(self, set_table: str, key: Key, counter: CounterRef) -> None:
        """A counter must be the size of one set partition: the flush recounts it."""
        ct, st = self._shape(counter.table), self._shapes[set_table]
        where = f"counter {ct.table.name}.{counter.column} of set {set_table}"
        shape = (set_table, counter.table, counter.column)
        if shape not in self._counters_checked:
            if counter.column not in ct.values or ct.types[counter.column] is not int:
                raise CounterShapeError(f"{where}: {counter.column!r} is not an int value column")
            if len(ct.key) != st.npart:
                raise CounterShapeError(f"{where}: the counter key {ct.key} is not the set's partition")
            source = self._counter_sources.setdefault((counter.table, counter.column), set_table)
            if source != set_table:
                raise CounterShapeError(f"{where}: that counter already counts {source}; one counter, one set")
            self._counters_checked.add(shape)
        if set(counter.key) != set(ct.key):
            raise CounterShapeError(f"{where}: the counter key {sorted(counter.key)} is not the full key {ct.key}")
        partition = tuple(key[c] for c in st.key[: st.npart])
        if tuple(counter.key[c] for c in ct.key) != partition:
            raise CounterShapeError(
                f"{where}: the counter key is not the set's partition {partition}; "
                "a counter must be the size of one set partition to be recounted"
            )

    def _put(self, name: str, row: Row) -> None:
        shape = self._shape(name)
        key = shape.key_of(row)
        self._delta[name].set(shape, key, _Entry(self._normalize[name](row), whole=True))
        self._forget_recounts(name, key, None)

    def _patch(self, op: Patch) -> None:
        shape = self._shape(op.table)
        key = shape.full_key(op.key)
        if not op.values:
            return
        current = self._get(op.table, key)
        if current is None:
            return
        entry = self._entry_for_update(op.table, key, current)
        fresh = self._normalize[op.table]({**entry.row, **op.values})  # type: ignore[dict-item]
        for c in op.values:
            entry.row[c] = fresh[c]  # type: ignore[index]
        if not entry.whole:
            entry.cols.update(op.values)
        self._forget_recounts(op.table, key, tuple(op.values))

    def _entry_for_update(self, name: str, key: tuple[Any, ...], current: Row) -> _Entry:
        delta = self._delta[name]
        entry = delta.entries.get(key)
        if entry is None:
            entry = _Entry(_copy_row(current))
            delta.set(self._shapes[name], key, entry)
        return entry

    def _delete(self, name: str, key: Key) -> None:
        shape = self._shape(name)
        prefix = shape.prefix(key)
        if len(prefix) == len(shape.key):
            self._delete_row(name, prefix)
            return
        delta = self._delta[name]
        for k, _ in delta.under(shape, prefix):
            delta.drop(shape, k)
        if not _covered(delta.masks, prefix):
            delta.masks.setdefault(len(prefix), set()).add(prefix)
            delta.mask_order.append(prefix)
        for table, row_key in [rk for rk in self._recount_rows if rk[0] == name and rk[1][: len(prefix)] == prefix]:
            self._forget_recounts(table, row_key, None)

    def _delete_row(self, name: str, key: tuple[Any, ...]) -> None:
        self._delta[name].set(self._shapes[name], key, _Entry(None, cleared=True))
        self._forget_recounts(name, key, None)

    def _set_add(self, op: SetAdd) -> None:
        shape = self._shape(op.table)
        key = shape.key_of(op.row)
        if self._get(op.table, key) is None:
            self._delta[op.table].set(shape, key, _Entry(self._normalize[op.table](op.row), whole=True))
            self._forget_recounts(op.table, key, None)
            for c in op.counters:
                self._counter(c, +1)
        for c in op.counters:
            self._schedule_recount(c, op.table, key)

    def _set_remove(self, op: SetRemove) -> None:
        shape = self._shape(op.table)
        key = shape.full_key(op.key)
        if self._get(op.table, key) is not None:
            self._delete_row(op.table, key)
            for c in op.counters:
                self._counter(c, -1)
        for c in op.counters:
            self._schedule_recount(c, op.table, key)

    def _counter(self, counter: CounterRef, delta: int) -> None:
        self._bump(counter.table, self._shape(counter.table).full_key(counter.key), counter.column, delta)

    def _bump(self, name: str, key: tuple[Any, ...], column: str, by: int) -> None:
        """Add to a counter cell, creating its row (key and that cell) if absent, as SQLite does."""
        shape, delta = self._shapes[name], self._delta[name]
        if column not in shape.columns:
            raise ValueError(f"{name}: no column {column!r}")
        current = self._get(name, key)
        entry = delta.entries.get(key)
        if current is None:
            row: Row = {c: None for c in shape.columns}
            row.update(zip(shape.key, key, strict=True))
            if entry is None:
                entry = _Entry(row)
                delta.set(shape, key, entry)
            else:
                entry.row, entry.whole, entry.cols = row, False, set()
        elif entry is None:
            entry = _Entry(_copy_row(current))
            delta.set(shape, key, entry)
        assert entry.row is not None
        entry.row[column] = (entry.row[column] or 0) + by
        if not entry.whole:
            entry.cols.add(column)

    def _schedule_recount(self, counter: CounterRef, set_table: str, set_key: tuple[Any, ...]) -> None:
        if self._speculative:
            return  # recounts only matter to the flush
        ct = self._shape(counter.table)
        key = ct.full_key(counter.key)
        npart = self._shapes[set_table].npart
        self._recounts[(counter.table, key, counter.column)] = (set_table, set_key[:npart])
        self._recount_rows.setdefault((counter.table, key), set()).add(counter.column)

    def _forget_recounts(self, name: str, key: tuple[Any, ...], columns: Sequence[str] | None) -> None:
        """A later write overwrote these counter cells: their value is that write's, not a count."""
        if not self._recount_rows:
            return
        cells = self._recount_rows.get((name, key))
        if not cells:
            return
        for column in list(cells) if columns is None else [c for c in columns if c in cells]:
            cells.discard(column)
            self._recounts.pop((name, key, column), None)
        if not cells:
            del self._recount_rows[(name, key)]

    # -- flushing -------------------------------------------------------------
    def changes(self) -> BatchChanges:
        """The net effect of the batch so far."""
        out = BatchChanges()
        for name, delta in self._delta.items():
            out.deletes += [(name, prefix) for prefix in delta.mask_order]
            for key, e in delta.entries.items():
                if e.row is None or e.whole:
                    out.rows.append(RowWrite(name, key, e.row))
                else:
                    out.rows.append(RowWrite(name, key, e.row, tuple(sorted(e.cols)), e.cleared))
        out.recounts = [Recount(t, key, column, st, part) for (t, key, column), (st, part) in self._recounts.items()]
        return out

    def write(self, changes: BatchChanges) -> Recounted:
        """Write `changes` to the inner model (in bulk where it can); returns the recounts' outcome."""
        write = getattr(self.inner, "write_changes", None)
        if write is not None:
            return write(changes) or {}
        return apply_changes(self.inner, self._tables, changes)  # type: ignore[arg-type]

    def flush(self, before: Callable[[BatchChanges], None] | None = None) -> BatchChanges:
        """Write the batch's changes to the inner model (after `before(changes)`, e.g. a
        journal) and start afresh, keeping the outcome as the next base if `retain`;
        returns what was written."""
        started = time.perf_counter()
        changes = self.changes()
        self._warm = False
        recounted: Recounted = {}
        if changes:
            if before is not None:
                before(changes)
            recounted = self.write(changes)
            self.stats.flushes += 1
        if self.retain:
            self._promote(recounted)
        self.stats.flush_seconds += time.perf_counter() - started
        self.begin(self._events, self._projections)
        return changes

    def _promote(self, recounted: Recounted) -> None:
        """Make the written batch the base: what the batch did is now what the inner model holds."""
        touched = {name for name, d in self._delta.items() if d.entries or d.mask_order}
        touched |= {name for name, _, _ in recounted}
        for name in touched:
            shape, delta, base = self._shapes[name], self._delta[name], self._base[name]
            if name in self._volatile:
                self._base[name] = _Base()
                continue
            for prefix in delta.mask_order:
                n = len(prefix)
                known = base.parts.get(prefix[: shape.npart], {}) if n >= shape.npart else base.rows
                for k in [k for k in known if k[:n] == prefix]:
                    base.put(shape, k, None)
                base.complete.setdefault(n, set()).add(prefix)
            for key, entry in delta.entries.items():
                base.put(shape, key, entry.row)
            base.scans.clear()
            base.counts.clear()
        for (name, key, column), size in recounted.items():
            if name in self._volatile:
                continue
            shape, base = self._shapes[name], self._base[name]
            row = base.rows.get(key, _UNKNOWN)
            if size is None or row is None:
                base.forget(shape, key)  # left as it was, or made from nothing: read it again
            elif row is not _UNKNOWN:
                row[column] = size  # type: ignore[index]
        self._results = {r: v for r, v in self._results.items() if r[1] not in touched}
        if sum(len(b.rows) for b in self._base.values()) > self._max_rows:
            self._reset()
            return
        self._warm = True

    # -- projecting with lookahead --------------------------------------------
    def project(self, index: int, projection: int) -> list[Op]:
        """Run projection number `projection` on event number `index` of the batch against
        the current state; when it needs reads the overlay does not have, fetch them and
        what the following events will need (a lookahead), then run it again."""
        p, event = self._projections[projection], self._events[index]
        while True:
            self._strict = True
            try:
                return p.project(event, self)
            except _Missing as miss:
                self._strict = False
                self._look_ahead(index, projection, miss.requests)
            finally:
                self._strict = False

    def _look_ahead(self, index: int, projection: int, first: list[ReadRequest]) -> None:
        self.stats.lookaheads += 1
        self.fetch(first)
        self._answers = {}
        pending = range(index, min(len(self._events), index + self._lookahead_events))
        spec: BatchOverlay | None = None
        for _ in range(self._waves):
            self.stats.waves += 1
            if spec is None or not self._incremental:
                spec = BatchOverlay(self, (), _parent=self)
            spec.missed = set()
            missing: list[int] = []  # events that missed something this round
            self._strict = True
            started = time.perf_counter()
            try:
                for i in pending:
                    event, known = self._events[i], len(spec.missed)
                    self.stats.guesses += 1
                    for p in self._projections[projection if i == index else 0 :]:
                        try:
                            spec.apply(p.project(event, spec))
                        except Exception:  # a guess led it astray; the real run will tell
                            break
                    if len(spec.missed) > known:
                        missing.append(i)
            finally:
                self._strict = False
                self.stats.speculate_seconds += time.perf_counter() - started
            new = [r for r in spec.missed if r not in self._results]
            if not new:
                return
            self.fetch(new)
            if len(new) < self._settle:
                # Few reads were still unknown: rather than a whole round to confirm there
                # are no more, let the real run find any (it looks ahead again from there).
                return
            if self._incremental:
                # Only the events that missed run again, over the state the others left
                # (theirs applied twice: a guess, which the real run does not rely on).
                pending = missing  # type: ignore[assignment]

    def _answer_strictly(self, requests: list[ReadRequest]) -> list[Any]:
        """Serve a speculative overlay's reads from this one's current state, without
        fetching (a miss raises `_Missing` with the inner reads it would take). The state
        does not change during a lookahead, so answers are kept for all its waves."""
        out: list[Any] = []
        answers = self._answers
        for r in requests:
            found = answers.get(r, _UNKNOWN)
            if found is _UNKNOWN:
                kind, name = r[0], r[1]
                # Copies: the speculative overlay hands rows to projections without copying.
                if kind == "get":
                    row = self._get(name, r[2])
                    found = None if row is None else _copy_row(row)
                elif kind == "scan":
                    found = [_copy_row(row) for row in self._scan(name, *r[2:])]
                elif kind == "count":
                    found = self._count(name, r[2])
                else:
                    found = [_copy_row(row) for row in self._find(name, r[2], r[3])]
                answers[r] = found
            out.append(found)
        return out


def run_projections(
    overlay: BatchOverlay,
    events: Sequence[Event],
    projections: Sequence[Projection],
    on_ops: Callable[[int, Projection, list[Op]], None] | None = None,
) -> None:
    """Apply every projection to every event in order through the overlay (no flush)."""
    overlay.begin(events, projections)
    for i in range(len(events)):
        for n, p in enumerate(projections):
            ops = overlay.project(i, n)
            overlay.apply(ops)
            if on_ops is not None:
                on_ops(i, p, ops)


def overlaid(inner: ReadModelWriter, tables: Iterable[Table], **options: Any) -> BatchOverlay:
    return BatchOverlay(inner, tables, **options)
