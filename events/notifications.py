"""Stream `notifications`: what a user did with their notification list."""

from __future__ import annotations

from typing import ClassVar, Literal

from events.envelope import EventBase


class NotificationEvent(EventBase):
    STREAM: ClassVar[str] = "notifications"


class NotificationsRead(NotificationEvent):
    """Everything up to and including `up_to_id` is read."""

    type: Literal["NotificationsRead"] = "NotificationsRead"
    version: Literal[1] = 1
    user_id: int
    up_to_id: int
