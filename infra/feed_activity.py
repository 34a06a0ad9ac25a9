"""Who read their home feed, and whom the fan-out skipped: the `ActivityStore` adapters of
the two modes (the port and its contract are in projections/feed/activity.py).

SQLite (embedded): a table beside the read models, on the projector's connection, so
a skip mark commits in the same transaction as the fan-out that skipped. It is not a
read-model `Table`: replay neither writes nor compares it.

Redis (scale): per bucket of users, a hash of last reads (user -> ms) and a hash of
marks (user -> when they last missed a push). One pipelined round trip reads a whole
fan-out chunk, a second marks the skipped. A bucket's two hashes share a hash tag (one
Cluster slot). A mark is cleared only once `grace_ms` old (see FLUSH_GRACE_MS); a
reader's first read marks them with time 0, which the first rebuild clears.

Failure: activity only saves writes, so when Redis cannot answer the fan-out treats
everyone as active (pushes to all, nothing is skipped, nothing needs a mark), and a
reader is served without a rebuild; marks set before the outage stay in Redis and are
taken at the next read after it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

import redis

from infra.redis_adapters.scripts import LuaScript, run_pipeline

log = logging.getLogger(__name__)

SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS feed_activity ("
    "user_id INTEGER PRIMARY KEY, last_read_ms INTEGER, missed INTEGER NOT NULL DEFAULT 0)"
)
_IN_CHUNK = 500  # SQLite host parameters per statement, well under its limit
# Reads this close to the recorded one are not written: activity windows are days long, so an
# active reader's last read may lag by this much without changing who the fan-out skips.
READ_GRANULARITY_MS = 60_000


class SqliteActivityStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.execute(SQLITE_SCHEMA)

    def active_among(self, user_ids: Sequence[int], since_ms: int) -> list[int]:
        last: dict[int, int | None] = {}
        marked: set[int] = set()
        for start in range(0, len(user_ids), _IN_CHUNK):
            chunk = list(user_ids[start : start + _IN_CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT user_id, last_read_ms, missed FROM feed_activity WHERE user_id IN ({marks})", chunk
            )
            for u, ms, missed in rows:
                last[u] = ms
                if missed:
                    marked.add(u)
        active = [u for u in user_ids if (ms := last.get(u)) is not None and ms >= since_ms]
        chosen = set(active)
        # Marking a user marked already would rewrite their row: at a million users each such
        # write dirties a page of its own, written to the WAL at the commit.
        skipped = [u for u in user_ids if u not in chosen and u not in marked]
        if skipped:
            self._conn.executemany(
                "INSERT INTO feed_activity (user_id, last_read_ms, missed) VALUES (?, NULL, 1) "
                "ON CONFLICT (user_id) DO UPDATE SET missed = 1",
                [(u,) for u in skipped],
            )
        return active

    def record_read(self, user_id: int, at_ms: int) -> bool:
        row = self._conn.execute(
            "SELECT last_read_ms, missed FROM feed_activity WHERE user_id = ?", (user_id,)
        ).fetchone()
        if row is not None and row[0] is not None and 0 <= at_ms - row[0] < READ_GRANULARITY_MS:
            return bool(row[1])  # read a moment ago: nothing to write (a commit per page read was its cost)
        # A row made by a skip mark has no last read: that user is marked already.
        self._conn.execute(
            "INSERT INTO feed_activity (user_id, last_read_ms, missed) VALUES (?, ?, 1) "
            "ON CONFLICT (user_id) DO UPDATE SET last_read_ms = excluded.last_read_ms",
            (user_id, at_ms),
        )
        return row is None or bool(row[1])

    def clear_missed(self, user_id: int) -> None:
        self._conn.execute("UPDATE feed_activity SET missed = 0 WHERE user_id = ?", (user_id,))


BUCKET_BITS = 6  # 64 buckets
_GOLDEN = 0x9E3779B97F4A7C15  # Fibonacci hashing: ids are time-sortable, their low bits are mostly zero


def bucket_of(user_id: int) -> int:
    return ((user_id * _GOLDEN) & 0xFFFFFFFFFFFFFFFF) >> (64 - BUCKET_BITS)


# Marks carry the Redis server's time (one clock for the worker and every API process).
_NOW_MS = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)"
MARK = LuaScript(
    _NOW_MS
    + """
