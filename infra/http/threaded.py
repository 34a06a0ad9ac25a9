"""Scale mode: every HTTP request runs on a pool thread with an event loop of its own.

The scale stack's adapters answer with blocking calls (the Cassandra driver, redis-py,
the Kafka producer's loop thread), and a feed page makes several round trips one after
the other. On the server's event loop each wait would hold up every other request, so
one process could serve only one request at a time and the rest queued behind it. Here
the server's loop only moves bytes: the app runs on one of `threads` threads, so the
waits of concurrent requests overlap (the driver and the Redis pool are thread-safe).
CPU work still takes turns under the GIL; several processes (`--workers`) use more cores.

Streams stay on the server's loop: a Server-Sent Events response waits on the in-process
pub/sub queue for as long as the client listens, and would hold a thread all that time.
The embedded mode never runs this way: its SQLite connection belongs to the loop's thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

STREAM_PATHS = frozenset({"/v1/notifications/stream"})


class ThreadedRequests:
    """An ASGI app that runs `app` for each HTTP request on a pool thread."""

    def __init__(self, app: ASGIApp, threads: int, on_loop: Collection[str] = STREAM_PATHS) -> None:
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.app = app
        self.on_loop = on_loop
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="glimpse-request")
        self._local = threading.local()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)  # `state`, `routes`...: the wrapped app's

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.on_loop:
            await self.app(scope, receive, send)
            return
        server = asyncio.get_running_loop()

        async def receive_here() -> Message:
            return await receive()

        async def send_here(message: Message) -> None:
            await send(message)

        async def receive_there() -> Message:
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(receive_here(), server))

        async def send_there(message: Message) -> None:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(send_here(message), server))

        await server.run_in_executor(self._pool, self._run, scope, receive_there, send_there)

    def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None:
            loop = self._local.loop = asyncio.new_event_loop()
        loop.run_until_complete(self.app(scope, receive, send))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def serving(app: ASGIApp, threads: int) -> ASGIApp:
    """What a scale API process hands to uvicorn: `app` on `threads` threads (0: on the loop)."""
    return ThreadedRequests(app, threads) if threads > 0 else app
