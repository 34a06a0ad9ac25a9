"""The in-process pub/sub and the listener that announces new notifications on it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from events.engagement import Liked, Unliked
from events.graph import Followed
from events.union import Event
from infra.jobs import notification_announcer
from infra.pubsub import InProcessPubSub
from projections import notifications
from tests.unit.stories_world import World


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_publish_from_another_thread_reaches_the_subscriber_loop() -> None:
    pubsub = InProcessPubSub()
    async with pubsub.subscribe("c") as queue:
        assert pubsub.subscriber_count("c") == 1
        thread = threading.Thread(target=pubsub.publish, args=("c", {"n": 1}))
        thread.start()
        thread.join()
        async with asyncio.timeout(5):
            assert await queue.get() == {"n": 1}
    assert pubsub.subscriber_count("c") == 0


@pytest.mark.anyio
async def test_a_slow_subscriber_loses_the_oldest_messages_and_others_channels_get_nothing() -> None:
    pubsub = InProcessPubSub(queue_size=2)
    async with pubsub.subscribe("a") as a, pubsub.subscribe("b") as b:
        for n in range(3):
            pubsub.publish("a", n)
        assert [a.get_nowait(), a.get_nowait()] == [1, 2]
        assert b.empty()


class RecordingPubSub:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def publish(self, channel: str, message: Any) -> None:
        self.sent.append((channel, message))

    def subscribe(self, channel: str) -> Any:
        raise NotImplementedError

    def subscriber_count(self, channel: str) -> int:
        return 0


def test_the_announcer_publishes_new_activity_only() -> None:
    w = World()
    alice, bob, carol = w.user("alice"), w.user("bob"), w.user("carol")
    post = w.post(alice)
    pubsub = RecordingPubSub()
    announce = notification_announcer(pubsub)

    def deliver(event: Event) -> None:
        """As the projector does: project, apply, then tell the listeners."""
        ops = notifications.PROJECTION.project(event, w.read)
        w.apply(event)
        announce(event, notifications.NAME, ops)
        announce(event, "stories", ops)  # other projections' operations announce nothing

    like = Liked(**w.env(post.post_id, bob), post_id=post.post_id, user_id=bob, post_author_id=alice)
    deliver(like)
    deliver(like)  # redelivered: no new activity, no second announcement
    deliver(Unliked(**w.env(post.post_id, bob), post_id=post.post_id, user_id=bob, post_author_id=alice))
    followed = Followed(**w.env(carol, carol), follower_id=carol, followee_id=alice)
    deliver(followed)
    assert pubsub.sent == [
        (notifications.channel_of(alice), {"group_key": f"like:post:{post.post_id}", "id": like.event_id}),
        (notifications.channel_of(alice), {"group_key": "follow", "id": followed.event_id}),
    ]
