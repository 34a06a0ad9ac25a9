"""The projection worker's logic without servers: the batch applier over the in-memory
read model, the merge of partitions back into write order, and the event-log token."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.union import encode
from infra.kafka.eventlog import format_token
from infra.storage.memory_readmodel import MemoryReadModel
from infra.worker.applier import BatchApplier, Partition, PoisonRecord, Record, decode_record
from infra.worker.ordering import EventTimeMerger
from projections.projection import Projection
from projections.registry import PROJECTIONS, all_tables
from projections.store import Op, ReadModel, SetAdd, Table
from tests.contracts.eventlog_contract import registered


class MemoryPositions:
    def __init__(self) -> None:
        self.saved: dict[str, dict[Partition, int]] = {}
        self.saves = 0

    def save_positions(self, group: str, positions: Mapping[Partition, int]) -> None:
        self.saves += 1
        self.saved.setdefault(group, {}).update(positions)

    def positions(self, group: str) -> dict[Partition, int]:
        return dict(self.saved.get(group, {}))


def rows(read: MemoryReadModel) -> dict[str, list[dict[str, Any]]]:
    return {t.name: read.scan(t.name, {}) for t in read.tables()}


def make(listeners: tuple[Any, ...] = ()) -> tuple[MemoryReadModel, MemoryPositions, BatchApplier]:
    read = MemoryReadModel(all_tables())
    positions = MemoryPositions()
    return read, positions, BatchApplier(read, PROJECTIONS, positions, "g", listeners)


def test_applies_a_batch_and_saves_each_partitions_last_offset() -> None:
    calls: list[tuple[int, str]] = []
    read, positions, applier = make((lambda e, name, ops: calls.append((e.event_id, name)),))
    a, b, c = registered("ann"), registered("bob"), registered("cyd")
    assert (
        applier.apply([Record("t.accounts", 0, 5, a), Record("t.accounts", 1, 0, b), Record("t.accounts", 0, 6, c)])
        == 3
    )
    assert {r["username"] for r in read.scan("accounts", {})} == {"ann", "bob", "cyd"}
    assert positions.saved["g"] == {("t.accounts", 0): 6, ("t.accounts", 1): 0}
    assert ("profile" in {name for _, name in calls}) and {e for e, _ in calls} == {a.event_id, b.event_id, c.event_id}


def test_redelivery_changes_nothing() -> None:
    read, _, applier = make()
    batch = [Record("t.accounts", 0, i, registered(f"u{i}")) for i in range(5)]
    applier.apply(batch[:3])
    before = rows(read)
    # A crash after the data but before the positions were saved: the whole batch comes again.
    assert applier.apply(batch[:3]) == 0
    assert rows(read) == before
    assert applier.apply(batch) == 2  # overlapping redelivery: only the new tail is applied
    assert applier.apply(batch) == 0
    assert len(read.scan("accounts", {})) == 5


def test_positions_are_per_partition() -> None:
    read, positions, applier = make()
    positions.save_positions("g", {("t.accounts", 0): 10})
    fresh = registered("fresh")
    applier.apply([Record("t.accounts", 0, 10, registered("old")), Record("t.accounts", 1, 3, fresh)])
    assert [r["username"] for r in read.scan("accounts", {})] == ["fresh"]


def test_positions_are_saved_after_the_data() -> None:
    read = MemoryReadModel(all_tables())

    class Checking(MemoryPositions):
        def save_positions(self, group: str, positions: Mapping[Partition, int]) -> None:
            assert read.count("accounts", {}) == 2, "positions saved before the data"
            super().save_positions(group, positions)

    applier = BatchApplier(read, PROJECTIONS, Checking(), "g")
    applier.apply([Record("t.accounts", 0, 0, registered("a")), Record("t.accounts", 0, 1, registered("b"))])


BOOM = Table("boom", partition=("id",))


def _fragile(event: Any, read: ReadModel) -> list[Op]:
    if event.username == "poison":
        raise ValueError("cannot project this")
    return [SetAdd(BOOM.name, {"id": event.event_id})]


def test_a_failing_projection_stops_the_batch_loudly_and_saves_nothing() -> None:
    read = MemoryReadModel([BOOM])
    positions = MemoryPositions()
    applier = BatchApplier(read, [Projection("fragile", 1, (BOOM,), _fragile)], positions, "g")
    with pytest.raises(PoisonRecord) as failed:
        applier.apply(
            [
                Record("t.accounts", 2, 40, registered("ok")),
                Record("t.accounts", 2, 41, registered("poison")),
                Record("t.accounts", 2, 42, registered("after")),
            ]
        )
    assert (failed.value.topic, failed.value.partition, failed.value.offset) == ("t.accounts", 2, 41)
    assert "t.accounts:2:41" in str(failed.value) and "AccountRegistered" in str(failed.value)
    assert read.count(BOOM.name, {}) == 1  # "after" was not applied
    assert positions.saves == 0  # so the batch comes again, and fails again: never skipped


def test_an_undecodable_record_is_poison() -> None:
    with pytest.raises(PoisonRecord) as failed:
        decode_record("t.posts", 3, 7, b'{"type": "NoSuchEvent"}')
    assert failed.value.offset == 7
    with pytest.raises(PoisonRecord):
        decode_record("t.posts", 3, 8, None)
    e = registered("fine")
    assert decode_record("t.accounts", 0, 1, encode(e)).event == e


def test_token_names_the_highest_offset_per_partition() -> None:
    assert format_token({}) == ""
    assert format_token({("p.posts", 3): 17, ("p.graph", 0): 2}) == "p.graph:0:2,p.posts:3:17"


# -- merging partitions back into write order ----------------------------------


def ends(partitions: Mapping[Partition, list[int]]) -> dict[Partition, int]:
    return {tp: len(orders) for tp, orders in partitions.items()}


def test_merge_waits_for_a_partition_that_has_more_to_come() -> None:
    m: EventTimeMerger[int] = EventTimeMerger(max_held=100, max_wait=60, clock=lambda: 0.0)
    a, b = ("t", 0), ("t", 1)
    m.add(a, 0, 5, 5)
    m.add(a, 1, 9, 9)
    hw = {a: 2, b: 1}  # b holds one record we have not received
    assert m.pop_ready({a, b}, hw.get, {}, 10) == []
    m.add(b, 0, 7, 7)
    assert m.pop_ready({a, b}, hw.get, {}, 10) == [5, 7, 9]


def test_merge_does_not_wait_for_caught_up_or_applied_partitions() -> None:
    m: EventTimeMerger[int] = EventTimeMerger(max_held=100, max_wait=60, clock=lambda: 0.0)
    a, b, c = ("t", 0), ("t", 1), ("t", 2)
    m.add(a, 0, 1, 1)
    hw = {a: 1, b: 0, c: 4}  # b is empty, c's four records were applied before a restart
    assert m.pop_ready({a, b, c}, hw.get, {c: 3}, 10) == [1]
    m.add(a, 1, 2, 2)
    assert m.pop_ready({a, b, c}, lambda tp: None if tp == b else hw.get(tp), {c: 3}, 10) == []  # unknown end


def test_merge_keeps_partition_order_even_against_ids() -> None:
    m: EventTimeMerger[str] = EventTimeMerger(max_held=100, max_wait=60, clock=lambda: 0.0)
    a, b = ("t", 0), ("t", 1)
    for offset, (order, item) in enumerate([(10, "a10"), (3, "a3")]):
        m.add(a, offset, order, item)
    m.add(b, 0, 5, "b5")
    assert m.pop_ready({a, b}, {a: 2, b: 1}.get, {}, 10) == ["b5", "a10", "a3"]


def test_merge_goes_ahead_when_a_partition_stalls_too_long() -> None:
    now = [0.0]
    m: EventTimeMerger[int] = EventTimeMerger(max_held=100, max_wait=5, clock=lambda: now[0])
    a, b = ("t", 0), ("t", 1)
    m.add(a, 0, 1, 1)
    hw = {a: 1, b: 9}
    assert m.pop_ready({a, b}, hw.get, {}, 10) == []
    now[0] = 6.0
    assert m.pop_ready({a, b}, hw.get, {}, 10) == [1]


def test_merge_goes_ahead_when_holding_too_much_and_forgets_revoked_partitions() -> None:
    m: EventTimeMerger[int] = EventTimeMerger(max_held=3, max_wait=60, clock=lambda: 0.0)
    a, b, c = ("t", 0), ("t", 1), ("t", 2)
    m.add(c, 0, 0, 0)
    for i in range(3):
        m.add(a, i, i + 1, i + 1)
    hw = {a: 3, b: 9, c: 1}
    assert m.pop_ready({a, b}, hw.get, {}, 2) == [1, 2]  # c was revoked; 3 held >= max_held
    assert m.held() == 1


@given(st.data())
def test_merge_restores_write_order_whatever_the_arrival(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 40))
    parts = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    written: dict[Partition, list[int]] = {}
    for order, p in enumerate(parts):
        written.setdefault(("t", p), []).append(order)
    hw = ends(written)
    m: EventTimeMerger[int] = EventTimeMerger(max_held=10_000, max_wait=60, clock=lambda: 0.0)
    cursors = dict.fromkeys(written, 0)
    out: list[int] = []
    while any(cursors[tp] < len(written[tp]) for tp in written):
        tp = data.draw(st.sampled_from(sorted(tp for tp in written if cursors[tp] < len(written[tp]))))
        take = data.draw(st.integers(1, 5))
        for _ in range(take):
            if cursors[tp] < len(written[tp]):
                order = written[tp][cursors[tp]]
                m.add(tp, cursors[tp], order, order)
                cursors[tp] += 1
        out += m.pop_ready(set(written), hw.get, {}, data.draw(st.integers(1, 10)))
    while m.held():
        out += m.pop_ready(set(written), hw.get, {}, 10)
    assert out == list(range(n))


def test_merge_ignores_a_record_delivered_again() -> None:
    m: EventTimeMerger[str] = EventTimeMerger(max_held=100, max_wait=60, clock=lambda: 0.0)
    a = ("t", 0)
    assert m.add(a, 0, 1, "first")
    assert m.pop_ready({a}, {a: 2}.get, {}, 10) == ["first"]
    assert m.add(a, 1, 2, "second")
    # After a rebalance the consumer seeks back to its committed offset and delivers both again.
    assert not m.add(a, 0, 1, "first again") and not m.add(a, 1, 2, "second again")
    assert m.add(a, 2, 3, "third")
    assert m.pop_ready({a}, {a: 3}.get, {}, 10) == ["second", "third"]
