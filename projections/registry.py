"""Every projection, in the order they apply each event.

Order matters only for reads a projection makes of another's tables while
projecting: the graph and profile come first so that, for example, the feed's
fan-out sees the follower list as of this event.
"""

from __future__ import annotations

from projections import engagement, feed, graph, media, notifications, posts, profile, stories
from projections.projection import Projection
from projections.store import Table

PROJECTIONS: tuple[Projection, ...] = (
    profile.PROJECTION,
    graph.PROJECTION,
    media.PROJECTION,
    posts.PROJECTION,
    engagement.PROJECTION,
    feed.PROJECTION,
    stories.PROJECTION,
    notifications.PROJECTION,
)


def all_tables() -> list[Table]:
    tables = [t for p in PROJECTIONS for t in p.tables]
    names = [t.name for t in tables]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise RuntimeError(f"tables owned by two projections: {sorted(duplicates)}")
    return tables
