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

Over a `BatchOverlay` (the scale worker) a batch is projected in memory with its reads
fetched in concurrent rounds, and written in one flush: the flush's changes are first
recorded in a `FlushJournal`, then written, then the listeners run, then the positions
are saved, then the journal entry is marked done. A worker that dies half-way through
the writes leaves a journal entry that the next applier to see those partitions writes
again (the changes are final values with fixed timestamps) before projecting anything:
the redelivered batch then meets its own complete outcome, as after a crash between
the data and the positions, never a half-written one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple, Protocol

from events.union import Event, decode
from infra.projector import ProjectionFailed
from infra.worker.changes import BatchChanges, FlushJournal
from infra.worker.overlay import BatchOverlay
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


def decode_record(
    topic: str, partition: int, offset: int, value: bytes | None, decode: Callable[[bytes], Event] = decode
) -> Record:
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
        journal: FlushJournal | None = None,
        decode: Callable[[bytes], Event] = decode,
    ) -> None:
        self.decode = decode  # bytes -> event, opening sealed personal fields (infra/personal_data/)
        self._read = read
        self._journal = journal
        self._seen: set[Partition] = set()  # partitions this applier has checked the journal for
        self._epoch: object = None
        self._exclusive = False
        self._projections = list(projections)
        self._positions_store = positions_store
        self._group = group
        self._listeners = list(listeners)
        self._saved: dict[Partition, int] = {}
        self.applied = 0  # events applied since start (skipped redeliveries excluded)
        # Wall-clock times of the last batch's steps, for the freshness breakdown (bench/freshness_stages.py).
        self.marks: dict[str, float] = {}

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def ownership(self, epoch: object, exclusive: bool) -> None:
        """What the consumer owns, before a batch: `epoch` changes with every rebalance, and
        `exclusive` says this worker owns every partition, so that nobody else writes the
        read models (bar the tables the overlay treats as volatile) and the overlay may
        keep what it knows from one batch to the next. After a rebalance, forget it all:
        another worker may have written in between."""
        if epoch != self._epoch:
            self._epoch = epoch
            self._seen.clear()
            if isinstance(self._read, BatchOverlay):
                self._read.forget()
        self._exclusive = exclusive

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
        marks = self.marks = {"start": time.time()}
        # Read per batch, not cached: after a rebalance another worker may have moved a partition on.
        saved = self.load_positions()
        marks["positions"] = time.time()
        reached: dict[Partition, int] = {}
        todo: list[Record] = []
        for record in batch:
            tp = (record.topic, record.partition)
            if record.offset <= max(saved.get(tp, -1), reached.get(tp, -1)):
                continue  # applied before a crash or rebalance; its effects are already there
            todo.append(record)
            reached[tp] = record.offset
        if isinstance(self._read, BatchOverlay):
            fresh = {(r.topic, r.partition) for r in batch} - self._seen
            if fresh:
                # First sight of these partitions (a start, or a rebalance): a worker that had
                # them may have died while writing a batch; finish that before projecting.
                self._read.forget()
                if self._journal is not None:
                    self._finish_unfinished(self._read, self._journal)
            self._seen |= fresh
            self._read.retain = self._exclusive
            emitted = self._project_overlaid(self._read, todo)
        else:
            emitted = self._project_each(todo)
        marks["flushed"] = time.time()
        # Listeners keep caches (the Redis feed, counters) in step with the data, so unlike
        # the embedded projector a failing one fails the batch: positions are not saved and
        # the batch is redone, which every listener tolerates (mirrors and deletes are idempotent,
        # a repeated notification announcement is harmless).
        for event, name, emitted_ops in emitted:
            for listener in self._listeners:
                listener(event, name, emitted_ops)
        marks["listened"] = time.time()
        if reached:
            self._positions_store.save_positions(self._group, reached)
            self._saved.update(reached)
        if self._journal is not None and isinstance(self._read, BatchOverlay):
            self._journal.done(self._group)
        marks["saved"] = time.time()
        self.applied += len(todo)
        return len(todo)

    def _poison(self, record: Record, p: Projection, exc: Exception) -> PoisonRecord:
        return PoisonRecord(
            f"projection {p.name} v{p.version} cannot apply {record.event.type} "
            f"(event {record.event.event_id}): {exc!r}",
            record.topic,
            record.partition,
            record.offset,
        )

    def _project_each(self, todo: Sequence[Record]) -> list[tuple[Event, str, Sequence[Op]]]:
        emitted: list[tuple[Event, str, Sequence[Op]]] = []
        for record in todo:
            for p in self._projections:
                try:
                    ops = p.project(record.event, self._read)
                    self._read.apply(ops)
                except Exception as exc:
                    raise self._poison(record, p, exc) from exc
                if ops:
                    emitted.append((record.event, p.name, ops))
        return emitted

    def _project_overlaid(self, overlay: BatchOverlay, todo: Sequence[Record]) -> list[tuple[Event, str, Sequence[Op]]]:
        """The same, through a batch overlay: one flush for the batch, before any listener
        runs and before the positions are saved."""
        emitted: list[tuple[Event, str, Sequence[Op]]] = []
        overlay.begin([r.event for r in todo], self._projections)
        for i, record in enumerate(todo):
            for n, p in enumerate(self._projections):
                try:
                    ops = overlay.project(i, n)
                    overlay.apply(ops)
                except Exception as exc:
                    poison = self._poison(record, p, exc)
                    # What came before the poison is written, as when applying op by op;
                    # the positions are not saved, so all of it comes again after a restart.
                    try:
                        overlay.flush(self._record)
                    except Exception:
                        log.exception("could not write the records before the poison record")
                    raise poison from exc
                if ops:
                    emitted.append((record.event, p.name, ops))
        self.marks["projected"] = time.time()
        overlay.flush(self._record)
        return emitted

    def _record(self, changes: BatchChanges) -> None:
        if self._journal is not None:
            self._journal.record(self._group, changes)
        self.marks["journaled"] = time.time()

    def _finish_unfinished(self, overlay: BatchOverlay, journal: FlushJournal) -> None:
        for writer, changes in journal.unfinished(self._group):
            log.warning("writing the changes of an unfinished batch (writer %s) again", writer)
            overlay.write(changes)
            journal.finish(self._group, writer)
