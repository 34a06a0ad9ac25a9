"""Read-your-writes across processes: a write's token names Kafka positions
(`topic:partition:offset,...`); a read waits until the projection worker has
saved positions at or past every one of them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

Positions = Mapping[tuple[str, int], int]


def parse_token(token: str) -> dict[tuple[str, int], int]:
    """`glimpse.posts:3:1041,glimpse.graph:0:77` -> {("glimpse.posts", 3): 1041, ...}; bad parts are ignored."""
    wanted: dict[tuple[str, int], int] = {}
    for part in token.split(","):
        topic, _, rest = part.rpartition(":")
        topic, _, partition = topic.rpartition(":")
        if not topic or not partition.isdigit() or not rest.isdigit():
            continue
        key = (topic, int(partition))
        wanted[key] = max(wanted.get(key, -1), int(rest))
    return wanted


def reached(wanted: Mapping[tuple[str, int], int], applied: Positions) -> bool:
    return all(applied.get(key, -1) >= offset for key, offset in wanted.items())


class RemoteConsistency:
    def __init__(self, positions: Callable[[], Positions], poll_seconds: float = 0.01) -> None:
        self._positions = positions
        self._poll = poll_seconds

    async def wait(self, token: str, timeout: float) -> bool:
        wanted = parse_token(token)
        if not wanted:
            return True
        deadline = time.monotonic() + timeout
        while True:
            # The positions read is a quick single-partition Cassandra query; run it off the loop anyway.
            applied = await asyncio.to_thread(self._positions)
            if reached(wanted, applied):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(self._poll)

    def metrics(self) -> dict[str, int]:
        applied = self._positions()
        return {"worker_partitions": len(applied), "worker_offsets_total": sum(applied.values())}
