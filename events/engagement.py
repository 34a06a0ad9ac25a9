"""Stream `engagement`: likes, comments (keyed by post id), bookmarks (keyed by user id).

Each event carries the post's author so that notification and counter
projections need no lookup to know whom it concerns.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from events.envelope import EventBase


class EngagementEvent(EventBase):
    STREAM: ClassVar[str] = "engagement"


class Liked(EngagementEvent):
    type: Literal["Liked"] = "Liked"
    version: Literal[1] = 1
    post_id: int
    user_id: int
    post_author_id: int


class Unliked(EngagementEvent):
    type: Literal["Unliked"] = "Unliked"
    version: Literal[1] = 1
    post_id: int
    user_id: int
    post_author_id: int


class Commented(EngagementEvent):
    type: Literal["Commented"] = "Commented"
    version: Literal[1] = 1
    comment_id: int
    post_id: int
    author_id: int
    post_author_id: int
    text: str
    mentions: tuple[int, ...] = ()


class CommentDeleted(EngagementEvent):
    type: Literal["CommentDeleted"] = "CommentDeleted"
    version: Literal[1] = 1
    comment_id: int
    post_id: int
    deleted_by: int


class Bookmarked(EngagementEvent):
    type: Literal["Bookmarked"] = "Bookmarked"
    version: Literal[1] = 1
    post_id: int
    user_id: int


class Unbookmarked(EngagementEvent):
    type: Literal["Unbookmarked"] = "Unbookmarked"
    version: Literal[1] = 1
    post_id: int
    user_id: int
