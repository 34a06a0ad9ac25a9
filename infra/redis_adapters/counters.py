"""Hot counter rows (likes and comments per post, followers and following, posts per user)
cached in Redis in front of the durable read model, read-through and invalidated on change.

`CachedCountersReadModel` answers `get` of a counter row from Redis, or reads the
durable row and caches it (an absent row is cached too: most posts have no likes).
`CounterInvalidator` is a projection listener that deletes the cached row of every
counter an event's operations may have moved. The worker calls listeners after
the durable write and before saving its positions, so once a write's consistency
token is reached its counters are no longer cached: a read can never see the old
count after the worker applied the change.

A read-through that raced with a change must not store the old value: a miss
first takes a lease (`SET NX` of a random token on the very key), reads the
durable row, and stores it only if the key still holds its token (Lua). The
invalidation DELs that key, lease and all, so a durable read that might predate
the change never becomes the cached value.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import redis

from events.union import Event
from infra.redis_adapters import Breaker
from infra.redis_adapters.scripts import LuaScript, run_pipeline
from projections.engagement.tables import ENGAGEMENT_COUNTS
from projections.graph import GRAPH_COUNTS
from projections.posts import USER_POST_COUNTS
from projections.store import (
    Delete,
    Gets,
    Increment,
    Key,
    Op,
    Patch,
    Put,
    ReadModel,
    Row,
    Scan,
    SetAdd,
    SetRemove,
    Table,
    get_each,
    scan_each,
)

log = logging.getLogger(__name__)

COUNTER_TABLES = (ENGAGEMENT_COUNTS, GRAPH_COUNTS, USER_POST_COUNTS)
DEFAULT_TTL_SECONDS = 3600
LEASE_MS = 10_000
_LEASE = b"lease:"

STORE_IF_LEASED = LuaScript(
    """
-- KEYS: the cached row. ARGV: our lease, the row, ttl seconds.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""
)


class CounterKeys:
    def __init__(self, prefix: str, tables: Iterable[Table]) -> None:
        self.prefix = prefix
        self.tables = {t.name: t for t in tables}

    def row(self, table: str, key: Key) -> str | None:
        """The key of a cached row, or None if `key` does not name one whole row of a cached table."""
        t = self.tables.get(table)
        if t is None or set(key) != set(t.key):
            return None
        return f"{self.prefix}count:{table}:" + ":".join(str(key[c]) for c in t.key)

    def pattern(self, table: str, prefix: Key) -> str:
        t = self.tables[table]
        given = ":".join(str(prefix[c]) for c in t.key[: len(prefix)])
        return f"{self.prefix}count:{table}:{given}{':' if given else ''}*"


