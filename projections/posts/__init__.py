"""(to be completed) the posts read model: posts by id, posts by author, counts."""

from __future__ import annotations

from events.union import Event
from projections.projection import Projection
from projections.store import Op, ReadModel, Table

POSTS = Table(
    "posts",
    partition=("post_id",),
    values=("author_id", "caption", "media_ids", "audience", "mentions", "created_at"),
    types={"caption": str, "media_ids": list, "audience": str, "mentions": list, "created_at": str},
)
USER_POSTS = Table(
    "user_posts", partition=("author_id",), clustering=("post_id",), values=("audience",), types={"audience": str}
)
# Read by the profile query: number of live posts per author.
USER_POST_COUNTS = Table("user_post_counts", partition=("user_id",), values=("posts",))


def project(event: Event, read: ReadModel) -> list[Op]:
    return []


PROJECTION = Projection("posts", 1, (POSTS, USER_POSTS, USER_POST_COUNTS), project)
