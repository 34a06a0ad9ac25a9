"""The projection worker (`glimpse worker`, a real subprocess) against the real Kafka and
Cassandra: it builds the same read models as the embedded SQLite projector from the
same events, survives a SIGKILL in the middle of a backlog without losing or doubling
anything, and stops loudly on a record it cannot apply.

The history is the demo seeder's (users, follows, requests, posts with media, likes,
comments, bookmarks, stories and views), appended command by command through the
Kafka event log; the reference is the embedded container that seeded it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from events.union import encode
from infra.settings import Settings
from projections.registry import all_tables
from tests.contracts.eventlog_contract import registered
from tests.integration.kafka_env import (
    commands_of,
    delete_topics,
    differences,
    env_of,
    isolated,
    keyspace,
    seeded_history,
    table_rows,
)

pytestmark = pytest.mark.integration

pytest.importorskip("faust")
pytest.importorskip("cassandra")

from aiokafka import AIOKafkaProducer  # noqa: E402

from infra.cassandra.command_store import CassandraCommandStore, parse_token  # noqa: E402
from infra.cassandra.readmodel import CassandraReadModel  # noqa: E402
from infra.kafka.eventlog import KafkaEventLog  # noqa: E402
from infra.kafka.topics import bootstrap_servers, ensure_topics, topic_of  # noqa: E402
from infra.worker.app import EXIT_POISON  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


class Stack:
    """One isolated world: topics, keyspace, consumer group, and the worker processes run in it."""

    def __init__(self, settings: Settings, session: Any, tmp: Path) -> None:
        self.settings = settings
        self.session = session
        self.tmp = tmp
        self.store = CassandraCommandStore(session, settings.cassandra_keyspace)
        self.read = CassandraReadModel(session, settings.cassandra_keyspace, all_tables())
        self.workers: list[subprocess.Popen[bytes]] = []
        self.log = KafkaEventLog(settings, self.store)

    def start_worker(self) -> subprocess.Popen[bytes]:
        n = len(self.workers)
        out = (self.tmp / f"worker-{n}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "worker", "--log-level", "info"],
            cwd=ROOT,
            env=env_of(self.settings) | {"GLIMPSE_DATA_DIR": str(self.tmp / f"worker-data-{n}")},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(proc)
        return proc

    def worker_log(self, n: int = -1) -> str:
        index = n if n >= 0 else len(self.workers) + n
        return (self.tmp / f"worker-{index}.log").read_text(errors="replace")

    def append_history(self, events: list[Any]) -> dict[tuple[str, int], int]:
        """Append command by command; returns the last offset written per partition."""
        last: dict[tuple[str, int], int] = {}
        for command in commands_of(events):
            for tp, offset in parse_token(self.log.append(command)).items():
                last[tp] = max(last.get(tp, -1), offset)
        return last

    def applied(self) -> dict[tuple[str, int], int]:
        return self.store.positions(self.settings.worker_group)

    def wait_applied(self, target: dict[tuple[str, int], int], timeout: float, proc: Any = None) -> float:
        started = time.monotonic()
        deadline = started + timeout
        while True:
            applied = self.applied()
            if all(applied.get(tp, -1) >= offset for tp, offset in target.items()):
                return time.monotonic() - started
            if proc is not None and proc.poll() is not None:
                pytest.fail(f"the worker exited with {proc.returncode}:\n{self.worker_log()[-3000:]}")
            if time.monotonic() > deadline:
                behind = {tp: (applied.get(tp, -1), o) for tp, o in target.items() if applied.get(tp, -1) < o}
                pytest.fail(f"the worker did not catch up in {timeout}s; behind: {behind}\n{self.worker_log()[-3000:]}")
            time.sleep(0.05)

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    settings = isolated()
    with keyspace(settings, read_models=True) as session:
        s = Stack(settings, session, tmp_path)
        try:
            yield s
        finally:
            s.stop_workers()
            s.log.close()
            delete_topics(settings)


def assert_same_read_models(stack: Stack, reference: Any) -> None:
    tables = all_tables()
    problems = differences(table_rows(reference.read, tables), table_rows(stack.read, tables))
    assert not problems, "the worker's read models differ from the embedded projector's:\n" + "\n".join(problems)


def test_the_worker_builds_the_embedded_read_models(stack: Stack, tmp_path: Path) -> None:
    events, reference = seeded_history(tmp_path / "embedded", users=45)
    assert len(events) >= 300  # "a few hundred"
    worker = stack.start_worker()  # running first: it projects while the commands come in
    started = time.monotonic()
    last = stack.append_history(events)
    stack.wait_applied(last, timeout=90, proc=worker)
    print(f"\n{len(events)} events appended and projected live in {time.monotonic() - started:.1f}s")
    assert_same_read_models(stack, reference)
    reference.close()


def test_a_killed_worker_resumes_without_losing_or_doubling(stack: Stack, tmp_path: Path) -> None:
    events, reference = seeded_history(tmp_path / "embedded", users=220)
    assert len(events) >= 3000
    last = stack.append_history(events)
    total = sum(offset + 1 for offset in last.values())
    assert total == len(events)

    started = time.monotonic()
    first = stack.start_worker()
    deadline = time.monotonic() + 120
    while True:  # SIGKILL it once it has applied a good part of the backlog, not all of it
        done = sum(o + 1 for o in stack.applied().values())
        if done >= total // 4:
            break
        assert first.poll() is None, stack.worker_log()[-3000:]
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.01)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    at_kill = sum(o + 1 for o in stack.applied().values())
    assert at_kill < total, "the backlog was finished before the kill: make it bigger"

    second = stack.start_worker()
    stack.wait_applied(last, timeout=180, proc=second)
    elapsed = time.monotonic() - started
    print(
        f"\nkill/restart: {len(events)} events, killed after {at_kill} applied, "
        f"all applied {elapsed:.1f}s after the first start"
    )
    assert_same_read_models(stack, reference)
    reference.close()


def test_worker_throughput(stack: Stack, tmp_path: Path) -> None:
    events, reference = seeded_history(tmp_path / "embedded", users=80)
    reference.close()
    last = stack.append_history(events)
    worker = stack.start_worker()
    # Time from the first applied position, so process start-up and group join do not count.
    deadline = time.monotonic() + 60
    while not stack.applied():
        assert worker.poll() is None and time.monotonic() < deadline, stack.worker_log()[-3000:]
        time.sleep(0.01)
    elapsed = stack.wait_applied(last, timeout=180, proc=worker)
    print(f"\nworker: {len(events)} events in {elapsed:.1f}s = {len(events) / elapsed:.0f} events/s")


def produce_raw(settings: Settings, records: list[tuple[str, int, bytes, bytes]]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(settings), acks="all")
        await producer.start()
        try:
            for topic, partition, key, value in records:
                await producer.send_and_wait(topic, value, key=key, partition=partition)
        finally:
            await producer.stop()

    asyncio.run(run())


def test_a_poison_record_stops_the_worker_loudly(stack: Stack) -> None:
    ensure_topics(stack.settings)
    topic = topic_of(stack.settings, "accounts")
    before, after = registered("before"), registered("after")
    produce_raw(
        stack.settings,
        [
            (topic, 2, b"1", encode(before)),  # offset 0
            (topic, 2, b"1", b'{"type": "NoSuchEvent", "event_id": 1}'),  # offset 1: cannot be decoded
            (topic, 2, b"1", encode(after)),  # offset 2: must never be applied past the poison
        ],
    )
    for run in range(2):  # and a restart fails the same way instead of skipping it
        worker = stack.start_worker()
        try:
            status = worker.wait(timeout=90)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not stop on the poison record:\n{stack.worker_log()[-3000:]}")
        output = stack.worker_log()
        assert status == EXIT_POISON, output[-3000:]
        assert f"poison record at {topic}:2:1" in output, output[-3000:]
        assert "NoSuchEvent" in output
        assert stack.applied().get((topic, 2), -1) < 1, f"run {run}: the position moved past the poison"
        usernames = {r["username"] for r in stack.read.scan("accounts", {})}
        assert "after" not in usernames, f"run {run}: a record after the poison was applied"
