"""How fast the Cassandra read model applies operations on this machine (printed with -s).

The floors are far below what a healthy single node does; they catch a regression
to one round trip at a time, not a slow machine.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from projections.registry import all_tables
from projections.store import CounterRef, Op, Put, SetAdd
from tests.contracts.readmodel_contract import TABLES
from tests.integration.test_cassandra_adapters import counter_of, new_keyspace, session  # noqa: F401 - fixture

pytestmark = pytest.mark.integration

from infra.cassandra.readmodel import CassandraReadModel  # noqa: E402
from infra.cassandra.session import drop_keyspace  # noqa: E402


@pytest.fixture(scope="module")
def rm(session: Any) -> Iterator[CassandraReadModel]:  # noqa: F811
    name = new_keyspace(session)
    try:
        started = time.monotonic()
        full = CassandraReadModel(session, name, all_tables())
        full.create_schema()
        report(f"full read-model schema ({len(full.schema_statements())} statements)", time.monotonic() - started)
        store = CassandraReadModel(session, name, TABLES, prefix="bench_")
        store.create_schema()
        yield store
    finally:
        drop_keyspace(session, name)


def report(what: str, seconds: float, n: int | None = None) -> None:
    rate = f", {n / seconds:,.0f} ops/s" if n else ""
    print(f"\n[cassandra] {what}: {seconds:.2f} s{rate}")


def timed(rm: CassandraReadModel, batches: list[list[Op]]) -> float:
    started = time.monotonic()
    for ops in batches:
        rm.apply(ops)
    return time.monotonic() - started


def _likes(user: int, n: int, partitions: int) -> list[Op]:
    ops: list[Op] = []
    for i in range(n):
        p = user * 1_000_000 + i % partitions
        ops.append(
            SetAdd(
                "t_feed", {"user_id": p, "post_id": i, "author_id": 1}, (CounterRef("t_counts", {"user_id": p}, "n"),)
            )
        )
    return ops


def test_put_throughput(rm: CassandraReadModel) -> None:
    run = uuid.uuid4().int % 1000
    ops: list[Op] = [
        Put("t_feed", {"user_id": run * 10_000 + i % 500, "post_id": i, "author_id": 7}) for i in range(10_000)
    ]
    seconds = timed(rm, [ops])
    report("10k Put in one apply (500 partitions)", seconds, 10_000)
    assert rm.count("t_feed", {"user_id": run * 10_000}) == 20
    assert 10_000 / seconds > 1_000


def test_set_add_with_counter_throughput(rm: CassandraReadModel) -> None:
    spread = _likes(1, 1000, 100)
    seconds = timed(rm, [spread])
    report("1k SetAdd+counter in one apply (100 partitions)", seconds, 1000)
    assert counter_of(rm, 1_000_000) == 10
    assert 1000 / seconds > 100

    one_partition = _likes(2, 1000, 1)
    seconds = timed(rm, [one_partition])
    report("1k SetAdd+counter in one apply (1 partition: one recount)", seconds, 1000)
    assert counter_of(rm, 2_000_000) == 1000

    per_event = _likes(3, 1000, 100)
    seconds = timed(rm, [[op] for op in per_event])
    report("1k SetAdd+counter, one apply each (as the worker applies an event)", seconds, 1000)
    assert counter_of(rm, 3_000_000) == 10
    assert 1000 / seconds > 50

    again = timed(rm, [spread])
    report("the same 1k SetAdd+counter redelivered", again, 1000)
    assert counter_of(rm, 1_000_000) == 10


def test_the_bench_baseline_of_raw_inserts_writes_every_row(session: Any) -> None:  # noqa: F811
    from bench.baselines import cassandra_insert_rate

    result = cassandra_insert_rate(session, total=400, per_batch=20)
    assert result["rows_written"] == 800  # each way wrote its own rows
    assert result["rows_per_second"] == max(result["rows_per_second_single"], result["rows_per_second_batched"]) > 0
