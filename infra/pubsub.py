"""In-process publish/subscribe for the embedded mode (Redis pub/sub in the scale stack).

Subscribers get a bounded queue; a subscriber that does not keep up loses the
oldest messages rather than growing memory without bound (the notification list
itself is durable, so a client can always re-read it).

`publish` may be called from any thread: each queue belongs to the event loop that
subscribed, and a message from another thread is handed to that loop rather than
put into its queue directly (asyncio queues are not thread-safe).
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol


class PubSub(Protocol):
    def publish(self, channel: str, message: Any) -> None: ...

    def subscribe(self, channel: str) -> Any:
        """An async context manager yielding an asyncio.Queue of messages."""
        ...

    def subscriber_count(self, channel: str) -> int:
        """Subscribers of `channel` in this process (Redis: PUBSUB NUMSUB)."""
        ...


def _put_dropping_oldest(queue: asyncio.Queue[Any], message: Any) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(message)


class InProcessPubSub:
    def __init__(self, queue_size: int = 256) -> None:
        self._subscribers: dict[str, dict[asyncio.Queue[Any], asyncio.AbstractEventLoop]] = defaultdict(dict)
        self._queue_size = queue_size
        self._lock = threading.Lock()

    def publish(self, channel: str, message: Any) -> None:
        with self._lock:
            targets = list(self._subscribers.get(channel, {}).items())
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for queue, loop in targets:
            if loop is here:
                _put_dropping_oldest(queue, message)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_put_dropping_oldest, queue, message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[Any]]:
        queue: asyncio.Queue[Any] = asyncio.Queue(self._queue_size)
        with self._lock:
            self._subscribers[channel][queue] = asyncio.get_running_loop()
        try:
            yield queue
        finally:
            with self._lock:
                self._subscribers[channel].pop(queue, None)
                if not self._subscribers[channel]:
                    del self._subscribers[channel]

    def subscriber_count(self, channel: str) -> int:
        with self._lock:
            return len(self._subscribers.get(channel, ()))
