"""One real round trip on each server of the scale stack.

Uses the servers named by GLIMPSE_* variables (e.g. after `eval "$(python -m
infra.servers.stack up)"`); starts, for this module only, whichever are missing.
"""

from __future__ import annotations

import asyncio
import os
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import RoundRobinPolicy

from infra.servers import s3
from infra.servers.stack import start_stack

pytestmark = pytest.mark.integration

ENV_OF_SERVER = {
    "kafka": ("GLIMPSE_KAFKA_BOOTSTRAP",),
    "cassandra": ("GLIMPSE_CASSANDRA_HOSTS", "GLIMPSE_CASSANDRA_PORT"),
    "redis": ("GLIMPSE_REDIS_URL",),
    "s3": ("GLIMPSE_S3_ENDPOINT", "GLIMPSE_S3_ACCESS_KEY", "GLIMPSE_S3_SECRET_KEY"),
}


@pytest.fixture(scope="module")
def stack_env() -> Iterator[dict[str, str]]:
    missing = [name for name, keys in ENV_OF_SERVER.items() if not all(os.environ.get(k) for k in keys)]
    env = {k: v for k, v in os.environ.items() if k.startswith("GLIMPSE_")}
    if not missing:
        yield env
        return
    with start_stack(only=missing) as handle:
        yield {**env, **handle.env()}


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def test_kafka_produce_then_consume(stack_env: dict[str, str]) -> None:
    bootstrap = stack_env["GLIMPSE_KAFKA_BOOTSTRAP"]
    topic = unique("smoke-")

    async def round_trip() -> bytes:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"hello", key=b"k1")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=unique("smoke-group-"), auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            message = await asyncio.wait_for(consumer.getone(), timeout=30)
            await consumer.commit()
            value = message.value
            assert isinstance(value, bytes)
            return value
        finally:
            await consumer.stop()

    assert asyncio.run(round_trip()) == b"hello"


def test_cassandra_lightweight_transaction(stack_env: dict[str, str]) -> None:
    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=30)
    cluster = Cluster(
        stack_env["GLIMPSE_CASSANDRA_HOSTS"].split(","),
        port=int(stack_env["GLIMPSE_CASSANDRA_PORT"]),
        protocol_version=5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
    )
    keyspace = unique("smoke_")
    try:
        session = cluster.connect()
        session.execute(
            f"CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        )
        session.execute(f"CREATE TABLE {keyspace}.handles (handle text PRIMARY KEY, owner uuid)")
        claim = session.prepare(f"INSERT INTO {keyspace}.handles (handle, owner) VALUES (?, ?) IF NOT EXISTS")
        first_owner, second_owner = uuid.uuid4(), uuid.uuid4()
        first = session.execute(claim, ("ada", first_owner))
        second = session.execute(claim, ("ada", second_owner))
        assert first.was_applied
        assert not second.was_applied
        assert second.one().owner == first_owner
        session.execute(f"DROP KEYSPACE {keyspace}")
    finally:
        cluster.shutdown()


def test_redis_sorted_set(stack_env: dict[str, str]) -> None:
    client = redis.Redis.from_url(stack_env["GLIMPSE_REDIS_URL"])
    key = unique("smoke:feed:")
    try:
        assert client.zadd(key, {"post-a": 3, "post-b": 1, "post-c": 2}) == 3
        assert client.zrange(key, 0, -1, desc=True) == [b"post-a", b"post-c", b"post-b"]
    finally:
        client.delete(key)
        client.close()


def test_s3_put_get_and_presigned_url(stack_env: dict[str, str]) -> None:
    client = s3.client(stack_env)
    bucket = unique("smoke-")
    body = b"\x89PNG fake image bytes"
    client.create_bucket(Bucket=bucket)
    try:
        client.put_object(Bucket=bucket, Key="media/a.png", Body=body, ContentType="image/png")
        assert client.get_object(Bucket=bucket, Key="media/a.png")["Body"].read() == body
        url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "media/a.png"}, ExpiresIn=60)
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert response.read() == body
            assert response.headers["Content-Type"] == "image/png"
    finally:
        client.delete_object(Bucket=bucket, Key="media/a.png")
        client.delete_bucket(Bucket=bucket)
        client.close()
