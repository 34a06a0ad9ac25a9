"""Stream `engagement`: likes, comments (keyed by post id), bookmarks (keyed by user id).

Each event carries the post's author so that notification and counter
projections need no lookup to know whom it concerns.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from events.envelope import EventBase

# What kind of like: v1 likes (before reactions existed) are all "like".
Reaction = Literal["like", "love", "haha", "wow", "sad", "angry"]


class EngagementEvent(EventBase):
    STREAM: ClassVar[str] = "engagement"


class Liked(EngagementEvent):
    """Version 2 added `reaction` (events/upcasting.py upcasts version 1)."""

    type: Literal["Liked"] = "Liked"
    version: Literal[2] = 2
    post_id: int
    user_id: int
    post_author_id: int
    reaction: Reaction = "like"


class Unliked(EngagementEvent):
    type: Literal["Unliked"] = "Unliked"
    version: Literal[1] = 1
    post_id: int
    user_id: int
    post_author_id: int


class Commented(EngagementEvent):
    PERSONAL: ClassVar[Mapping[str, object]] = {"text": ""}
    SUBJECT: ClassVar[str] = "author_id"

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
