"""Command routes: mark my notifications read."""

from __future__ import annotations

from fastapi import APIRouter, Response

from commands import notifications
from infra.http.deps import Actor, C, Consistent, IdempotencyKey, run_command

router = APIRouter(tags=["notifications"], dependencies=[Consistent])


@router.post(
    "/v1/notifications/read",
    status_code=204,
    description="Mark every notification I have now as read (up to the newest one's id).",
)
async def mark_read(actor: Actor, c: C, key: IdempotencyKey = None) -> Response:
    return run_command(c, "mark_notifications_read", notifications.mark_read, actor=actor, key=key)
