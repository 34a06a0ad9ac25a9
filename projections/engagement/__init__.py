"""(to be completed) likes, comments, bookmarks and their exact counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from events.union import Event
from projections.projection import Projection
from projections.store import Op, ReadModel


class PostEngagement(TypedDict):
    like_count: int
    comment_count: int
    liked: bool
    bookmarked: bool


def post_engagement(read: ReadModel, post_ids: Sequence[int], viewer: int | None) -> dict[int, PostEngagement]:
    """Counts and the viewer's own flags for each post, for post responses."""
    return {pid: PostEngagement(like_count=0, comment_count=0, liked=False, bookmarked=False) for pid in post_ids}


def project(event: Event, read: ReadModel) -> list[Op]:
    return []


PROJECTION = Projection("engagement", 1, (), project)
