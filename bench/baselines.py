"""Raw baselines measured in the same run as the system, so results read as ratios.

- `zadd_rate`: pipelined ZADD of feed-sized members (16 bytes) into 10,000 sorted
  sets, 1,000 commands per round trip, from one Python client: what the fan-out's
  Redis half could do at best from the same language. `redis-benchmark` on the same
  command is reported beside it when the binary is installed (C client, 16 clients).
- `sqlite_insert_rate`, `cassandra_insert_rate`: feed-shaped rows (user, post,
  author) written by one Python client into the durable store the fan-out writes,
  with nothing else around them:
  SQLite (embedded; one `executemany` per 1,000 rows in one transaction, the read
  models' settings) or Cassandra (scale; the read models' driver session, prepared
  INSERTs 128 in flight, and unlogged batches of 20 rows). A delivery writes two such
  rows, so fan-out deliveries/s can reach at most half of it.
- `kafka_latency`: produce -> consume latency of single small messages at a modest
  rate with the event log's producer settings (acks=all, idempotent, no linger).
- The bare FastAPI route over the same feed reads is in bench/bare_app.py and is
  loaded by the same open-loop generator (see runner.py).

Every key and topic here has a unique name and is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
import subprocess
import time
import uuid
from typing import Any
from urllib.parse import urlparse

from bench.stats import summary

_MEMBER = struct.Struct(">Qq")


def zadd_rate(redis_url: str, total: int = 200_000, batch: int = 1000) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(redis_url)
    prefix = f"bench-zadd-{uuid.uuid4().hex[:8]}:"
    try:
        start = time.perf_counter()
        for first in range(0, total, batch):
            pipe = client.pipeline(transaction=False)
            for i in range(first, first + batch):
                pipe.zadd(f"{prefix}{{{i % 10_000}}}", {_MEMBER.pack(1 << 60 | i, i): 0})
            pipe.execute()
        seconds = time.perf_counter() - start
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for at in range(0, len(keys), 500):
            client.delete(*keys[at : at + 500])
        client.close()
    return {
        "method": f"redis-py pipeline, {batch} ZADD per round trip, 16-byte members, 10,000 keys, one client",
        "zadd_per_second": round(total / seconds, 1),
        "redis_benchmark": redis_benchmark_zadd(redis_url),
    }


def redis_benchmark_zadd(redis_url: str, total: int = 200_000) -> dict[str, Any] | None:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return None
    url = urlparse(redis_url)
    db = (url.path or "/0").strip("/") or "0"
    prefix = f"bench-rb-{uuid.uuid4().hex[:8]}:"
    args = [binary, "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 6379), "--dbnum", db]
    args += ["-n", str(total), "-P", "100", "-c", "16", "-r", "10000", "-q", "--csv"]
    args += ["ZADD", f"{prefix}__rand_int__", "0", "member:__rand_int__"]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    finally:
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for at in range(0, len(keys), 500):
            client.delete(*keys[at : at + 500])
        client.close()
    rps = None
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if len(cells) >= 2 and cells[0].upper().startswith("ZADD"):
            with contextlib.suppress(ValueError):
                rps = float(cells[1])
    return (
        None
        if rps is None
        else {"method": "redis-benchmark -P 100 -c 16, ZADD into 10,000 keys", "zadd_per_second": rps}
    )


FEED_SHAPED_USERS = 10_000


def _feed_rows(total: int) -> list[tuple[int, int, int]]:
    return [(i % FEED_SHAPED_USERS, i, i % 977) for i in range(total)]


def sqlite_insert_rate(total: int = 500_000) -> dict[str, Any]:
    import tempfile

    from infra.storage.sqlite_eventlog import connect

    with tempfile.TemporaryDirectory() as folder:
        conn = connect(f"{folder}/raw.db")  # the read models' own connection settings
        try:
            conn.execute(
                "CREATE TABLE feed (user_id INTEGER, post_id INTEGER, author_id INTEGER, "
                "PRIMARY KEY (user_id, post_id)) WITHOUT ROWID"
            )
            rows = _feed_rows(total)
            start = time.perf_counter()
            conn.execute("BEGIN")
            for at in range(0, total, 1000):
                conn.executemany("INSERT OR REPLACE INTO feed VALUES (?, ?, ?)", rows[at : at + 1000])
            conn.execute("COMMIT")
            seconds = time.perf_counter() - start
        finally:
            conn.close()
    return {
        "method": "SQLite, one executemany per 1,000 feed rows, one transaction, the read models' connection settings",
        "rows_per_second": round(total / seconds, 1),
    }


def cassandra_insert_rate(session: Any, total: int = 60_000, per_batch: int = 20) -> dict[str, Any]:
    """`session`: infra.cassandra.session.connect's (the worker's settings); a keyspace of its own."""
    from cassandra.concurrent import execute_concurrent, execute_concurrent_with_args
    from cassandra.query import BatchStatement, BatchType

    keyspace = f"bench_raw_{uuid.uuid4().hex[:8]}"
    try:
        session.execute(
            f"CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        )
        session.execute(
            f"CREATE TABLE {keyspace}.feed (user_id bigint, post_id bigint, author_id bigint, "
            "PRIMARY KEY (user_id, post_id))"
        )
        insert = session.prepare(f"INSERT INTO {keyspace}.feed (user_id, post_id, author_id) VALUES (?, ?, ?)")
        rows = _feed_rows(total)
        start = time.perf_counter()
        execute_concurrent_with_args(session, insert, rows, concurrency=128, raise_on_first_error=True)
        single = total / (time.perf_counter() - start)

        def batch(chunk: list[tuple[int, int, int]]) -> BatchStatement:
            b = BatchStatement(batch_type=BatchType.UNLOGGED)
            for row in chunk:
                b.add(insert, (row[0], row[1] + total, row[2]))  # new rows, not the same ones again
            return b

        by_user = sorted(rows)  # a batch holds a few partitions' rows, as the worker's do
        start = time.perf_counter()
        batches = [(batch(by_user[at : at + per_batch]), None) for at in range(0, total, per_batch)]
        execute_concurrent(session, batches, concurrency=128, raise_on_first_error=True)
        batched = total / (time.perf_counter() - start)
        written = session.execute(f"SELECT COUNT(*) FROM {keyspace}.feed").one()[0]
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}")
    return {
        "method": (
            "Cassandra, the read models' driver session, one Python client: prepared INSERTs 128 in flight, "
            f"then unlogged batches of {per_batch} rows sorted by partition"
        ),
        "rows_written": written,
        "rows_per_second_single": round(single, 1),
        "rows_per_second_batched": round(batched, 1),
        "rows_per_second": round(max(single, batched), 1),
    }


async def _kafka_latency(bootstrap: str, messages: int, rate: float) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.structs import TopicPartition

    servers = [h.strip() for h in bootstrap.split(",") if h.strip()]
    topic = f"bench-latency-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
        producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=True, linger_ms=0)
        consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, fetch_max_wait_ms=5)
        await producer.start()
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_end(tp)
            await consumer.position(tp)
            latencies: list[float] = []

            async def consume() -> None:
                while len(latencies) < messages:
                    batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1000)
                    now = time.perf_counter_ns()
                    for record in batch.get(tp, []):
                        latencies.append((now - int(record.value or b"0")) / 1e6)

            reader = asyncio.create_task(consume())
            await asyncio.sleep(0.5)  # the consumer's first fetch is in flight
            for _ in range(messages):
                await producer.send_and_wait(topic, str(time.perf_counter_ns()).encode())
                await asyncio.sleep(1.0 / rate)
            await asyncio.wait_for(reader, timeout=30)
        finally:
            await consumer.stop()
            await producer.stop()
        return {
            "method": f"aiokafka, acks=all, idempotent, linger 0, {messages} messages at {rate:g}/s, one partition",
            "latency_ms": summary(latencies),
        }
    finally:
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()


def kafka_latency(bootstrap: str, messages: int = 500, rate: float = 200.0) -> dict[str, Any]:
    return asyncio.run(_kafka_latency(bootstrap, messages, rate))
