"""Query routes: my notifications, as a list and as a live Server-Sent Events stream.

A notification is a group ("A and 12 others liked your post"); its `id` is the id of
its newest activity, so new activity in a group shows as a new, unread notification
with a new id (and the group leaves its old place in the list).

The stream sends `event: notification` with the item as JSON for each new activity
in my list, a `: keep-alive` comment every `notification_keepalive_seconds`, and a
`: connected` comment once it is subscribed (anything after that is delivered). A
client reconnecting with `Last-Event-ID` first gets what it missed (up to 100,
oldest first). Blocks and visibility are re-checked when each event is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent

from infra.container import Container
from infra.http.deps import Actor, C, Consistent
from infra.http.paging import Cursor, Limit, decode_int_cursor, page
from infra.http.responses import JsonResponse
from projections.notifications import channel_of
from projections.notifications.tables import NOTIFICATION_RECENT
from projections.notifications.views import Reader

router = APIRouter(tags=["notifications"], dependencies=[Consistent])

MAX_REPLAY = 100


class NotificationActor(BaseModel):
    id: str
    username: str
    display_name: str


class Target(BaseModel):
    type: str
    id: str


class Notification(BaseModel):
    id: str
    type: str
    actors: list[NotificationActor]
    count: int
    target: Target | None
    created_at: str
    read: bool


class NotificationPage(BaseModel):
    items: list[Notification]
    next_cursor: str | None


@router.get(
    "/v1/notifications",
    response_model=NotificationPage,
    description="My notifications, grouped, newest activity first.",
)
async def list_notifications(c: C, viewer: Actor, limit: Limit = 20, cursor: Cursor = None) -> JsonResponse:
    reader = Reader.load(c.read, viewer)
    items: list[dict[str, Any]] = []
    positions: list[int] = []
    for position, item in reader.newest_first(before=decode_int_cursor(cursor), chunk=limit + 1):
        items.append(item)
        positions.append(position)
        if len(items) > limit:
            return JsonResponse(page(items[:limit], positions[limit - 1]))
    return JsonResponse(page(items, None))


def announced(c: Container, viewer: int, message: dict[str, Any]) -> dict[str, Any] | None:
    """The notification a pub/sub message announces, as the viewer may see it now, or None.

    None also when the group has moved on since (a newer message follows) or the actor
    of this very activity is blocked either way with the viewer.
    """
    reader = Reader.load(c.read, viewer)
    group = reader.group(str(message["group_key"]))
    if group is None or int(group["latest_id"]) != int(message["id"]):
        return None
    activity = c.read.get(
        NOTIFICATION_RECENT.name,
        {"user_id": viewer, "group_key": message["group_key"], "activity_id": int(message["id"])},
    )
    if activity is None or int(activity["actor_id"]) in reader.hidden:
        return None
    return reader.render(group)


def _missed(c: Container, viewer: int, since: int) -> list[dict[str, Any]]:
    missed: list[dict[str, Any]] = []
    for position, item in Reader.load(c.read, viewer).newest_first():
        if position <= since or len(missed) == MAX_REPLAY:
            break
        missed.append(item)
    return missed[::-1]


def _event(item: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(data=orjson.dumps(item).decode(), event="notification", id=item["id"])


def _last_event_id(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) <= 19 else None


@router.get(
    "/v1/notifications/stream",
    response_class=EventSourceResponse,
    description="Server-Sent Events: one `notification` event per new notification of mine.",
)
async def stream_notifications(
    c: C,
    viewer: Actor,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=32)] = None,
) -> EventSourceResponse:
    since = _last_event_id(last_event_id)

    async def events() -> AsyncIterator[ServerSentEvent]:
        async with c.pubsub.subscribe(channel_of(viewer)) as queue:
            yield ServerSentEvent(comment="connected")
            sent: set[str] = set()
            if since is not None:
                for missed in _missed(c, viewer, since):
                    sent.add(missed["id"])
                    yield _event(missed)
            while True:
                item = announced(c, viewer, await queue.get())
                if item is not None and item["id"] not in sent:
                    yield _event(item)

    return EventSourceResponse(
        events(),
        ping=c.settings.notification_keepalive_seconds,
        ping_message_factory=lambda: ServerSentEvent(comment="keep-alive"),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
