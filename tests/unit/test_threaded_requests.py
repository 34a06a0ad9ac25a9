"""The scale API's request threads: blocking waits of concurrent requests overlap, streams
stay on the server's loop, and bodies, headers and errors pass through unchanged."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from infra.http.threaded import STREAM_PATHS, ThreadedRequests, serving


def make_app(wait_seconds: float = 10) -> tuple[FastAPI, threading.Barrier]:
    app = FastAPI()
    both_inside = threading.Barrier(2, timeout=wait_seconds)

    @app.get("/blocking")
    async def blocking() -> dict[str, bool]:
        both_inside.wait()  # a blocking call, as the Cassandra driver's: only passes if two requests wait at once
        return {"ok": True}

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, object]:
        return {"body": (await request.body()).decode(), "thread": threading.get_ident()}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    @app.get(next(iter(STREAM_PATHS)))
    async def stream() -> StreamingResponse:
        thread = threading.get_ident()

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"{i}:{thread}\n".encode()
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), media_type="text/event-stream")

    return app, both_inside


def client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def test_blocking_waits_of_concurrent_requests_overlap() -> None:
    asyncio.run(_blocking_waits_of_concurrent_requests_overlap())


async def _blocking_waits_of_concurrent_requests_overlap() -> None:
    app, _ = make_app()
    threaded = ThreadedRequests(app, threads=4)
    async with client(threaded) as http:
        answers = await asyncio.gather(http.get("/blocking"), http.get("/blocking"))
    assert [a.json() for a in answers] == [{"ok": True}, {"ok": True}]
    threaded.close()


def test_on_the_loop_one_blocking_request_holds_up_the_other() -> None:
    asyncio.run(_on_the_loop_one_blocking_request_holds_up_the_other())


async def _on_the_loop_one_blocking_request_holds_up_the_other() -> None:
    app, _ = make_app(wait_seconds=0.5)  # the control: the barrier cannot be passed, so it breaks
    async with client(app) as http:
        answers = await asyncio.gather(http.get("/blocking"), http.get("/blocking"))
    assert {a.status_code for a in answers} == {500}


def test_bodies_errors_and_streams_pass_through() -> None:
    asyncio.run(_bodies_errors_and_streams_pass_through())


async def _bodies_errors_and_streams_pass_through() -> None:
    app, _ = make_app()
    threaded = serving(app, threads=2)
    loop_thread = threading.get_ident()
    async with client(threaded) as http:
        echoed = await http.post("/echo", content=b"x" * 100_000)
        assert echoed.status_code == 200
        assert echoed.json()["body"] == "x" * 100_000
        assert echoed.json()["thread"] != loop_thread  # the app ran on a pool thread
        assert (await http.get("/boom")).status_code == 500
        streamed = await http.get(next(iter(STREAM_PATHS)))
        assert streamed.text.splitlines() == [f"{i}:{loop_thread}" for i in range(3)]  # on the server's loop
    assert isinstance(threaded, ThreadedRequests)
    assert threaded.routes == app.routes  # the wrapped app's attributes show through
    threaded.close()


def test_zero_threads_serves_on_the_loop() -> None:
    app, _ = make_app()
    assert serving(app, 0) is app
    with pytest.raises(ValueError):
        ThreadedRequests(app, 0)
