"""The home-feed cache (DESIGN.md §5): the newest part of each feed in a Redis sorted set,
in front of the durable feed table.

Two halves: `FeedCacheMirror`, a projection listener that replays the feed
projection's operations on the cached sets, and `CachedFeedReadModel`, a ReadModel
decorator that answers a feed page from Redis when the cache holds all of it and
otherwise reads the durable table (warming the cache when the user has none).

Encoding. Every member has score 0, so the set is ordered by member bytes, and a
member is the post id as 8 big-endian bytes followed by the author id (8 bytes):
byte order equals numeric order for every 64-bit id, with no float rounding (a
score is a double, exact only to 2^53, and post ids are ~2^60). A page is one
ZRANGE ... BYLEX REV LIMIT from the cursor, and removing a post is a lex range on
its 8-byte prefix, since a Delete of the feed table names the post but not its
author. 16-byte members keep the set compact: see `measure.py` for bytes per entry.

What a cached set means. It holds the newest entries of the durable feed with no
gap: when it also holds the empty member (the "floor", which sorts first) it holds
the whole feed; without the floor it holds only the head, so a page running past
its oldest entry reads the durable table. Trimming to the cap removes the lowest
members, the floor first, so a trimmed set becomes a head. An entry older than a
head's oldest is not added (the entries between them are not there). These rules
need to look at the set before writing, so the mirror runs one Lua script per
user and batch, pipelined across users.

Races. The mirror only changes sets that exist: a user without a cached feed gets
one from the durable table at their next read. A read that misses takes a lease
(a random token), reads the durable table, and stores the set only if the lease
is still its own; the mirror deletes the lease on every change it mirrors, so a
warm-up whose durable read might predate a change never publishes. The mirror
runs after the durable write (the worker calls listeners after applying and
before saving positions), so a change either reached the durable read or kills
the lease. Caches expire after `ttl_seconds` without reads: inactive users cost
nothing and any divergence heals. The read path re-checks privacy on every page,
so even a briefly stale entry never leaks.

If Redis fails, reads fall back to the durable table; the mirror raises, so the
worker retries the batch (every script here is idempotent).
"""

from __future__ import annotations

import logging
import secrets
import struct
from collections.abc import Sequence
from typing import Any

import redis

from events.union import Event
from infra.redis_adapters import Breaker
from infra.redis_adapters.scripts import LuaScript, run_pipeline
from projections.feed import FEED
from projections.feed import PROJECTION as FEED_PROJECTION
from projections.store import Delete, Gets, Key, Op, Put, ReadModel, Row, Scan, SetAdd, get_each, scan_each

log = logging.getLogger(__name__)

# The newest entries kept per cached feed: six 20-post pages. With the floor this is
# 121 members, under Redis's default zset-max-listpack-entries (128), so each feed
# stays in the compact listpack encoding (~20 bytes an entry, against ~100 in the
# skiplist encoding). A deployment that raises that setting can raise the cap with it.
DEFAULT_CAP = 120
DEFAULT_TTL_SECONDS = 3 * 24 * 3600
WARM_LEASE_MS = 10_000  # longest durable read a warm-up may take and still publish

FLOOR = b""  # sorts before every entry: "nothing older than this set exists"
_ENTRY = struct.Struct(">Qq")
_POST = struct.Struct(">Q")
_MAX_POST = (1 << 64) - 1

if (FEED.partition, FEED.clustering, FEED.values) != (("user_id",), ("post_id",), ("author_id",)):
    raise RuntimeError(f"the feed cache encodes {FEED}: update its member layout with the table")

MIRROR = LuaScript(
    """
-- KEYS: feed set, warm-up lease. ARGV: cap, then (kind, member, lo, hi) per operation.
local feed, lease = KEYS[1], KEYS[2]
redis.call('DEL', lease)
local cap = tonumber(ARGV[1])
for i = 2, #ARGV, 4 do
  if redis.call('EXISTS', feed) == 0 then return 0 end
  local kind, member, lo, hi = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  if kind == 'D' then
    redis.call('DEL', feed)
    return 0
  elseif kind == 'R' then
    redis.call('ZREMRANGEBYLEX', feed, lo, hi)
  else
    local old = redis.call('ZRANGE', feed, lo, hi, 'BYLEX')
    if not (#old == 1 and old[1] == member) then
      if #old > 0 then redis.call('ZREM', feed, unpack(old)) end
      redis.call('ZADD', feed, 0, member)
      if #old == 0 and redis.call('ZRANK', feed, member) == 0 then
        redis.call('ZREM', feed, member)
      end
    end
  end
end
local n = redis.call('ZCARD', feed)
if n > cap and (n - 1 > cap or redis.call('ZRANGE', feed, 0, 0)[1] ~= '') then
  redis.call('ZREMRANGEBYRANK', feed, 0, n - cap - 1)
end
return 1
"""
)

