"""The Kafka event log against the real Kafka and Cassandra: the event-log contract,
Kafka down, the token, where events land, and append latency.

Each test gets its own topic prefix and keyspace (both deleted afterwards).
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from commands.errors import Unavailable
from commands.ports import Reservation, ReservationTaken, StoredResult
from events.union import decode
from infra.settings import Settings
from tests.contracts.eventlog_contract import EventLogContract, registered
from tests.integration.kafka_env import commands_of, delete_topics, isolated, keyspace, seeded_history

pytestmark = pytest.mark.integration

pytest.importorskip("aiokafka")
pytest.importorskip("cassandra")

from aiokafka import AIOKafkaConsumer  # noqa: E402
from aiokafka.partitioner import DefaultPartitioner  # noqa: E402

from infra.cassandra.command_store import CassandraCommandStore, parse_token  # noqa: E402
from infra.kafka.eventlog import KafkaEventLog  # noqa: E402
from infra.kafka.topics import all_topics, bootstrap_servers, ensure_topics  # noqa: E402


class Harness:
    def __init__(self, settings: Settings, session: Any) -> None:
        self.settings = settings
        self.store = CassandraCommandStore(session, settings.cassandra_keyspace)
        self.logs: list[KafkaEventLog] = []

    def log(self, **overrides: Any) -> KafkaEventLog:
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        log = KafkaEventLog(settings, self.store)
        self.logs.append(log)
        return log


@pytest.fixture
def harness() -> Iterator[Harness]:
    settings = isolated(kafka_send_timeout_seconds=5.0)
    with keyspace(settings) as session:
        h = Harness(settings, session)
        try:
            yield h
        finally:
            for log in h.logs:
                log.close()
            delete_topics(settings)


class TestKafkaEventLog(EventLogContract):
    @pytest.fixture
    def log(self, harness: Harness) -> Any:
        return harness.log()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kafka_down_answers_unavailable_and_releases_the_claim(harness: Harness) -> None:
    log = harness.log(kafka_bootstrap=f"127.0.0.1:{closed_port()}", kafka_send_timeout_seconds=2.0)
    claim = Reservation("username", "down", 1)
    started = time.monotonic()
    with pytest.raises(Unavailable) as failed:
        log.append([registered("down")], reserve=[claim], result=StoredResult("sc", "fp", 201, b"{}", ""))
    assert failed.value.status == 503 and failed.value.retry_after >= 1
    assert time.monotonic() - started < 2.0 + 6.0  # bounded by the send timeout (plus the loop's grace)
    assert log.stored_result("sc") is None
    harness.store.reserve([Reservation("username", "down", 2)])  # the failed append kept nothing


def test_a_silent_kafka_times_out_as_unavailable(harness: Harness) -> None:
    """A broker that takes the connection but never answers: bounded by the send timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes handshakes; nobody ever reads or answers
        log = harness.log(kafka_bootstrap=f"127.0.0.1:{silent.getsockname()[1]}", kafka_send_timeout_seconds=1.5)
        claim = Reservation("username", "silent", 1)
        started = time.monotonic()
        with pytest.raises(Unavailable):
            log.append([registered("silent")], reserve=[claim])
        assert time.monotonic() - started < 1.5 + 6.0
    harness.store.reserve([Reservation("username", "silent", 2)])


def test_a_taken_claim_does_not_reach_kafka(harness: Harness) -> None:
    log = harness.log()
    log.append([registered("a")], reserve=[Reservation("username", "a", 1)])
    with pytest.raises(ReservationTaken):
        log.append([registered("a2")], reserve=[Reservation("username", "a", 2)])
    assert [e.username for e in consume_all(harness.settings, expected=1)] == ["a"]


def consume_all(settings: Settings, expected: int, timeout: float = 30.0) -> list[Any]:
    return [e for _, e in consume_records(settings, expected, timeout)]


def consume_records(settings: Settings, expected: int, timeout: float = 30.0) -> list[tuple[Any, Any]]:
    """Every record of the stream topics (message, decoded event), until `expected` arrived."""

    async def run() -> list[tuple[Any, Any]]:
        consumer = AIOKafkaConsumer(
            *all_topics(settings),
            bootstrap_servers=bootstrap_servers(settings),
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        out: list[tuple[Any, Any]] = []
        deadline = time.monotonic() + timeout
        try:
            while len(out) < expected and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    out += [(m, decode(m.value)) for m in records]
            await asyncio.sleep(0.5)  # anything beyond `expected` would show up now
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out += [(m, decode(m.value)) for m in records]
        finally:
            await consumer.stop()
        return out

    return asyncio.run(run())


def test_events_land_on_their_stream_keyed_by_aggregate_in_order(harness: Harness, tmp_path: Path) -> None:
    events, container = seeded_history(tmp_path / "embedded", users=12)
    container.close()
    log = harness.log()
    tokens = [log.append(command) for command in commands_of(events)]
    records = consume_records(harness.settings, expected=len(events))
    assert sorted(e.event_id for _, e in records) == sorted(e.event_id for e in events)  # each exactly once

    partitions = harness.settings.kafka_partitions
    for message, event in records:
        assert message.topic == f"{harness.settings.kafka_topic_prefix}.{event.STREAM}"
        assert message.key == str(event.aggregate_id).encode()
        assert message.partition == DefaultPartitioner()(message.key, list(range(partitions)), None)
    # Within a partition, events keep the order in which they were appended.
    position = {e.event_id: i for i, e in enumerate(events)}
    by_partition: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for message, event in records:
        by_partition.setdefault((message.topic, message.partition), []).append(
            (message.offset, position[event.event_id])
        )
    for entries in by_partition.values():
        entries.sort()
        assert [p for _, p in entries] == sorted(p for _, p in entries)
    # A token names, per partition it wrote to, the offset of the command's last event there.
    final = {tp: max(o for o, _ in entries) for tp, entries in by_partition.items()}
    reached: dict[tuple[str, int], int] = {}
    for token in tokens:
        for tp, offset in parse_token(token).items():
            reached[tp] = max(reached.get(tp, -1), offset)
    assert reached == final
    assert log.append([]) == ""


def test_append_latency(harness: Harness) -> None:
    ensure_topics(harness.settings)
    log = harness.log()
    log.append([registered("warm-up")])

    def measure(label: str, with_result: bool) -> None:
        latencies = []
        for i in range(300):
            result = StoredResult(f"{label}{i}", "fp", 201, b"{}", "") if with_result else None
            started = time.perf_counter()
            log.append([registered(f"{label}{i}")], result=result)
            latencies.append(time.perf_counter() - started)
        latencies.sort()
        p50, p99 = statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]
        print(f"\nKafka append, 1-event commands, {label}: p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms")
        assert p99 < 1.0

    measure("events only", with_result=False)
    measure("with an idempotent result (Cassandra LWT)", with_result=True)
