"""Who reads their home feed: the port the hybrid fan-out asks, and two small adapters.

Activity is operational state, not a fact in the log: reading a feed appends no event.
The fan-out asks `active_among` which followers read their feed recently enough to
deserve a push; those it skips are marked as having missed one. A read calls
`record_read`, which answers whether the reader is marked; if so the read path
rebuilds the feed from the followees' own posts, writes it back, and only then calls
`clear_missed` (a rebuild that fails leaves the mark for the next read to try again).

No locks are needed. The fan-out reads the followers' last reads, then marks the
skipped; the posts projection wrote the post to its author's timeline before the feed
projection asked (registry order). If the reader's `record_read` came first, the
fan-out sees a recent read and pushes. If the fan-out's check came first, its post is
already in the timeline the rebuild reads, and its mark is either there when the
reader looks (rebuild) or lands after `clear_missed` (one more rebuild next time).

A user never seen before is marked by their first `record_read`: after the store lost
its data (a Redis flush, a strategy switch from pull) nobody knows what was skipped,
so each feed is rebuilt once.

Adapters: `MemoryActivityStore` (tests), `EVERYONE_ACTIVE` (replay and the push
strategy: nothing is ever skipped); SQLite and Redis ones live in infra/feed_activity.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class ActivityStore(Protocol):
    def active_among(self, user_ids: Sequence[int], since_ms: int) -> list[int]:
        """The users (in the given order) whose last feed read is at or after `since_ms`;
        every other one is marked as having missed a push."""
        ...

    def record_read(self, user_id: int, at_ms: int) -> bool:
        """Note a feed read at `at_ms` (marking a user never seen before); True if the
        user is marked: their feed must be rebuilt before it is served."""
        ...

    def clear_missed(self, user_id: int) -> None:
        """The user's feed was rebuilt: take the mark away. A store whose marks can be set
        before the skipped post is readable in its author's timeline (the scale worker
        writes a batch at its end) keeps young marks for a grace period instead, so the
        reads within it rebuild again."""
        ...


class EveryoneActive:
    def active_among(self, user_ids: Sequence[int], since_ms: int) -> list[int]:
        return list(user_ids)

    def record_read(self, user_id: int, at_ms: int) -> bool:
        return False

    def clear_missed(self, user_id: int) -> None:
        pass


EVERYONE_ACTIVE = EveryoneActive()


class MemoryActivityStore:
    def __init__(self) -> None:
        self.last_read: dict[int, int] = {}
        self.missed: set[int] = set()

    def active_among(self, user_ids: Sequence[int], since_ms: int) -> list[int]:
        active = []
        for user in user_ids:
            last = self.last_read.get(user)
            if last is not None and last >= since_ms:
                active.append(user)
            else:
                self.missed.add(user)
        return active

    def record_read(self, user_id: int, at_ms: int) -> bool:
        if user_id not in self.last_read:
            self.missed.add(user_id)
        self.last_read[user_id] = at_ms
        return user_id in self.missed

    def clear_missed(self, user_id: int) -> None:
        self.missed.discard(user_id)
