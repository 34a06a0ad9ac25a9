"""Putting records from many partitions back into the order they were written.

Projections read each other's tables while projecting (the feed's fan-out reads the
follower list and the author's privacy as of the PostCreated), so the read models
depend on the order of events across streams, not only within a key. The embedded
mode applies its one log in append order. Kafka only orders each partition, and a
consumer catching up on a backlog sees partitions at different speeds: a worker
that applied records as they came would, say, fan a post out before the author's
AccountRegistered, and build read models that differ from the embedded ones.

So the worker merges partitions by event id (time-sortable, increasing in append
order within one writer), the way Kafka Streams aligns partitions by timestamp:
records stay FIFO within their partition, and the smallest head goes first, but
only once every assigned partition either has a record waiting or is known to be
caught up (its high watermark is not beyond what we have seen). Otherwise a record
with a smaller id may still be on its way, and we wait for it.

Two safety valves keep a stalled partition from stalling the worker: past `max_held`
records or `max_wait` seconds of waiting, the smallest head goes anyway (with a
warning). Either only weakens the order, never loses or repeats a record.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Partition = tuple[str, int]


class EventTimeMerger(Generic[T]):
    def __init__(self, max_held: int, max_wait: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._queues: dict[Partition, deque[tuple[int, T]]] = {}
        self._next: dict[Partition, int] = {}  # offset after the last record added, per partition
        self._held = 0
        self._max_held = max_held
        self._max_wait = max_wait
        self._clock = clock
        self._blocked_since: float | None = None

    def held(self) -> int:
        return self._held

    def clear(self) -> None:
        """Forget everything held (the consumer will deliver unacknowledged records again)."""
        self._queues.clear()
        self._next.clear()
        self._held = 0
        self._blocked_since = None

    def add(self, tp: Partition, offset: int, order: int, item: T) -> bool:
        """Hold a record; False if this partition already gave us that offset (a consumer
        that seeks back to its committed offset after a rebalance delivers it again, and
        the first copy is still held, being applied, or applied)."""
        if offset < self._next.get(tp, 0):
            return False
        self._queues.setdefault(tp, deque()).append((order, item))
        self._next[tp] = offset + 1
        self._held += 1
        return True

    def pop_ready(
        self,
        assigned: Collection[Partition],
        highwater: Callable[[Partition], int | None],
        applied: Mapping[Partition, int],
        limit: int,
    ) -> list[T]:
        """Up to `limit` records that may go now, in merged order.

        `highwater(tp)` is the partition's end offset as last fetched (None if not known
        yet); `applied` the last applied offset per partition, for partitions this run
        has not received anything from.
        """
        for tp in [tp for tp in self._queues if tp not in assigned]:
            self._held -= len(self._queues.pop(tp))  # revoked: the new owner reads them again
            self._next.pop(tp, None)
        out: list[T] = []
        waiting = self._waiting_for(assigned, highwater, applied)
        if not waiting:
            self._blocked_since = None
        elif self._stalled():
            log.warning(
                "applying out of merged order: %d records held, still waiting for %s",
                self._held,
                ", ".join(f"{t}:{p}" for t, p in sorted(waiting)[:5]),
            )
            waiting = []  # this round goes ahead regardless
        while len(out) < limit and not waiting:
            heads = [(q[0][0], tp) for tp, q in self._queues.items() if q]
            if not heads:
                break
            _, tp = min(heads)
            queue = self._queues[tp]
            out.append(queue.popleft()[1])
            self._held -= 1
            if not queue and not self._caught_up(tp, highwater, applied):
                waiting.append(tp)  # its next record may be older than the other heads
        return out

    def _waiting_for(
        self,
        assigned: Collection[Partition],
        highwater: Callable[[Partition], int | None],
        applied: Mapping[Partition, int],
    ) -> list[Partition]:
        return [tp for tp in assigned if not self._queues.get(tp) and not self._caught_up(tp, highwater, applied)]

    def _stalled(self) -> bool:
        now = self._clock()
        if self._blocked_since is None:
            self._blocked_since = now
        return self._held >= self._max_held or now - self._blocked_since >= self._max_wait

    def _caught_up(
        self, tp: Partition, highwater: Callable[[Partition], int | None], applied: Mapping[Partition, int]
    ) -> bool:
        end = highwater(tp)
        if end is None:
            return False
        seen = max(self._next.get(tp, 0), applied.get(tp, -1) + 1)
        return end <= seen
