"""The union of all events: the only way bytes become events and back."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field, TypeAdapter

from events.accounts import AccountDeleted, AccountRegistered, ProfileUpdated
from events.engagement import (
    Bookmarked,
    CommentDeleted,
    Commented,
    Liked,
    Unbookmarked,
    Unliked,
)
from events.graph import (
    Blocked,
    CloseFriendsSet,
    Followed,
    FollowRequestApproved,
    FollowRequestDenied,
    FollowRequested,
    FollowRequestWithdrawn,
    Unblocked,
    Unfollowed,
)
from events.media import MediaFailed, MediaProcessed, MediaUploaded
from events.notifications import NotificationsRead
from events.posts import PostCreated, PostDeleted
from events.stories import StoryExpired, StoryPosted, StoryViewed

Event = Annotated[
    Union[  # noqa: UP007 - a discriminated union needs the Union form inside Annotated
        AccountRegistered,
        ProfileUpdated,
        AccountDeleted,
        Followed,
        Unfollowed,
        FollowRequested,
        FollowRequestApproved,
        FollowRequestDenied,
        FollowRequestWithdrawn,
        Blocked,
        Unblocked,
        CloseFriendsSet,
        MediaUploaded,
        MediaProcessed,
        MediaFailed,
        PostCreated,
        PostDeleted,
        Liked,
        Unliked,
        Commented,
        CommentDeleted,
        Bookmarked,
        Unbookmarked,
        StoryPosted,
        StoryViewed,
        StoryExpired,
        NotificationsRead,
    ],
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_TYPES: tuple[type, ...] = Event.__origin__.__args__  # type: ignore[attr-defined]
STREAMS: tuple[str, ...] = ("accounts", "graph", "media", "posts", "engagement", "stories", "notifications")


def encode(event: Event) -> bytes:
    return event.model_dump_json().encode()


def decode(data: bytes | str) -> Event:
    return EVENT_ADAPTER.validate_json(data)


def stream_of(event: Event) -> str:
    return event.STREAM
