"""Stream `posts`: created and deleted posts. Keyed by post id."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from events.envelope import EventBase

PostAudience = Literal["public", "followers"]


class PostEvent(EventBase):
    STREAM: ClassVar[str] = "posts"


class PostCreated(PostEvent):
    """`mentions` are the user ids the caption's @names resolved to when posted."""

    PERSONAL: ClassVar[Mapping[str, object]] = {"caption": ""}
    SUBJECT: ClassVar[str] = "author_id"

    type: Literal["PostCreated"] = "PostCreated"
    version: Literal[1] = 1
    post_id: int
    author_id: int
    caption: str
    media_ids: tuple[int, ...]
    audience: PostAudience
    mentions: tuple[int, ...] = ()


class PostDeleted(PostEvent):
    type: Literal["PostDeleted"] = "PostDeleted"
    version: Literal[1] = 1
    post_id: int
    author_id: int
