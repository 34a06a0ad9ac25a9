"""Periodic jobs and projection listeners of stories and notifications.

`wire` is registered in `infra.bootstrap.WIRING`, so every embedded container gets:
- the story expiry job (every `story_expiry_interval_seconds`), which appends
  StoryExpired through the command bus for stories whose time has passed;
- a projector listener that announces each new notification on its recipient's
  pub/sub channel, which the SSE route streams.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from commands import stories
from events.union import Event
from infra.container import Container, PeriodicJob
from infra.pubsub import PubSub
from projections import notifications
from projections.notifications.tables import NOTIFICATION_FEED
from projections.store import Op, Put


def expire_stories(container: Container, batch: int = stories.EXPIRY_BATCH) -> int:
    """Expire every story past its time, `batch` per command; returns how many expired."""
    total = 0
    while True:
        result = container.bus.execute(
            "expire_stories", lambda ctx: stories.expire_stories(ctx, batch), actor_id=None, payload=None
        )
        expired = int(orjson.loads(result.body)["expired"])
        total += expired
        if expired < batch:
            return total


def notification_announcer(pubsub: PubSub) -> Callable[[Event, str, Sequence[Op]], None]:
    """A projector listener: publish (group, id) for each notification an event made newest."""

    def on_projected(event: Event, projection: str, ops: Sequence[Op]) -> None:
        if projection != notifications.NAME:
            return
        for op in ops:
            if isinstance(op, Put) and op.table == NOTIFICATION_FEED.name and op.row["latest_id"] == event.event_id:
                user_id = int(op.row["user_id"])
                pubsub.publish(
                    notifications.channel_of(user_id), {"group_key": op.row["group_key"], "id": event.event_id}
                )

    return on_projected


def wire(container: Container) -> None:
    container.jobs.append(
        PeriodicJob(
            "expire_stories",
            container.settings.story_expiry_interval_seconds,
            lambda: expire_stories(container),
        )
    )
    if container.projector is not None:  # the scale stack announces from the worker
        container.projector.subscribe(notification_announcer(container.pubsub))
