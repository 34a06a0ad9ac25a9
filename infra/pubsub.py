"""In-process publish/subscribe for the embedded mode (Redis pub/sub in the scale stack).

Subscribers get a bounded queue; a subscriber that does not keep up loses the
oldest messages rather than growing memory without bound (the notification list
itself is durable, so a client can always re-read it).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol


class PubSub(Protocol):
    def publish(self, channel: str, message: Any) -> None: ...

    def subscribe(self, channel: str) -> Any:
        """An async context manager yielding an asyncio.Queue of messages."""
        ...


class InProcessPubSub:
    def __init__(self, queue_size: int = 256) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Any]]] = defaultdict(set)
        self._queue_size = queue_size

    def publish(self, channel: str, message: Any) -> None:
        for queue in list(self._subscribers.get(channel, ())):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[asyncio.Queue[Any]]:
        queue: asyncio.Queue[Any] = asyncio.Queue(self._queue_size)
        self._subscribers[channel].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[channel].discard(queue)
            if not self._subscribers[channel]:
                del self._subscribers[channel]

    def subscriber_count(self, channel: str) -> int:
        return len(self._subscribers.get(channel, ()))
