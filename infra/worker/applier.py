"""Applies a batch of Kafka records to the read models, whatever the backend.

The same projections as the embedded projector (infra/projector.py), in registry
order, through the `ReadModelWriter` port. Delivery is at least once: the worker may
see a record again after a crash or a rebalance. Two things make that harmless:
- each partition's last applied offset is saved (after the data) in the same store
  as the read models, and records at or below it are skipped;
- every sink is idempotent for the records between the data and the saved position
  (upserts, set inserts/removes whose counters follow the set).

A record that cannot be decoded or projected stops the worker loudly, naming its
topic, partition and offset: skipping it would silently lose a fact for good.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol

from events.union import Event, decode
from infra.projector import ProjectionFailed
from projections.projection import Projection
from projections.store import Op, ReadModelWriter

log = logging.getLogger(__name__)

Listener = Callable[[Event, str, Sequence[Op]], None]
Partition = tuple[str, int]  # (topic, partition)


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    event: Event


class PositionStore(Protocol):
    """Last applied offset per (topic, partition), per consumer group."""

    def save_positions(self, group: str, positions: Mapping[Partition, int]) -> None: ...

    def positions(self, group: str) -> Mapping[Partition, int]: ...


class PoisonRecord(ProjectionFailed):
    """A record the worker cannot apply; it must stop rather than skip it."""

    def __init__(self, message: str, topic: str, partition: int, offset: int) -> None:
        super().__init__(f"{message} at {topic}:{partition}:{offset}")
        self.topic = topic
        self.partition = partition
        self.offset = offset


def decode_record(topic: str, partition: int, offset: int, value: bytes | None) -> Record:
    if value is None:
        raise PoisonRecord("empty Kafka record (no value)", topic, partition, offset)
    try:
        event = decode(value)
    except Exception as exc:
        raise PoisonRecord(f"undecodable event {value[:120]!r}: {exc}", topic, partition, offset) from exc
    return Record(topic, partition, offset, event)


class BatchApplier:
    def __init__(
        self,
        read: ReadModelWriter,
        projections: Sequence[Projection],
        positions_store: PositionStore,
        group: str,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self._read = read
        self._projections = list(projections)
        self._positions_store = positions_store
        self._group = group
        self._listeners = list(listeners)
        self._saved: dict[Partition, int] = {}
        self.applied = 0  # events applied since start (skipped redeliveries excluded)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def load_positions(self) -> dict[Partition, int]:
        self._saved = dict(self._positions_store.positions(self._group))
        return dict(self._saved)

    @property
    def positions(self) -> dict[Partition, int]:
        """Last applied offset per partition, as of the last batch (or `load_positions`)."""
        return dict(self._saved)

    def apply(self, batch: Sequence[Record]) -> int:
        """Apply the records not applied yet, in the given (Kafka) order; returns how many."""
        if not batch:
            return 0
        # Read per batch, not cached: after a rebalance another worker may have moved a partition on.
        saved = self.load_positions()
        reached: dict[Partition, int] = {}
        emitted: list[tuple[Event, str, Sequence[Op]]] = []
        count = 0
        for record in batch:
            tp = (record.topic, record.partition)
            if record.offset <= max(saved.get(tp, -1), reached.get(tp, -1)):
                continue  # applied before a crash or rebalance; its effects are already there
            for p in self._projections:
                try:
                    ops = p.project(record.event, self._read)
                    self._read.apply(ops)
                except Exception as exc:
                    raise PoisonRecord(
                        f"projection {p.name} v{p.version} cannot apply {record.event.type} "
                        f"(event {record.event.event_id}): {exc!r}",
                        record.topic,
                        record.partition,
                        record.offset,
                    ) from exc
                if ops:
                    emitted.append((record.event, p.name, ops))
            reached[tp] = record.offset
            count += 1
        # Listeners keep caches (the Redis feed, counters) in step with the data, so unlike
        # the embedded projector a failing one fails the batch: positions are not saved and
        # the batch is redone, which every listener tolerates (mirrors and deletes are idempotent,
        # a repeated notification announcement is harmless).
        for event, name, emitted_ops in emitted:
            for listener in self._listeners:
                listener(event, name, emitted_ops)
        if reached:
            self._positions_store.save_positions(self._group, reached)
            self._saved.update(reached)
        self.applied += count
        return count
