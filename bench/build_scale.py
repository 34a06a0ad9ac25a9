"""The scale-stack state: events produced to Kafka in bulk, read models by `glimpse worker`.

Each run gets its own names (keyspace, topic prefix, consumer group, Redis prefix,
bucket), so it can share the running servers with anyone and is removed afterwards.
Events go out through one idempotent producer (acks=all) without waiting for each
send; the bench then waits until the worker's saved positions reach every offset it
produced. Two timed phases, as in the embedded build: the graph, then the posts
(whose fan-out deliveries per second this gives).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from bench.state import State, batched, graph_events, post_events
from events.union import Event, encode
from infra.settings import Settings

Positions = dict[tuple[str, int], int]


def unique_names(tag: str) -> dict[str, str]:
    name = f"bench{tag}{uuid.uuid4().hex[:8]}"
    return {
        "GLIMPSE_MODE": "scale",
        "GLIMPSE_CASSANDRA_KEYSPACE": name,
        "GLIMPSE_KAFKA_TOPIC_PREFIX": name,
        "GLIMPSE_WORKER_GROUP": name,
        "GLIMPSE_REDIS_PREFIX": f"{name}:",
        "GLIMPSE_S3_BUCKET": name,
        "GLIMPSE_CONSISTENCY_WAIT_SECONDS": "20",
    }


def settings_for(names: dict[str, str]) -> Settings:
    return Settings(
        cassandra_keyspace=names["GLIMPSE_CASSANDRA_KEYSPACE"],
        kafka_topic_prefix=names["GLIMPSE_KAFKA_TOPIC_PREFIX"],
        worker_group=names["GLIMPSE_WORKER_GROUP"],
        redis_prefix=names["GLIMPSE_REDIS_PREFIX"],
        s3_bucket=names["GLIMPSE_S3_BUCKET"],
    )


async def _produce(settings: Settings, events: Iterable[Event]) -> tuple[Positions, int]:
    from aiokafka import AIOKafkaProducer

    from infra.kafka.topics import bootstrap_servers, topic_of

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    written: Positions = {}
    count = 0
    try:
        for batch in batched(events, 20_000):
            futures = [
                await producer.send(topic_of(settings, e.STREAM), encode(e), key=str(e.aggregate_id).encode())
                for e in batch
            ]
            for meta in await asyncio.gather(*futures):
                tp = (meta.topic, meta.partition)
                written[tp] = max(written.get(tp, -1), meta.offset)
            count += len(batch)
    finally:
        await producer.stop()
    return written, count


def produce(settings: Settings, events: Iterable[Event]) -> tuple[Positions, int]:
    """Send every event (keyed by aggregate id); the highest offset written per partition, and the count."""
    return asyncio.run(_produce(settings, events))


def wait_applied(
    positions: Callable[[], Positions], wanted: Positions, timeout: float, alive: Callable[[], bool]
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        applied = positions()
        if all(applied.get(tp, -1) >= offset for tp, offset in wanted.items()):
            return
        if not alive():
            raise RuntimeError("the worker stopped while the bench waited for it")
        if time.monotonic() > deadline:
            behind = {f"{t}:{p}": o - applied.get((t, p), -1) for (t, p), o in wanted.items()}
            raise TimeoutError(f"the worker did not catch up in {timeout:.0f} s; records behind: {behind}")
        time.sleep(0.1)


class ScaleBuild:
    """Produce the state's events and time the worker over them."""

    def __init__(self, settings: Settings) -> None:
        from infra.cassandra.command_store import CassandraCommandStore
        from infra.cassandra.readmodel import CassandraReadModel
        from infra.cassandra.session import connect
        from projections.registry import all_tables

        self.settings = settings
        self.session = connect(settings, request_timeout=60)
        keyspace = settings.cassandra_keyspace
        self.store = CassandraCommandStore(self.session, keyspace)
        self.read = CassandraReadModel(self.session, keyspace, all_tables())

    def positions(self) -> Positions:
        return self.store.positions(self.settings.worker_group)

    def run(
        self,
        state: State,
        start_worker: Callable[[], Callable[[], bool]],
        timeout: float,
        between: Callable[[], object] = lambda: None,
    ) -> dict[str, Any]:
        """`between` runs after the graph is applied and before the posts go out (untimed)."""
        t0 = time.monotonic()
        wanted, graph_count = produce(self.settings, graph_events(state))
        t_produced = time.monotonic()
        alive = start_worker()
        wait_applied(self.positions, wanted, timeout, alive)
        t_graph_applied = time.monotonic()
        between()
        t_graph = time.monotonic()
        t0 += t_graph - t_graph_applied
        wanted, post_count = produce(self.settings, post_events(state))
        t_posts_produced = time.monotonic()
        wait_applied(self.positions, wanted, timeout, alive)
        t_done = time.monotonic()
        events = graph_count + post_count
        return {
            "method": "events produced to Kafka in bulk (one idempotent producer, acks=all); read models by `glimpse worker`",
            "events": events,
            "posts": post_count,
            "seconds_total": round(t_done - t0, 2),
            "seconds_produce_graph": round(t_produced - t0, 2),
            "seconds_project_graph": round(t_graph_applied - t_produced, 2),
            "seconds_produce_posts": round(t_posts_produced - t_graph, 2),
            "seconds_posts_applied": round(t_done - t_graph, 2),
            "events_per_second_projected": round(events / max(1e-9, t_done - t0), 1),
        }

    def sampled_deliveries(self, state: State, sample: int = 1500, seed: int = 5) -> dict[str, Any]:
        """Durable feed entries, counted per user on a random sample and scaled to all users.

        Follows precede every post, so each entry was written by a PostCreated fan-out.
        """
        from projections.feed import FEED

        rng = random.Random(seed)
        n = state.graph.users
        users = list(range(n)) if n <= sample else rng.sample(range(n), sample)
        counted = sum(self.read.count(FEED.name, {"user_id": state.user_ids[u]}) for u in users)
        return {"entries": round(counted * n / len(users)), "users_counted": len(users)}

    def close(self) -> None:
        self.session.cluster.shutdown()


def cleanup(names: dict[str, str]) -> list[str]:
    """Drop what a run created; returns what could not be removed (reported, never fatal)."""
    settings = settings_for(names)
    problems: list[str] = []
    try:
        from infra.cassandra.session import connect, drop_keyspace

        session = connect(settings, request_timeout=120)
        try:
            drop_keyspace(session, settings.cassandra_keyspace)
        finally:
            session.cluster.shutdown()
    except Exception as exc:
        problems.append(f"keyspace: {exc!r}")
    try:
        import redis

        client = redis.Redis.from_url(settings.redis_url)
        batch: list[Any] = []
        for key in client.scan_iter(match=f"{settings.redis_prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
        client.close()
    except Exception as exc:
        problems.append(f"redis: {exc!r}")
    try:
        asyncio.run(_delete_topics(settings))
    except Exception as exc:
        problems.append(f"topics: {exc!r}")
    try:
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint,
            aws_access_key_id=settings.s3_access_key,
            aws_secret_access_key=settings.s3_secret_key,
            region_name=settings.s3_region,
        )
        for obj in s3.list_objects_v2(Bucket=settings.s3_bucket).get("Contents", []):
            s3.delete_object(Bucket=settings.s3_bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=settings.s3_bucket)
    except Exception as exc:
        problems.append(f"bucket: {exc!r}")
    return problems


async def _delete_topics(settings: Settings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from infra.kafka.topics import bootstrap_servers

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        mine = [t for t in existing if t.startswith(settings.kafka_topic_prefix + ".")]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()
