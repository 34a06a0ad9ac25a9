"""Redis adapters of the scale stack: pub/sub, the home-feed cache, hot counters.

Every key and channel starts with a prefix (deployment or test isolation), and
keys that a script touches together share a hash tag so they stay usable on a
Redis Cluster. Nothing connects until the first command.
"""

from __future__ import annotations

import threading
import time

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

# Short: a cache or a publish that cannot answer quickly is treated as down.
SOCKET_TIMEOUT = 2.0


def sync_client(url: str) -> redis.Redis:
    """A thread-safe (pooled) client for worker threads and the synchronous read port.

    One quick retry only: the read path falls back to the durable tables and the
    worker retries its whole batch, so redis-py's default backoff (seconds) would
    only stall a request.
    """
    return redis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1),
    )


class Breaker:
    """After a Redis error, readers skip the cache for `cool_down` seconds.

    A cache that is down then costs one failed call per cool-down, not a connect
    timeout on every request.
    """

    def __init__(self, cool_down: float = 1.0) -> None:
        self.cool_down = cool_down
        self._open_until = 0.0
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """True when the cache may be tried."""
        return time.monotonic() >= self._open_until

    def trip(self) -> None:
        with self._lock:
            self._open_until = time.monotonic() + self.cool_down