WARM = LuaScript(
    """
-- KEYS: feed set, warm-up lease. ARGV: lease token, ttl seconds, members.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[1])
for i = 3, #ARGV, 500 do
  local args = {}
  for j = i, math.min(i + 499, #ARGV) do
    args[#args + 1] = 0
    args[#args + 1] = ARGV[j]
  end
  redis.call('ZADD', KEYS[1], unpack(args))
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def encode_entry(post_id: Any, author_id: Any) -> bytes | None:
    """The member of a feed row, or None if the row cannot be cached exactly."""
    if not (
        _is_int(post_id) and _is_int(author_id) and 0 <= post_id <= _MAX_POST and -(1 << 63) <= author_id < 1 << 63
    ):
        return None
    return _ENTRY.pack(post_id, author_id)


def entry(post_id: int, author_id: int) -> bytes:
    """`encode_entry` for ids known to fit."""
    member = encode_entry(post_id, author_id)
    if member is None:
        raise ValueError(f"feed entry ({post_id}, {author_id}) does not fit the cache layout")
    return member


def decode_entry(member: bytes) -> tuple[int, int]:
    post_id, author_id = _ENTRY.unpack(member)
    return int(post_id), int(author_id)


def post_range(post_id: int) -> tuple[bytes, bytes]:
    """Lex bounds of every member of `post_id` (whatever its author)."""
    upper = b"+" if post_id == _MAX_POST else b"(" + _POST.pack(post_id + 1)
    return b"[" + _POST.pack(post_id), upper


class FeedKeys:
    """Key names; a user's set and lease share a hash tag (one Cluster slot) for the scripts."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def feed(self, user_id: Any) -> str:
        return f"{self.prefix}feed:{{{user_id}}}"

    def lease(self, user_id: Any) -> str:
        return f"{self.prefix}feed-warm:{{{user_id}}}"

    def all_feeds(self) -> str:
        return f"{self.prefix}feed:*"


_DROP = (b"D", b"", b"", b"")


class FeedCacheMirror:
    """Projection listener `(event, projection_name, ops)`: mirrors the feed table's operations."""

    def __init__(
        self, client: redis.Redis, *, prefix: str = "glimpse:", cap: int = DEFAULT_CAP, projection: str | None = None
    ) -> None:
        if cap < 1:
            raise ValueError("the feed cache cap must be positive")
        self._r = client
        self.keys = FeedKeys(prefix)
        self.cap = cap
        self._projection = projection or FEED_PROJECTION.name

    def __call__(self, event: Event, projection: str, ops: Sequence[Op]) -> None:
        if projection == self._projection:
            self.apply(ops)

    def apply(self, ops: Sequence[Op]) -> int:
        """Mirror `ops` (of any tables; only the feed's count) in one round trip; returns users touched."""
        per_user: dict[Any, list[bytes]] = {}
        for op in ops:
            if op.table != FEED.name:
                continue
            if isinstance(op, Delete) and "user_id" not in op.key:
                self.drop_all()  # every feed at once: no projection does this today
                per_user.clear()
                continue
            user = (op.row if isinstance(op, Put | SetAdd) else op.key)["user_id"]
            per_user.setdefault(user, []).extend(self._encode(op))
        if not per_user:
            return 0

        def build(pipe: Any) -> None:
            for user, args in per_user.items():
                MIRROR.queue(pipe, [self.keys.feed(user), self.keys.lease(user)], [self.cap, *args])

        run_pipeline(self._r, [MIRROR], build)
        return len(per_user)

    @staticmethod
    def _encode(op: Op) -> tuple[bytes, ...]:
        if isinstance(op, Put):
            member = encode_entry(op.row.get("post_id"), op.row.get("author_id"))
            if member is None:
                return _DROP  # a row the member layout cannot hold exactly: stop caching this feed
            return (b"A", member, *post_range(op.row["post_id"]))
        if isinstance(op, Delete):
            post_id = op.key.get("post_id")
            if post_id is None:
                return _DROP
            if not _is_int(post_id) or not 0 <= post_id <= _MAX_POST:
                return ()  # no such entry can be cached
            return (b"R", b"", *post_range(post_id))
        # Patch, SetAdd, SetRemove, Increment: the feed projection emits none of these;
        # rather than guess what they change, forget the user's cached feed.
        return _DROP

    def drop_all(self) -> None:
        batch: list[Any] = []
        for key in self._r.scan_iter(match=self.keys.all_feeds(), count=1000):
            batch.append(key)
            if len(batch) == 500:
                self._r.delete(*batch)
                batch = []
        if batch:
            self._r.delete(*batch)


class CachedFeedReadModel:
    """ReadModel decorator: home-feed pages from Redis, everything else from `inner`.

    Cached: `scan(FEED, {"user_id": u}, before=<post id or None>, desc=True, limit=n)`,
    the query the feed route makes. Any other call reads `inner` unchanged.
    """

    def __init__(
        self,
        inner: ReadModel,
        client: redis.Redis,
        *,
        prefix: str = "glimpse:",
        cap: int = DEFAULT_CAP,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
    ) -> None:
        if cap < 1 or ttl_seconds < 1:
            raise ValueError("the feed cache cap and ttl must be positive")
        self.inner = inner
        self._r = client
        self.keys = FeedKeys(prefix)
        self.cap = cap
        self.ttl_seconds = ttl_seconds
        self.breaker = Breaker()
        self.stats = {"hits": 0, "warmed": 0, "misses": 0, "errors": 0}

    # -- delegated -------------------------------------------------------------
    def get(self, table: str, key: Key) -> Row | None:
        return self.inner.get(table, key)

    def get_many(self, table: str, keys: Sequence[Key]) -> list[Row]:
        return self.inner.get_many(table, keys)

    def get_many_each(self, gets: Sequence[Gets]) -> list[list[Row]]:
        return get_each(self.inner, gets)

    def count(self, table: str, prefix: Key) -> int:
        return self.inner.count(table, prefix)

    def find(self, table: str, where: Key, limit: int | None = None) -> list[Row]:
        return self.inner.find(table, where, limit)

    # -- the feed page -----------------------------------------------------------
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
        def durable() -> list[Row]:
            return self.inner.scan(table, prefix, before=before, after=after, desc=desc, limit=limit)

        if not (
            table == FEED.name
            and set(prefix) == {"user_id"}
            and desc
            and after is None
            and limit is not None
            and limit > 0
            and (before is None or (_is_int(before) and 0 < before <= _MAX_POST))
            and self.breaker.closed
        ):
            return durable()
        user = prefix["user_id"]
        try:
            exists, rows = self._page(user, before, limit)
        except redis.RedisError as exc:
            self._failed(exc)
            return durable()
        if rows is not None:
            self.stats["hits"] += 1
            return rows
        if exists:
            self.stats["misses"] += 1  # a page past the cached head
            return durable()
        self.stats["warmed"] += 1
        return self._warm(user, before, limit, durable)

    def scan_many(self, scans: Sequence[Scan]) -> list[list[Row]]:
        """Feed pages one by one (each may be a cache hit), the other scans together."""
        out: list[list[Row]] = [[] for _ in scans]
        rest = [i for i, s in enumerate(scans) if s.table != FEED.name]
        for i, s in enumerate(scans):
            if s.table == FEED.name:
                out[i] = self.scan(s.table, s.prefix, before=s.before, after=s.after, desc=s.desc, limit=s.limit)
        for i, rows in zip(rest, scan_each(self.inner, [scans[i] for i in rest]), strict=True):
            out[i] = rows
        return out

    def _failed(self, exc: Exception) -> None:
        self.stats["errors"] += 1
        self.breaker.trip()
        log.warning("feed cache unavailable for %.1f s, reading the feed table: %s", self.breaker.cool_down, exc)

    def _page(self, user: Any, before: int | None, limit: int) -> tuple[bool, list[Row] | None]:
        """(set exists, the page if the cached set holds all of it)."""
        top = b"+" if before is None else b"(" + _POST.pack(before)
        feed = self.keys.feed(user)

        def build(pipe: Any) -> None:
            pipe.zrange(feed, top, b"-", desc=True, bylex=True, offset=0, num=limit)
            pipe.expire(feed, self.ttl_seconds)  # a read keeps an active user's feed; answers "exists"

        members, exists = run_pipeline(self._r, [], build)
        if not exists:
            return False, None
        rows: list[Row] = []
        for member in members:
            if member == FLOOR:
                return True, rows  # the whole rest of the feed
            post_id, author_id = decode_entry(member)
            rows.append({"user_id": user, "post_id": post_id, "author_id": author_id})
        return True, rows if len(rows) == limit else None

    def _warm(self, user: Any, before: int | None, limit: int, durable: Any) -> list[Row]:
        token = secrets.token_hex(8)
        feed, lease = self.keys.feed(user), self.keys.lease(user)
        try:
            self._r.set(lease, token, px=WARM_LEASE_MS)
        except redis.RedisError as exc:
            self._failed(exc)
            return list(durable())
        head = self.inner.scan(FEED.name, {"user_id": user}, desc=True, limit=self.cap + 1)
        whole = len(head) <= self.cap
        head = head[: self.cap]
        members = [encode_entry(r.get("post_id"), r.get("author_id")) for r in head]
        if all(m is not None for m in members):
            try:
                WARM.run(self._r, [feed, lease], [token, self.ttl_seconds, *members, *([FLOOR] if whole else [])])
            except redis.RedisError as exc:
                self._failed(exc)
        page = [r for r in head if before is None or r["post_id"] < before][:limit]
        if len(page) == limit or whole:
            return page
        return list(durable())
