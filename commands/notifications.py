"""Notifications: mark everything up to the newest one as read."""

from __future__ import annotations

from commands.context import CommandContext, Decision, Meta
from events.notifications import NotificationsRead
from projections.notifications.views import newest_notification_id, read_watermark


def decide_mark_read(user_id: int, newest_id: int | None, watermark: int, meta: Meta) -> Decision:
    """Nothing new since the last mark (or nothing at all) appends nothing."""
    if newest_id is None or newest_id <= watermark:
        return Decision([], status=204)
    event = NotificationsRead(**meta.envelope(user_id), user_id=user_id, up_to_id=newest_id)
    return Decision([event], status=204)


def mark_read(ctx: CommandContext) -> Decision:
    user_id = ctx.actor
    return decide_mark_read(
        user_id, newest_notification_id(ctx.read, user_id), read_watermark(ctx.read, user_id), ctx.meta
    )
