"""Behaviour every PubSub adapter must share; subclass per adapter with `make(queue_size)`.

What the notification stream relies on: `subscribe` yields a bounded asyncio.Queue
once the subscription is live (anything published afterwards is delivered), a
message reaches every subscriber of its channel and no other, in publish order,
from any thread; leaving the context unsubscribes. Messages are the JSON-able
structures infra/jobs.py publishes.

`settle` waits until everything published so far has reached the local queues:
it publishes a marker on a barrier channel from a thread (as the worker does) and
waits for it, since adapters deliver in publish order.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

TIMEOUT = 5.0


class PubSubContract:
    def make(self, queue_size: int = 256) -> Any:
        raise NotImplementedError

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def pubsub(self) -> Iterator[Any]:
        adapter = self.make()
        yield adapter
        close = getattr(adapter, "close", None)
        if close is not None:
            close()

    @pytest.fixture
    def ch(self) -> str:
        """A channel name no other test uses."""
        return f"user:{uuid.uuid4().hex[:10]}"

    async def settle(self, pubsub: Any) -> None:
        barrier, marker = f"barrier:{uuid.uuid4().hex}", {"barrier": uuid.uuid4().hex}
        async with pubsub.subscribe(barrier) as queue:
            await asyncio.to_thread(pubsub.publish, barrier, marker)
            async with asyncio.timeout(TIMEOUT):
                assert await queue.get() == marker

    @staticmethod
    def drain(queue: asyncio.Queue[Any]) -> list[Any]:
        items = []
        while not queue.empty():
            items.append(queue.get_nowait())
        return items

    @pytest.mark.anyio
    async def test_a_message_reaches_its_channel_only(self, pubsub: Any, ch: str) -> None:
        async with pubsub.subscribe(f"{ch}:a") as a, pubsub.subscribe(f"{ch}:b") as b:
            pubsub.publish(f"{ch}:a", {"n": 1})
            pubsub.publish(f"{ch}:b", {"n": 2})
            pubsub.publish(f"{ch}:c", {"n": 3})  # nobody listens: dropped
            await self.settle(pubsub)
            assert self.drain(a) == [{"n": 1}]
            assert self.drain(b) == [{"n": 2}]

    @pytest.mark.anyio
    async def test_every_subscriber_of_a_channel_gets_every_message_in_order(self, pubsub: Any, ch: str) -> None:
        async with pubsub.subscribe(ch) as first, pubsub.subscribe(ch) as second:
            async with pubsub.subscribe(ch) as third:
                assert pubsub.subscriber_count(ch) == 3
                for n in range(50):
                    pubsub.publish(ch, {"n": n})
                await self.settle(pubsub)
                expected = [{"n": n} for n in range(50)]
                assert self.drain(first) == expected
                assert self.drain(second) == expected
                assert self.drain(third) == expected
            assert pubsub.subscriber_count(ch) == 2
            pubsub.publish(ch, {"n": "after third left"})
            await self.settle(pubsub)
            assert self.drain(first) == self.drain(second) == [{"n": "after third left"}]

    @pytest.mark.anyio
    async def test_messages_keep_their_json_structure(self, pubsub: Any, ch: str) -> None:
        message = {"group_key": "like:7362718273645", "id": (1 << 62) + 12345, "nested": [1, "x", None, True, 1.5]}
        async with pubsub.subscribe(ch) as queue:
            pubsub.publish(ch, message)
            async with asyncio.timeout(TIMEOUT):
                assert await queue.get() == message

    @pytest.mark.anyio
    async def test_publish_from_worker_threads(self, pubsub: Any, ch: str) -> None:
        async with pubsub.subscribe(ch) as queue:
            threads = [
                threading.Thread(target=lambda t=t: [pubsub.publish(ch, {"t": t, "n": n}) for n in range(20)])
                for t in range(4)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                await asyncio.to_thread(thread.join)
            await self.settle(pubsub)
            got = self.drain(queue)
        assert sorted((m["t"], m["n"]) for m in got) == [(t, n) for t in range(4) for n in range(20)]
        for t in range(4):  # each thread's messages stay in its order
            assert [m["n"] for m in got if m["t"] == t] == list(range(20))

    @pytest.mark.anyio
    async def test_leaving_unsubscribes(self, pubsub: Any, ch: str) -> None:
        async with pubsub.subscribe(ch) as old:
            assert pubsub.subscriber_count(ch) == 1
        assert pubsub.subscriber_count(ch) == 0
        pubsub.publish(ch, {"n": "unheard"})  # no subscriber: not an error
        async with pubsub.subscribe(ch) as new:
            pubsub.publish(ch, {"n": "heard"})
            await self.settle(pubsub)
            assert self.drain(new) == [{"n": "heard"}]
        assert old.empty()

    @pytest.mark.anyio
    async def test_leaving_on_an_error_or_cancel_unsubscribes(self, pubsub: Any, ch: str) -> None:
        with pytest.raises(RuntimeError):
            async with pubsub.subscribe(ch):
                raise RuntimeError("the client went away")
        assert pubsub.subscriber_count(ch) == 0

        entered = asyncio.Event()

        async def listen() -> None:
            async with pubsub.subscribe(ch) as queue:
                entered.set()
                await queue.get()

        task = asyncio.create_task(listen())
        async with asyncio.timeout(TIMEOUT):
            await entered.wait()
        assert pubsub.subscriber_count(ch) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pubsub.subscriber_count(ch) == 0

    @pytest.mark.anyio
    async def test_a_slow_subscriber_keeps_only_the_newest_messages(self, ch: str) -> None:
        pubsub = self.make(queue_size=4)
        try:
            async with pubsub.subscribe(ch) as slow, pubsub.subscribe(f"{ch}:other") as other:
                for n in range(10):
                    pubsub.publish(ch, n)
                await self.settle(pubsub)
                assert slow.maxsize == 4
                assert self.drain(slow) == [6, 7, 8, 9]
                assert other.empty()
        finally:
            close = getattr(pubsub, "close", None)
            if close is not None:
                close()

    @pytest.mark.anyio
    async def test_subscribers_on_other_event_loops_receive_too(self, pubsub: Any, ch: str) -> None:
        """API servers may run several loops (threads); each subscriber gets messages on its own loop."""
        ready = threading.Event()
        got: list[Any] = []

        async def other_loop() -> None:
            async with pubsub.subscribe(ch) as queue:
                ready.set()
                async with asyncio.timeout(TIMEOUT):
                    got.append(await queue.get())

        thread = threading.Thread(target=lambda: asyncio.run(other_loop()))
        thread.start()
        assert await asyncio.to_thread(ready.wait, TIMEOUT)
        async with pubsub.subscribe(ch) as here:
            pubsub.publish(ch, {"n": 1})
            async with asyncio.timeout(TIMEOUT):
                assert await here.get() == {"n": 1}
        await asyncio.to_thread(thread.join, TIMEOUT)
        assert got == [{"n": 1}]
        assert pubsub.subscriber_count(ch) == 0
