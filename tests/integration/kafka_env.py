"""Where the Kafka event-log and worker tests run: the servers named by GLIMPSE_KAFKA_BOOTSTRAP
and GLIMPSE_CASSANDRA_HOSTS/PORT, isolated by a random topic prefix, keyspace and
consumer group per test, deleted afterwards (the servers are shared)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest

from infra.kafka.topics import all_topics, bootstrap_servers
from infra.settings import Settings
from projections.store import ReadModel, Table

NEEDED = ("GLIMPSE_KAFKA_BOOTSTRAP", "GLIMPSE_CASSANDRA_HOSTS", "GLIMPSE_CASSANDRA_PORT")


def stack_settings(**overrides: Any) -> Settings:
    missing = [k for k in NEEDED if not os.environ.get(k)]
    if missing:
        pytest.skip(f"{', '.join(missing)} not set (run `make test` or source the stack's env file)")
    # Row-by-row comparisons with the embedded projector need a fan-out that depends on
    # events only: under "hybrid" the feed tables depend on who was reading (a cache,
    # compared by the feeds it serves in tests/e2e/test_invariants.py and test_feed_scale.py).
    return Settings(**({"feed_strategy": "push"} | overrides))


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def isolated(**overrides: Any) -> Settings:
    """Settings with a topic prefix, keyspace and consumer group of their own."""
    return stack_settings(
        kafka_topic_prefix=unique("t-"),
        cassandra_keyspace=unique("glimpse_test_"),
        worker_group=unique("g-"),
        **overrides,
    )


def env_of(settings: Settings) -> dict[str, str]:
    """The same settings as GLIMPSE_* variables, for a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLIMPSE_")}
    for name, value in settings.model_dump(mode="json").items():
        if value is not None and not isinstance(value, dict | list):
            env[f"GLIMPSE_{name.upper()}"] = str(value)
    return env


async def _delete_topics(settings: Settings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        doomed = [t for t in all_topics(settings) if t in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


def delete_topics(settings: Settings) -> None:
    asyncio.run(_delete_topics(settings))


@contextmanager
def keyspace(settings: Settings, *, read_models: bool = False) -> Iterator[Any]:
    """A migrated keyspace (command store; read-model tables too if asked); dropped afterwards."""
    from infra.cassandra.migrations import migrate
    from infra.cassandra.session import connect, drop_keyspace, ensure_keyspace
    from projections.registry import all_tables

    session = connect(settings)
    try:
        ensure_keyspace(session, settings.cassandra_keyspace, 1)
        migrate(session, settings.cassandra_keyspace, all_tables() if read_models else None)
        yield session
    finally:
        try:
            drop_keyspace(session, settings.cassandra_keyspace)
        finally:
            session.cluster.shutdown()


def table_rows(read: ReadModel, tables: list[Table]) -> dict[str, list[bytes]]:
    """Every row of every table in key order, serialised: equal stores give equal dicts."""
    out = {}
    for t in tables:
        rows = read.scan(t.name, {})
        rows.sort(key=lambda r: tuple(r[c] for c in t.key))
        out[t.name] = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in rows]
    return out


def differences(expected: dict[str, list[bytes]], actual: dict[str, list[bytes]]) -> list[str]:
    out = []
    for name in expected:
        want, got = expected[name], actual.get(name, [])
        if want != got:
            missing = sorted(set(want) - set(got))[:2]
            extra = sorted(set(got) - set(want))[:2]
            out.append(f"{name}: {len(want)} rows expected, {len(got)} found; missing {missing}, unexpected {extra}")
    return out


def seeded_history(data_dir: Any, users: int) -> tuple[list[Any], Any]:
    """A realistic history (the demo seeder through the embedded app) and the embedded
    container whose SQLite read models the in-process projector built from it."""
    from infra.bootstrap import build_embedded
    from infra.demo.seed import seed
    from infra.storage.sqlite_eventlog import SqliteEventLog

    container = build_embedded(Settings(data_dir=data_dir, feed_strategy="push"))
    seed(container, users=users)
    assert isinstance(container.log, SqliteEventLog)
    events = [e for _, e in container.log.read(0, 10**9)]
    return events, container


def commands_of(events: list[Any]) -> list[list[Any]]:
    """The history cut back into its commands (consecutive events of one correlation id)."""
    out: list[list[Any]] = []
    for e in events:
        if out and e.correlation_id is not None and out[-1][0].correlation_id == e.correlation_id:
            out[-1].append(e)
        else:
            out.append([e])
    return out
