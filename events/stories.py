"""Stream `stories`: 24-hour stories and who saw them. Keyed by story id."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from events.envelope import EventBase

StoryAudience = Literal["followers", "close_friends"]


class StoryEvent(EventBase):
    STREAM: ClassVar[str] = "stories"


class StoryPosted(StoryEvent):
    type: Literal["StoryPosted"] = "StoryPosted"
    version: Literal[1] = 1
    story_id: int
    author_id: int
    media_id: int
    audience: StoryAudience
    expires_at: datetime


class StoryViewed(StoryEvent):
    type: Literal["StoryViewed"] = "StoryViewed"
    version: Literal[1] = 1
    story_id: int
    author_id: int
    viewer_id: int


class StoryExpired(StoryEvent):
    """Written by the expiry job; readers already hide a story once expires_at passes."""

    type: Literal["StoryExpired"] = "StoryExpired"
    version: Literal[1] = 1
    story_id: int
    author_id: int
