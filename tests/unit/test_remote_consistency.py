from __future__ import annotations

import asyncio

from infra.remote_consistency import RemoteConsistency, parse_token, reached


def test_a_token_names_the_highest_offset_per_partition() -> None:
    assert parse_token("g.posts:3:10,g.posts:3:12,g.graph:0:7") == {("g.posts", 3): 12, ("g.graph", 0): 7}
    assert parse_token("") == {}
    assert parse_token("garbage,,a:b:c") == {}


def test_reached_needs_every_partition_at_or_past_its_offset() -> None:
    wanted = {("t", 0): 5, ("t", 1): 2}
    assert reached(wanted, {("t", 0): 5, ("t", 1): 9})
    assert not reached(wanted, {("t", 0): 4, ("t", 1): 9})
    assert not reached(wanted, {("t", 0): 5})


def test_wait_returns_once_the_worker_catches_up_and_gives_up_at_the_deadline() -> None:
    applied: dict[tuple[str, int], int] = {("t", 0): 1}
    waiter = RemoteConsistency(lambda: dict(applied), poll_seconds=0.001)

    async def scenario() -> tuple[bool, bool, bool]:
        late = await waiter.wait("t:0:3", timeout=0.02)
        task = asyncio.create_task(waiter.wait("t:0:3", timeout=5))
        await asyncio.sleep(0.01)
        applied[("t", 0)] = 3
        caught_up = await task
        empty = await waiter.wait("", timeout=0)
        return late, caught_up, empty

    assert asyncio.run(scenario()) == (False, True, True)
