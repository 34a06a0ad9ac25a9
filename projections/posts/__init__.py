"""(to be written) the posts read model."""

from __future__ import annotations

from events.union import Event
from projections.projection import Projection
from projections.store import Op, ReadModel, Table

# Read by the profile query: number of live posts per author.
USER_POST_COUNTS = Table("user_post_counts", partition=("user_id",), values=("posts",))


def project(event: Event, read: ReadModel) -> list[Op]:
    return []


PROJECTION = Projection("posts", 1, (USER_POST_COUNTS,), project)