class CachedCountersReadModel:
    """ReadModel decorator: `get` of a counter row from Redis; everything else from `inner`."""

    def __init__(
        self,
        inner: ReadModel,
        client: redis.Redis,
        *,
        prefix: str = "glimpse:",
        tables: Sequence[Table] = COUNTER_TABLES,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
    ) -> None:
        self.inner = inner
        self._r = client
        self.keys = CounterKeys(prefix, tables)
        self.ttl_seconds = ttl_seconds
        self.breaker = Breaker()
        self.stats = {"hits": 0, "misses": 0, "errors": 0}

    def get(self, table: str, key: Key) -> Row | None:
        if self.keys.row(table, key) is None:
            return self.inner.get(table, key)
        rows = self._read_through(table, [key])
        return rows[0]

    def get_many(self, table: str, keys: Sequence[Key]) -> list[Row]:
        if table not in self.keys.tables or any(self.keys.row(table, k) is None for k in keys):
            return self.inner.get_many(table, keys)
        return [row for row in self._read_through(table, keys) if row is not None]

    def get_many_each(self, gets: Sequence[Gets]) -> list[list[Row]]:
        """Counter rows through the cache (as `get_many`), every other table's together."""
        out: list[list[Row]] = [[] for _ in gets]
        rest = [i for i, g in enumerate(gets) if g.table not in self.keys.tables]
        for i, g in enumerate(gets):
            if g.table in self.keys.tables:
                out[i] = self.get_many(g.table, g.keys)
        for i, rows in zip(rest, get_each(self.inner, [gets[i] for i in rest]), strict=True):
            out[i] = rows
        return out

    def _read_through(self, table: str, keys: Sequence[Key]) -> list[Row | None]:
        """Each key's row (None: absent), in order: one round trip asks Redis for all of them
        and leases the misses, one `get_many` reads the misses, one round trip stores them."""
        if not keys:
            return []
        if not self.breaker.closed:
            return self._durable(table, keys)
        cache_keys = [str(self.keys.row(table, k)) for k in keys]
        token = _LEASE + secrets.token_hex(8).encode()

        def ask(pipe: Any) -> None:
            for cache_key in cache_keys:
                pipe.get(cache_key)
                pipe.set(cache_key, token, nx=True, px=LEASE_MS)

        try:
            answers = run_pipeline(self._r, (), ask)
        except redis.RedisError as exc:
            self._failed(exc)
            return self._durable(table, keys)
        out: list[Row | None] = [None] * len(keys)
        missed: list[int] = []
        for i in range(len(keys)):
            cached = answers[2 * i]
            if cached is not None and not cached.startswith(_LEASE):
                out[i] = orjson.loads(cached)
            else:
                missed.append(i)
        self.stats["hits"] += len(keys) - len(missed)
        self.stats["misses"] += len(missed)
        if not missed:
            return out
        for i, row in zip(missed, self._durable(table, [keys[i] for i in missed]), strict=True):
            out[i] = row
        leased = [i for i in missed if answers[2 * i + 1]]  # someone else's lease: they fill it

        def store(pipe: Any) -> None:
            for i in leased:
                STORE_IF_LEASED.queue(pipe, [cache_keys[i]], [token, orjson.dumps(out[i]), self.ttl_seconds])

        if leased:
            try:
                run_pipeline(self._r, (STORE_IF_LEASED,), store)
            except redis.RedisError as exc:
                self._failed(exc)
        return out

    def _durable(self, table: str, keys: Sequence[Key]) -> list[Row | None]:
        """Each key's durable row (None: absent), in order, in one `get_many`."""
        if len(keys) == 1:
            return [self.inner.get(table, keys[0])]
        columns = self.keys.tables[table].key
        found = {tuple(r[c] for c in columns): r for r in self.inner.get_many(table, keys)}
        return [found.get(tuple(k[c] for c in columns)) for k in keys]

    def _failed(self, exc: Exception) -> None:
        self.stats["errors"] += 1
        self.breaker.trip()
        log.warning("counter cache unavailable for %.1f s, reading the table: %s", self.breaker.cool_down, exc)

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


class CounterInvalidator:
    """Projection listener: forget the cached row of every counter `ops` may change."""

    def __init__(self, client: redis.Redis, *, prefix: str = "glimpse:", tables: Sequence[Table] = COUNTER_TABLES):
        self._r = client
        self.keys = CounterKeys(prefix, tables)

    def __call__(self, event: Event, projection: str, ops: Sequence[Op]) -> None:
        self.apply(ops)

    def apply(self, ops: Sequence[Op]) -> int:
        """Delete the cached rows `ops` touch, in one round trip; returns how many keys were named."""
        doomed: dict[str, None] = {}
        for op in ops:
            touched: list[tuple[str, Key]] = []
            match op:
                case SetAdd() | SetRemove():
                    touched = [(c.table, c.key) for c in op.counters]
                    touched.append((op.table, op.row if isinstance(op, SetAdd) else op.key))
                case Put():
                    touched = [(op.table, op.row)]
                case Patch() | Delete() | Increment():
                    touched = [(op.table, op.key)]
            for table, key in touched:
                if table not in self.keys.tables:
                    continue
                t = self.keys.tables[table]
                whole = {c: key[c] for c in t.key if c in key}
                cache_key = self.keys.row(table, whole)
                if cache_key is not None:
                    doomed[cache_key] = None
                else:  # a prefix Delete: every cached row under it
                    for found in self._r.scan_iter(match=self.keys.pattern(table, whole), count=1000):
                        doomed[found.decode() if isinstance(found, bytes) else found] = None
        if doomed:
            names = list(doomed)
            for start in range(0, len(names), 500):
                self._r.delete(*names[start : start + 500])
        return len(doomed)
