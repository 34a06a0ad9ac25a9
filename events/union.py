"""The union of all events: the only way bytes become events and back.

Only the current version of each event has a model; `decode` upcasts older
versions first (events/upcasting.py) and refuses unknown types and versions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter, ValidationError

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
from events.upcasting import upcast

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


def _current_versions() -> dict[str, int]:
    versions: dict[str, int] = {}
    for cls in EVENT_TYPES:
        fields = cls.model_fields  # type: ignore[attr-defined]
        versions[str(fields["type"].default)] = int(fields["version"].default)
    return versions


# The version each event type is written in today: what `upcast` brings older ones to.
CURRENT_VERSIONS: Mapping[str, int] = _current_versions()


def encode(event: Event) -> bytes:
    return event.model_dump_json().encode()


def decode(data: bytes | str) -> Event:
    """One event from its serialized form, whatever version it was written in.

    The current shape validates straight from JSON (the fast path every new event
    takes); anything else is parsed, upcast and validated, or refused.
    """
    try:
        return EVENT_ADAPTER.validate_json(data)
    except ValidationError as invalid:
        try:
            raw: Any = json.loads(data)
        except ValueError:
            raise invalid from None
        if not isinstance(raw, dict):
            raise invalid from None
        if raw.get("type") in CURRENT_VERSIONS and raw.get("version") == CURRENT_VERSIONS[raw["type"]]:
            raise  # the current version, malformed: nothing to upcast
        return EVENT_ADAPTER.validate_python(upcast(raw, CURRENT_VERSIONS))


def decode_parsed(raw: dict[str, Any]) -> Event:
    """`decode` of an event already parsed from JSON (and perhaps unsealed)."""
    if raw.get("type") in CURRENT_VERSIONS and raw.get("version") == CURRENT_VERSIONS[raw["type"]]:
        return EVENT_ADAPTER.validate_python(raw)
    return EVENT_ADAPTER.validate_python(upcast(raw, CURRENT_VERSIONS))


EVENT_CLASSES: Mapping[str, type] = {str(cls.model_fields["type"].default): cls for cls in EVENT_TYPES}  # type: ignore[attr-defined]


def stream_of(event: Event) -> str:
    return event.STREAM
