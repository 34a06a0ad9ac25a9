"""Publish/subscribe over Redis: the scale stack's adapter of the PubSub port.

The worker publishes a notification (synchronously, from whichever thread applied
the event); any API process with an SSE client on that user's channel receives it.
Messages travel as JSON, so a subscriber gets the same plain structure that the
in-process adapter hands over.

One Redis connection per process and event loop carries every subscription of
that loop (a "hub"): thousands of SSE clients cost one connection, not thousands.
The hub SUBSCRIBEs a channel when its first local subscriber arrives and
UNSUBSCRIBEs when the last leaves; `subscribe` returns only after Redis confirmed
the subscription, so anything published after that is delivered. The hub closes
when its loop has no subscriber left.

Like the in-process adapter, each subscriber has a bounded queue that drops the
oldest message when full. Redis pub/sub is fire-and-forget: a message published
while a hub reconnects is lost, which is acceptable because notifications are
durable (a reconnecting client catches up with Last-Event-ID).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import orjson
import redis
import redis.asyncio

from infra.pubsub import _put_dropping_oldest
from infra.redis_adapters import SOCKET_TIMEOUT, sync_client

log = logging.getLogger(__name__)


class _Hub:
    """Every subscription of one event loop, over one Redis connection."""

    def __init__(self, url: str, queue_size: int, subscribe_timeout: float, client_name: str) -> None:
        self._url = url
        self._client_name = client_name
        self._queue_size = queue_size
        self._subscribe_timeout = subscribe_timeout
        self.users = 0  # subscribe() calls using this hub, guarded by RedisPubSub._lock
        self.queues: dict[str, set[asyncio.Queue[Any]]] = {}
        # Futures of SUBSCRIBE commands not yet confirmed, per channel, in sending order:
        # Redis confirms one channel's subscriptions in the order they were sent.
        self._unconfirmed: dict[str, collections.deque[asyncio.Future[None]]] = {}
        self._client: redis.asyncio.Redis | None = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._start_lock = asyncio.Lock()

    async def _start(self) -> Any:
        async with self._start_lock:
            if self._pubsub is None:
                self._client = redis.asyncio.Redis.from_url(
                    self._url,
                    socket_connect_timeout=SOCKET_TIMEOUT,
                    socket_keepalive=True,
                    client_name=self._client_name,
                )
                pubsub: Any = self._client.pubsub()
                await pubsub.connect()
                self._pubsub = pubsub
                self._reader = asyncio.get_running_loop().create_task(self._read(), name="redis-pubsub-reader")
        return self._pubsub

    async def join(self, channel: str) -> asyncio.Queue[Any]:
        pubsub = await self._start()
        queue: asyncio.Queue[Any] = asyncio.Queue(self._queue_size)
        subscribers = self.queues.setdefault(channel, set())
        first = not subscribers
        subscribers.add(queue)
        try:
            pending = self._unconfirmed.setdefault(channel, collections.deque())
            if first:
                pending.append(asyncio.get_running_loop().create_future())
                await pubsub.subscribe(channel)
            if pending:  # ours, or a confirmation another subscriber of the channel still waits for
                async with asyncio.timeout(self._subscribe_timeout):
                    await asyncio.shield(pending[-1])
        except BaseException:
            self.drop(channel, queue)
            raise
        return queue

    def drop(self, channel: str, queue: asyncio.Queue[Any]) -> bool:
        """Forget a subscriber's queue; True if the channel has no local subscriber left."""
        subscribers = self.queues.get(channel)
        if subscribers is None:
            return False
        subscribers.discard(queue)
        if subscribers:
            return False
        del self.queues[channel]
        return True

    async def unsubscribe(self, channel: str) -> None:
        if self._pubsub is not None and channel not in self.queues:
            await self._pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        backoff = 0.1
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
                backoff = 0.1
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                # The next read reconnects and resubscribes every channel (redis-py's on_connect).
                log.warning("redis pub/sub connection lost (%s); reconnecting in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if message is not None:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel = message["channel"]
        if isinstance(channel, bytes):
            channel = channel.decode()
        if kind == "subscribe":
            pending = self._unconfirmed.get(channel)
            if pending:
                future = pending.popleft()
                if not future.done():
                    future.set_result(None)
                if not pending:
                    del self._unconfirmed[channel]
        elif kind == "message":
            try:
                data = orjson.loads(message["data"])
            except orjson.JSONDecodeError:
                log.warning("dropped a message on %s that is not JSON", channel)
                return
            for queue in list(self.queues.get(channel, ())):
                _put_dropping_oldest(queue, data)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with suppress(asyncio.CancelledError):
                await self._reader
        for pending in self._unconfirmed.values():
            for future in pending:
                future.cancel()
        self._unconfirmed.clear()
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._client is not None:
            await self._client.aclose()


class RedisPubSub:
    """`channel` names are prefixed with `prefix` on Redis, so deployments (and tests) can share a server."""

    def __init__(
        self, url: str, prefix: str = "glimpse:", *, queue_size: int = 256, subscribe_timeout: float = 5.0
    ) -> None:
        self._url = url
        self._prefix = prefix
        self._queue_size = queue_size
        self._subscribe_timeout = subscribe_timeout
        self._lock = threading.Lock()
        self._publisher: redis.Redis | None = None
        self._hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Hub] = weakref.WeakKeyDictionary()

    @property
    def client_name(self) -> str:
        """The CLIENT SETNAME of this adapter's subscriber connections (CLIENT LIST shows it)."""
        return "".join(c if c.isalnum() or c in "-_.:" else "_" for c in f"{self._prefix}pubsub")

    def redis_channel(self, channel: str) -> str:
        return self._prefix + channel

    def publish(self, channel: str, message: Any) -> None:
        """Send `message` (JSON-serialisable) to every subscriber of `channel` in every process."""
        data = orjson.dumps(message)
        with self._lock:
            if self._publisher is None:
                self._publisher = sync_client(self._url)
            publisher = self._publisher
        publisher.publish(self.redis_channel(channel), data)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[Any]]:
        loop = asyncio.get_running_loop()
        name = self.redis_channel(channel)
        with self._lock:
            hub = self._hubs.get(loop)
            if hub is None:
                hub = _Hub(self._url, self._queue_size, self._subscribe_timeout, self.client_name)
                self._hubs[loop] = hub
            hub.users += 1
        emptied = False
        try:
            queue = await hub.join(name)
            try:
                yield queue
            finally:
                emptied = hub.drop(name, queue)
        finally:
            with self._lock:
                hub.users -= 1
                last = hub.users == 0
                if last and self._hubs.get(loop) is hub:
                    del self._hubs[loop]  # a later subscribe on this loop starts a new hub
            if last:
                await hub.close()  # closing the connection ends all its subscriptions
            elif emptied:
                await hub.unsubscribe(name)

    def subscriber_count(self, channel: str) -> int:
        """Subscribers of `channel` in this process (PUBSUB NUMSUB counts processes' hubs instead)."""
        name = self.redis_channel(channel)
        with self._lock:
            hubs = list(self._hubs.values())
        return sum(len(hub.queues.get(name, ())) for hub in hubs)

    def close(self) -> None:
        with self._lock:
            publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.close()
