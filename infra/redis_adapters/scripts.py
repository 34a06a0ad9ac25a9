"""Lua scripts run by SHA, loaded on demand, also inside pipelines.

redis-py's own Script object makes every pipeline that carries a script ask
SCRIPT EXISTS first: one extra round trip per batch. Here a pipeline sends EVALSHA
straight away and, only if the server does not know the script yet (first use,
or after a restart or SCRIPT FLUSH), loads it and sends the pipeline again, which
is why every script run this way must be idempotent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.exceptions import NoScriptError


class LuaScript:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def queue(self, pipe: Any, keys: Sequence[Any], args: Sequence[Any]) -> None:
        pipe.evalsha(self.sha, len(keys), *keys, *args)

    def run(self, client: redis.Redis, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)


def run_pipeline(client: redis.Redis, scripts: Sequence[LuaScript], build: Callable[[Any], None]) -> list[Any]:
    """Queue commands with `build(pipe)` and execute them in one round trip (not a transaction)."""
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        build(pipe)
        try:
            return list(pipe.execute())
        except NoScriptError:
            if attempt:
                raise
            for script in scripts:
                client.script_load(script.source)
    raise AssertionError("unreachable")
