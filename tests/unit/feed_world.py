"""The posts world with the feed projection built from a `FeedPolicy` and an activity store,
and the read path of GET /v1/feed (refresh if stale, then a page), without HTTP.

Every event occurs at posts_world.NOW; a user who last read their feed at `ACTIVE_AT`
is active for it, one who read at `inactive_at(window)` is not.
"""

from __future__ import annotations

from typing import Any

from projections.feed import FEED, FeedPolicy, make_projection
from projections.feed.activity import MemoryActivityStore
from projections.registry import PROJECTIONS
from query_api.feed import feed_page, refresh_if_stale
from tests.unit.posts_world import NOW, World

NOW_MS = int(NOW.timestamp() * 1000)
ACTIVE_AT = NOW_MS - 1000


def inactive_at(policy: FeedPolicy) -> int:
    return NOW_MS - policy.active_window_seconds * 1000 - 1000


class FeedWorld(World):
    def __init__(self, **policy: Any) -> None:
        super().__init__()
        self.policy = FeedPolicy(**policy)
        self.activity = MemoryActivityStore()
        feed = make_projection(policy=self.policy, activity=self.activity)
        self.projections = [feed if p.name == feed.name else p for p in PROJECTIONS]
        self.rebuilds = 0  # rebuilds that wrote something

    def seen(self, user: int, active: bool = True) -> None:
        """A feed read now (active) or long ago (inactive): recorded, and a stale feed rebuilt."""
        at = ACTIVE_AT if active else inactive_at(self.policy)
        if refresh_if_stale(self.read, self.activity, self.read.apply, user, self.policy, at):
            self.rebuilds += 1

    def page(self, user: int, limit: int = 100, before: int | None = None) -> tuple[list[int], int | None]:
        """GET /v1/feed: record the read (rebuilding a stale feed), then one page."""
        if refresh_if_stale(self.read, self.activity, self.read.apply, user, self.policy, ACTIVE_AT):
            self.rebuilds += 1
        rows, cursor = feed_page(self.read, user, self.policy, limit, before)
        return [int(r["post_id"]) for r in rows], cursor

    def home(self, user: int, limit: int = 100) -> list[int]:
        """Every page, following the cursor."""
        out: list[int] = []
        cursor: int | None = None
        while True:
            ids, cursor = self.page(user, limit, cursor)
            out += ids
            if cursor is None:
                return out
            assert len(out) < 10_000

    def pushed(self, user: int) -> list[int]:
        """What the durable feed table holds for the user (newest first)."""
        return [int(r["post_id"]) for r in self.read.scan(FEED.name, {"user_id": user}, desc=True)]