-- KEYS: a bucket's marks. ARGV: users skipped now.
for i = 1, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], now) end
return #ARGV
"""
)
CLEAR = LuaScript(
    _NOW_MS
    + """
-- KEYS: a bucket's marks. ARGV: user, grace ms. Only a mark older than the grace goes.
local at = redis.call('HGET', KEYS[1], ARGV[1])
if at and tonumber(at) <= now - tonumber(ARGV[2]) then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""
)
# How long a rebuilt feed stays marked. The worker marks a skipped follower while it
# projects a batch, but (with its batch overlay) writes the post to its author's timeline
# only when the batch is flushed; a rebuild in between would miss the post. Until the
# grace has passed since the last mark, reads keep rebuilding (cheap: entries already
# there are not written again), so a flush that lands within it is picked up.
FLUSH_GRACE_MS = 60_000


class RedisActivityStore:
    def __init__(self, client: redis.Redis, prefix: str = "glimpse:", grace_ms: int = FLUSH_GRACE_MS) -> None:
        self._r = client
        self.prefix = prefix
        self.grace_ms = grace_ms

    def reads_key(self, bucket: int) -> str:
        return f"{self.prefix}feed-read:{{{bucket}}}"

    def missed_key(self, bucket: int) -> str:
        return f"{self.prefix}feed-missed:{{{bucket}}}"

    def active_among(self, user_ids: Sequence[int], since_ms: int) -> list[int]:
        by_bucket: dict[int, list[int]] = {}
        for user in user_ids:
            by_bucket.setdefault(bucket_of(user), []).append(user)
        groups = list(by_bucket.items())
        try:

            def ask(pipe: Any) -> None:
                for bucket, users in groups:
                    pipe.hmget(self.reads_key(bucket), users)

            answers = run_pipeline(self._r, [], ask)
            last = {
                u: v
                for (_, users), values in zip(groups, answers, strict=True)
                for u, v in zip(users, values, strict=True)
            }
            active = {u for u, v in last.items() if v is not None and int(v) >= since_ms}
            skipped = [(b, left) for b, users in groups if (left := [u for u in users if u not in active])]
            if skipped:

                def mark(pipe: Any) -> None:
                    for bucket, users in skipped:
                        MARK.queue(pipe, [self.missed_key(bucket)], users)

                run_pipeline(self._r, [MARK], mark)
        except redis.RedisError as exc:
            log.warning("feed activity unavailable, pushing to every follower: %s", exc)
            return list(user_ids)
        return [u for u in user_ids if u in active]

    def record_read(self, user_id: int, at_ms: int) -> bool:
        bucket, user = bucket_of(user_id), str(user_id)

        def build(pipe: Any) -> None:
            pipe.hset(self.reads_key(bucket), user, at_ms)  # 1 if the user was never seen
            pipe.hexists(self.missed_key(bucket), user)

        try:
            first_read, missed = run_pipeline(self._r, [], build)
            if first_read and not missed:
                # Nobody knows what was skipped, so mark. Dated 0, not now: the worker dates
                # its own marks, so no flush can be pending behind this one, and the rebuild
                # that follows clears it (a grace here made every read for a minute rebuild).
                # HSETNX: a mark the worker set meanwhile keeps its date.
                self._r.hsetnx(self.missed_key(bucket), user, 0)
        except redis.RedisError as exc:
            log.warning("feed activity unavailable, serving the feed as it is: %s", exc)
            return False
        return bool(first_read) or bool(missed)

    def clear_missed(self, user_id: int) -> None:
        try:
            CLEAR.run(self._r, [self.missed_key(bucket_of(user_id))], [str(user_id), self.grace_ms])
        except redis.RedisError as exc:  # the mark stays: the next read rebuilds once more
            log.warning("feed activity unavailable, a rebuilt feed stays marked: %s", exc)
