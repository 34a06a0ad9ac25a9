"""The blue/green switch of `glimpse replay --mode scale` against the real Kafka, Cassandra
and Redis, with a real projection worker (`glimpse worker`, a subprocess) and an API-side
reader (`CassandraReadModel` behind the generation's Redis caches, kept routed by a
`GenerationRouter`, as infra/bootstrap_scale.py wires them).

Events are written before the replay, while it loads, and while the worker is paused for
the switch, and after it; then the worker and the reader must be on the new tables, the
live read models must equal a fresh replay of the whole log (nothing lost, nothing applied
twice: counters included), and the old tables must be gone.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events.union import encode
from infra.settings import Settings
from projections.registry import PROJECTIONS, all_tables
from tests.integration.kafka_env import delete_topics, env_of, isolated, keyspace
from tests.integration.redis_env import delete_prefixed, redis_url, unique_prefix
from tests.unit.replay_histories import History

pytestmark = pytest.mark.integration

pytest.importorskip("faust")
pytest.importorskip("cassandra")

import redis  # noqa: E402

from infra.cassandra.command_store import CassandraCommandStore  # noqa: E402
from infra.cassandra.generations import CassandraRegistry, GenerationRouter  # noqa: E402
from infra.cassandra.readmodel import CassandraReadModel  # noqa: E402
from infra.kafka.topics import ensure_topics  # noqa: E402
from infra.redis_adapters.generation_caches import GenerationCaches  # noqa: E402
from infra.replay import project_event  # noqa: E402
from infra.replay_progress import Progress  # noqa: E402
from infra.replay_scale import _produce, drop_retired, replay_into  # noqa: E402
from tests.integration.test_replay_scale import STEPS  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def table_names(session: Any, settings: Settings) -> set[str]:
    return {
        r[0]
        for r in session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (settings.cassandra_keyspace,)
        )
    }


def produce(settings: Settings, events: list[Any]) -> None:
    _produce(settings, [(e.STREAM, e.aggregate_id, encode(e)) for e in events])


def applied_count(session: Any, settings: Settings) -> int:
    positions = CassandraCommandStore(session, settings.cassandra_keyspace).positions(settings.worker_group)
    return sum(offset + 1 for offset in positions.values())


def wait_applied(session: Any, settings: Settings, total: int, worker: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while applied_count(session, settings) < total:
        if worker.poll() is not None:
            pytest.fail(f"the worker exited with {worker.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"the worker did not apply {total} events:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)


@pytest.fixture
def world() -> Iterator[tuple[Settings, Any]]:
    prefix = unique_prefix()
    settings = isolated(kafka_partitions=3, redis_url=redis_url(), redis_prefix=prefix)
    ensure_topics(settings)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        with keyspace(settings, read_models=True) as session:
            yield settings, session
    finally:
        delete_topics(settings)
        delete_prefixed(client, prefix)
        client.close()


def test_a_switch_under_a_running_worker_and_writes_loses_nothing_and_drops_the_old_tables(
    world: tuple[Settings, Any], tmp_path: Path
) -> None:
    settings, session = world
    ks = settings.cassandra_keyspace
    events = [e for _, e in History().run(STEPS * 12).events()]
    quarter = len(events) // 4
    before, during, paused, after = (
        events[:quarter],
        events[quarter : 2 * quarter],
        events[2 * quarter : 3 * quarter],
        events[3 * quarter :],
    )
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(
        [sys.executable, "-m", "infra.cli", "worker", "--log-level", "info"],
        cwd=ROOT,
        env=env_of(settings) | {"GLIMPSE_DATA_DIR": str(tmp_path / "worker-data")},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        produce(settings, before)
        wait_applied(session, settings, len(before), worker, log)

        # The API side: routed reads behind the Redis caches of the generation.
        durable = CassandraReadModel(session, ks, all_tables())
        client = redis.Redis.from_url(settings.redis_url)
        caches = GenerationCaches(durable, client, settings)
        router = GenerationRouter(CassandraRegistry(session, ks), PROJECTIONS, [durable], [caches.switch])
        router.refresh()
        assert durable.physical("accounts") == "rm_accounts" and caches.prefix == settings.redis_prefix
        post = next(r["post_id"] for r in durable.scan("posts", {}))
        caches.get("engagement_counts", {"post_id": post})  # cached from the old generation
        assert client.keys(f"{settings.redis_prefix}count:*")

        written = {"during": False, "paused": False}

        def write_meanwhile(p: Progress) -> None:
            if p.phase == "load" and not written["during"]:
                written["during"] = True
                produce(settings, during)  # applied by the worker to the old tables, caught up by the build
            if p.phase == "pause" and not written["paused"]:
                written["paused"] = True
                produce(settings, paused)  # the worker is paused: only the build's final catch-up sees them now

        started = time.monotonic()
        result = replay_into(settings, session, PROJECTIONS, [], grace_seconds=0, progress=write_meanwhile)
        took = time.monotonic() - started
        assert written == {"during": True, "paused": True}
        assert result.switched and result.epoch == 1 and not result.direct
        assert len(result.workers) == 1, "the running worker paused for the switch"
        assert result.events >= 3 * quarter  # the build took what was written while the worker was paused

        produce(settings, after)
        wait_applied(session, settings, len(events), worker, log)
        assert "paused by request" in log.read_text(errors="replace")

        # The reader and the worker are on the new tables; the old ones are gone.
        assert router.refresh() is True
        assert durable.physical("accounts") == f"{result.prefix}accounts"
        assert caches.prefix == f"{settings.redis_prefix}g1:"
        left = table_names(session, settings)
        assert not {n for n in left if n.startswith("rm_")}, "the old generation was not dropped"
        assert {f"{result.prefix}{t.name}" for t in all_tables()} <= left
        assert not CassandraRegistry(session, ks).state().retired
        assert not client.keys(f"{settings.redis_prefix}count:*"), "the old generation's cache stayed"
        assert caches.get("engagement_counts", {"post_id": post}) == durable.get("engagement_counts", {"post_id": post})

        # Every event before, during and after is in, once: the live digests are a fresh replay's.
        fresh = replay_into(settings, session, PROJECTIONS, [], switch=False, keep=False)
        assert fresh.events == len(events)
        live = {n: d["digest"] for n, d in fresh.live_digests.items()}
        rebuilt = {n: d["digest"] for n, d in fresh.digests.items()}
        assert live == rebuilt
        for row in durable.scan("engagement_counts", {}):  # counters exact, not bumped twice
            assert (row["like_count"] or 0) == durable.count("likes", {"post_id": row["post_id"]})
        assert worker.poll() is None
        print(f"\nswitch under a running worker: {len(events)} events, replay {took:.1f}s, phases {result.seconds}")
    finally:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def test_a_partial_switch_without_a_worker_switches_directly_and_keeps_the_old_tables_for_the_grace_period(
    world: tuple[Settings, Any],
) -> None:
    settings, session = world
    ks = settings.cassandra_keyspace
    events = [e for _, e in History().run(STEPS * 2).events()]
    produce(settings, events)
    live = CassandraReadModel(session, ks, all_tables())
    for position, event in enumerate(events, 1):
        project_event(live, PROJECTIONS, position, event)

    result = replay_into(settings, session, PROJECTIONS, ["notifications"], grace_seconds=3)
    assert result.switched and result.direct and result.workers == ()
    assert result.helpers == ("profile",)
    registry = CassandraRegistry(session, ks)
    routes = registry.routes(PROJECTIONS)
    assert routes["notification_feed"] == f"{result.prefix}notification_feed"
    assert routes["accounts"] == "rm_accounts"  # not replayed: stays where it was
    names = table_names(session, settings)
    assert f"{result.prefix}accounts" not in names, "the helper tables go at once"
    assert "rm_notification_feed" in names, "the old generation stays for its grace period"
    assert set(registry.state().retired) == {f"rm_{t.name}" for t in result_tables("notifications")}
    # nothing projected since: the rebuilt read model is the old one
    rebuilt = CassandraReadModel(session, ks, all_tables())
    rebuilt.route(routes)
    from infra.replay_cli import describe

    notifications = [p for p in PROJECTIONS if p.name == "notifications"]
    assert describe(rebuilt, notifications)["notifications"]["digest"] == result.digests["notifications"]["digest"]
    live.route({t.name: f"rm_{t.name}" for t in all_tables()})
    assert describe(live, notifications)["notifications"]["digest"] == result.digests["notifications"]["digest"]

    deadline = time.monotonic() + 30
    while not drop_retired(settings, session, PROJECTIONS, 0):
        assert time.monotonic() < deadline, "the retired tables never came due"
        time.sleep(0.5)
    names = table_names(session, settings)
    assert "rm_notification_feed" not in names and "rm_accounts" in names
    assert not registry.state().retired


def result_tables(projection: str) -> list[Any]:
    return [t for p in PROJECTIONS if p.name == projection for t in p.tables]
