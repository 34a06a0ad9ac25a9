"""64-bit time-sortable ids (Snowflake layout).

Event ids double as post, story, comment and media ids, so anything that sorts
by id sorts by creation time, and feeds can page by id alone.

    41 bits  milliseconds since EPOCH_MS (good until 2093)
    10 bits  shard (process) number
    12 bits  sequence within the millisecond
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
SHARD_BITS = 10
SEQUENCE_BITS = 12
MAX_SHARD = (1 << SHARD_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1


def compose_id(ms: int, shard: int, sequence: int) -> int:
    return ((ms - EPOCH_MS) << (SHARD_BITS + SEQUENCE_BITS)) | (shard << SEQUENCE_BITS) | sequence


def id_timestamp_ms(event_id: int) -> int:
    return (event_id >> (SHARD_BITS + SEQUENCE_BITS)) + EPOCH_MS


def min_id_at(ms: int) -> int:
    """The smallest id that could have been made at `ms`: a cursor for "newer than"."""
    return compose_id(max(ms, EPOCH_MS), 0, 0)


class IdGenerator:
    """Thread-safe, strictly increasing ids for one shard."""

    def __init__(self, shard: int = 0, clock_ms: Callable[[], int] | None = None) -> None:
        if not 0 <= shard <= MAX_SHARD:
            raise ValueError(f"shard must be in 0..{MAX_SHARD}")
        self._shard = shard
        self._clock = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._lock = threading.Lock()
        self._last_ms = 0
        self._sequence = 0

    def __call__(self) -> int:
        with self._lock:
            ms = max(self._clock(), self._last_ms)  # never go backwards with the wall clock
            if ms == self._last_ms:
                self._sequence += 1
                if self._sequence > MAX_SEQUENCE:
                    ms += 1  # borrow the next millisecond rather than block
                    self._sequence = 0
            else:
                self._sequence = 0
            self._last_ms = ms
            return compose_id(ms, self._shard, self._sequence)
