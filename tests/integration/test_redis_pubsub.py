"""RedisPubSub against the real Redis: the PubSub contract, and what only a shared server adds
(another process publishes, several API processes receive, one connection per hub, reconnects)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from infra.redis_adapters.pubsub import RedisPubSub
from projections.notifications import channel_of
from tests.contracts.pubsub_contract import TIMEOUT, PubSubContract
from tests.integration.redis_env import prefix, r, redis_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# The worker's side, in a process of its own: the real announcer listener over RedisPubSub.
WORKER = """
import sys
from datetime import UTC, datetime
from events.engagement import Liked
from infra.jobs import notification_announcer
from infra.redis_adapters.pubsub import RedisPubSub
from projections import notifications
from projections.notifications.tables import NOTIFICATION_FEED
from projections.store import Put

url, prefix, user, event_id = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pubsub = RedisPubSub(url, prefix)
like = Liked(event_id=event_id, occurred_at=datetime.now(UTC), actor_id=5, aggregate_id=9,
             post_id=9, user_id=5, post_author_id=user)
row = {"user_id": user, "latest_id": event_id, "group_key": "like:9"}
notification_announcer(pubsub)(like, notifications.NAME, [Put(NOTIFICATION_FEED.name, row)])
pubsub.close()
"""


class TestRedisPubSub(PubSubContract):
    @pytest.fixture(autouse=True)
    def _prefix(self, prefix: str) -> None:  # noqa: F811
        self.prefix = prefix
        self.url = redis_url()

    def make(self, queue_size: int = 256) -> Any:
        return RedisPubSub(self.url, self.prefix, queue_size=queue_size)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def pubsub(prefix: str) -> Iterator[RedisPubSub]:  # noqa: F811
    adapter = RedisPubSub(redis_url(), prefix)
    yield adapter
    adapter.close()


def numsub(client: redis.Redis, channel: str) -> int:
    return int(client.pubsub_numsub(channel)[0][1])


@pytest.mark.anyio
async def test_a_worker_process_reaches_sse_subscribers_in_two_api_processes(prefix: str) -> None:  # noqa: F811
    url = redis_url()
    api_one, api_two = RedisPubSub(url, prefix), RedisPubSub(url, prefix)  # each its own connection
    user, event_id = 4242, (1 << 62) + 99
    try:
        async with api_one.subscribe(channel_of(user)) as one, api_two.subscribe(channel_of(user)) as two:
            worker = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-c", WORKER, url, prefix, str(user), str(event_id)],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert worker.returncode == 0, worker.stderr
            async with asyncio.timeout(TIMEOUT):
                expected = {"group_key": "like:9", "id": event_id}
                assert await one.get() == expected
                assert await two.get() == expected
    finally:
        api_one.close()
        api_two.close()


@pytest.mark.anyio
async def test_one_connection_carries_every_local_subscriber(pubsub: RedisPubSub, r: redis.Redis) -> None:  # noqa: F811
    name = pubsub.redis_channel("user:1")
    async with pubsub.subscribe("user:1"), pubsub.subscribe("user:1"), pubsub.subscribe("user:1"):
        async with pubsub.subscribe("user:2"):
            assert pubsub.subscriber_count("user:1") == 3
            assert numsub(r, name) == 1
            named = [c for c in r.client_list() if c.get("name") == pubsub.client_name]
            assert len(named) == 1
        assert numsub(r, name) == 1
    assert numsub(r, name) == 0


@pytest.mark.anyio
async def test_the_last_local_subscriber_unsubscribes_on_redis(pubsub: RedisPubSub, r: redis.Redis) -> None:  # noqa: F811
    async with pubsub.subscribe("stays"):
        async with pubsub.subscribe("goes"):
            assert numsub(r, pubsub.redis_channel("goes")) == 1
        deadline = time.monotonic() + TIMEOUT
        while numsub(r, pubsub.redis_channel("goes")) != 0:  # UNSUBSCRIBE is sent, not awaited
            assert time.monotonic() < deadline, "still subscribed on Redis"
            await asyncio.sleep(0.01)
        assert numsub(r, pubsub.redis_channel("stays")) == 1
    assert not [c for c in r.client_list() if c.get("name") == pubsub.client_name]


@pytest.mark.anyio
async def test_prefixes_keep_deployments_apart(prefix: str) -> None:  # noqa: F811
    url = redis_url()
    blue, green = RedisPubSub(url, f"{prefix}blue:"), RedisPubSub(url, f"{prefix}green:")
    try:
        async with blue.subscribe("c") as b, green.subscribe("c") as g:
            blue.publish("c", "for blue")
            green.publish("c", "for green")
            async with asyncio.timeout(TIMEOUT):
                assert await b.get() == "for blue"
                assert await g.get() == "for green"
            assert b.empty()
            assert g.empty()
    finally:
        blue.close()
        green.close()


@pytest.mark.anyio
async def test_a_dropped_connection_reconnects_and_resubscribes(pubsub: RedisPubSub, r: redis.Redis) -> None:  # noqa: F811
    async with pubsub.subscribe("c") as queue:
        (conn,) = [c for c in r.client_list() if c.get("name") == pubsub.client_name]
        r.client_kill_filter(_id=conn["id"])
        # Messages published while the hub is away are lost (pub/sub is fire-and-forget):
        # keep publishing until one gets through the new connection.
        deadline = time.monotonic() + 20
        received = None
        n = 0
        while received is None:
            assert time.monotonic() < deadline, "never resubscribed after the connection dropped"
            n += 1
            pubsub.publish("c", n)
            try:
                async with asyncio.timeout(0.1):
                    received = await queue.get()
            except TimeoutError:
                pass
        fresh = [c for c in r.client_list() if c.get("name") == pubsub.client_name]
        assert len(fresh) == 1
        assert fresh[0]["id"] != conn["id"]
