"""Feed freshness: how long from an accepted post to its being readable in followers' feeds.

What is measured, exactly: for every PostCreated, the process that applies the feed
projection records `now - occurred_at` once the feed projection's operations for it
are applied (and, in the scale worker, mirrored into the Redis feed cache: the
recorder is the listener after the mirror). `occurred_at` is taken by the command
service when it decides the post, just before appending it to the log, so the figure
covers the append, the log (Kafka), the worker's batching and ordering, the
projections, the durable writes and the cache mirror; not the follower's own request.
At that moment the post is on the page of every follower: pushed entries are in
place, celebrity posts and the pull strategy's pages are merged from tables already
written. Clocks: command service and worker must agree (same host, or NTP).

Where it is read: a Prometheus histogram `glimpse_feed_freshness_seconds` on /metrics.
Embedded: kept in memory by the app process that applies projections. Scale: the
worker has no HTTP server, so it adds its observations to a Redis hash, and every API
process's /metrics shows that shared histogram (the benchmark may also read the hash:
`<prefix>feed-freshness`, fields `b<i>` per bucket, `sum`, `count`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import redis

from events.posts import PostCreated
from events.union import Event
from projections.store import Op

log = logging.getLogger(__name__)

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
NAME = "glimpse_feed_freshness_seconds"


class Freshness(Protocol):
    def observe(self, seconds: float) -> None: ...

    def snapshot(self) -> tuple[list[int], float, int]:
        """(count per bucket, the last one +Inf; not cumulative), sum, count."""
        ...


def bucket_index(seconds: float) -> int:
    for i, bound in enumerate(BOUNDS):
        if seconds <= bound:
            return i
    return len(BOUNDS)


def render(freshness: Freshness) -> str:
    counts, total, n = freshness.snapshot()
    lines = [
        f"# HELP {NAME} time from an accepted post to its being readable in followers' feeds",
        f"# TYPE {NAME} histogram",
    ]
    running = 0
    for bound, count in zip((*(str(b) for b in BOUNDS), "+Inf"), counts, strict=True):
        running += count
        lines.append(f'{NAME}_bucket{{le="{bound}"}} {running}')
    lines += [f"{NAME}_sum {total:.6f}", f"{NAME}_count {n}"]
    return "\n".join(lines) + "\n"


class MemoryFreshness:
    def __init__(self) -> None:
        self._counts = [0] * (len(BOUNDS) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:
            self._counts[bucket_index(seconds)] += 1
            self._sum += seconds

    def snapshot(self) -> tuple[list[int], float, int]:
        with self._lock:
            return list(self._counts), self._sum, sum(self._counts)


class RedisFreshness:
    def __init__(self, client: redis.Redis, prefix: str = "glimpse:") -> None:
        self._r = client
        self.key = f"{prefix}feed-freshness"

    def observe(self, seconds: float) -> None:
        pipe = self._r.pipeline(transaction=False)
        pipe.hincrby(self.key, f"b{bucket_index(seconds)}", 1)
        pipe.hincrbyfloat(self.key, "sum", seconds)
        pipe.hincrby(self.key, "count", 1)
        pipe.execute()

    def snapshot(self) -> tuple[list[int], float, int]:
        raw = {(k.decode() if isinstance(k, bytes) else k): v for k, v in self._r.hgetall(self.key).items()}
        counts = [int(raw.get(f"b{i}", 0)) for i in range(len(BOUNDS) + 1)]
        return counts, float(raw.get("sum", 0.0)), int(raw.get("count", 0))


class FreshnessRecorder:
    """Projection listener `(event, projection_name, ops)`: observes each post once the
    feed projection's operations for it are applied. A metric must never fail the
    batch it measures, so errors are logged and dropped."""

    def __init__(self, freshness: Freshness, clock: Callable[[], float] = time.time, projection: str = "feed") -> None:
        self.freshness = freshness
        self._clock = clock
        self._projection = projection

    def __call__(self, event: Event, projection: str, ops: Sequence[Op]) -> None:
        if projection != self._projection or not isinstance(event, PostCreated):
            return
        try:
            self.freshness.observe(max(0.0, self._clock() - event.occurred_at.timestamp()))
        except Exception as exc:
            log.warning("feed freshness not recorded: %s", exc)


def safe_render(freshness: Freshness) -> Callable[[], str]:
    """For /metrics: the histogram, or nothing while its store cannot answer."""

    def metrics() -> str:
        try:
            return render(freshness)
        except Exception as exc:
            log.warning("feed freshness unavailable for /metrics: %s", exc)
            return ""

    return metrics
