"""The Faust app of the projection worker: one thin agent over every stream topic.

The agent takes records in batches without acknowledging them (`noack_take`), and
feeds them to an `EventTimeMerger` (infra/worker/ordering.py) that puts partitions
back into write order. One applying task takes the records that are ready, a batch
at a time, hands them to the `BatchApplier` in a single worker thread (the
Cassandra driver blocks; one thread keeps the batches in order), and acknowledges
them once the batch returned. Faust commits acknowledged offsets only, so a record
is committed after it was applied, never before; a crash repeats work, which the
applier skips or absorbs.

A batch that fails ends the process at once with a non-zero status: nothing after
the failing record is applied, nothing from it on is acknowledged, and a restart
(by the supervisor, after a fix) starts again at that record.

Before each batch (and on idle ticks) the `WorkerGate` honours a pause asked for by a
scale replay that is switching the read models to rebuilt tables (infra/worker/pause.py):
the applying thread then waits, acknowledged records stay unapplied in the merger, and
the worker goes on with the new tables and positions once the pause is lifted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NoReturn

import faust
import orjson

from infra.kafka.topics import all_topics
from infra.settings import Settings
from infra.worker.applier import BatchApplier, PoisonRecord, decode_record
from infra.worker.ordering import EventTimeMerger, Partition
from infra.worker.pause import WorkerGate

log = logging.getLogger(__name__)

EXIT_POISON = 3  # a record could not be applied; a restart reprocesses it and fails the same way
EXIT_FAILED = 4  # a batch failed for another reason (e.g. Cassandra down); a restart may succeed

HOLD_BATCHES = 8  # records held for ordering, in batches, before the merger stops waiting
MAX_HOLD_SECONDS = 5.0  # longest wait for a silent partition before applying out of order
# The take buffer is flushed on a timer, so a lone record waits up to this long before the
# merger sees it. Batches form in the merger anyway (records arriving while one is applied),
# so the buffer only needs to hand records over, not to gather them.
TAKE_SECONDS = 0.005

Raw = tuple[str, int, int, bytes | None]


def _die(status: int, message: str, *args: Any) -> NoReturn:
    log.critical(message, *args, exc_info=True)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    # No graceful stop: nothing may run between the failure and the end of the process
    # that could acknowledge, commit or apply anything past the failing record.
    os._exit(status)


def _order_of(value: bytes | None) -> int:
    """The event id, read cheaply on the loop; an unreadable record sorts first (and fails)."""
    try:
        return int(orjson.loads(value or b"")["event_id"])
    except Exception:
        return -1


class _StageTrace:
    """JSON lines of each batch's step times, when GLIMPSE_WORKER_TRACE names a file
    (bench/freshness_stages.py reads them); off by default, and then free."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the worker

    def batch(self, ready: Sequence[tuple[Any, Any, float]], released: float, marks: dict[str, float]) -> None:
        records = []
        for _, event, received in ready:
            try:
                head = orjson.loads(event.value or b"")
                kind, aggregate = head.get("type"), head.get("aggregate_id")
            except Exception:
                kind = aggregate = None
            records.append([kind, aggregate, event.message.timestamp, received])
        line = {"released": released, "acked": time.time(), "marks": marks, "records": records}
        self._file.write(orjson.dumps(line) + b"\n")


def _apply_raw(applier: BatchApplier, raw: Sequence[Raw]) -> int:
    # Decoding is CPU work: done here, off the event loop, with the applying.
    return applier.apply([decode_record(*r, decode=applier.decode) for r in raw])


def create_app(
    settings: Settings, applier: BatchApplier, datadir: Path | None = None, gate: WorkerGate | None = None
) -> faust.App:
    datadir = datadir or settings.data_dir / "worker"
    datadir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    app = faust.App(
        settings.worker_group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",  # no tables: projections keep their state in the read models
        web_enabled=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        datadir=str(datadir),
        autodiscover=False,
    )
    topics = all_topics(settings)
    topic = app.topic(*topics, key_serializer="raw", value_serializer="raw")
    batch = settings.worker_batch_size
    trace_path = os.environ.get("GLIMPSE_WORKER_TRACE")
    trace = _StageTrace(trace_path) if trace_path else None
    merger: EventTimeMerger[tuple[faust.StreamT[Any], faust.EventT[Any], float]] = EventTimeMerger(
        max_held=HOLD_BATCHES * batch, max_wait=MAX_HOLD_SECONDS
    )
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="glimpse-apply")
    arrived = asyncio.Event()  # the agent added records
    drained = asyncio.Event()  # the applier made room

    @app.agent(topic, name="glimpse-projections")
    async def feed(stream: faust.StreamT[Any]) -> None:
        # noack_take: acknowledged by apply_ready once applied, not when the next batch is asked for.
        async for events in stream.noack_take(  # type: ignore[attr-defined]
            batch, within=min(settings.worker_batch_seconds, TAKE_SECONDS)
        ):
            received = time.time()
            for event in events:
                message = event.message
                merger.add(
                    (message.topic, message.partition),
                    message.offset,
                    _order_of(event.value),
                    (stream, event, received),
                )
            arrived.set()
            while merger.held() >= HOLD_BATCHES * batch:
                drained.clear()
                await drained.wait()

    def assigned() -> set[Partition]:
        return {(tp.topic, tp.partition) for tp in app.consumer.assignment() if tp.topic in topics}

    def owns_everything() -> bool:
        """Every partition of every topic is this worker's: no other worker writes the read models."""
        owned = assigned()
        for topic in topics:
            count = app.consumer.topic_partitions(topic)
            if count is None or any((topic, p) not in owned for p in range(count)):
                return False
        return True

    def highwater(tp: Partition) -> int | None:
        end = app.consumer.highwater(faust.types.TP(*tp))
        return None if end is None else int(end)

    async def run_batch(raw: list[Raw]) -> None:
        future = asyncio.get_running_loop().run_in_executor(executor, _apply_raw, applier, raw)
        try:
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                # Stopping: finish the batch (it cannot be interrupted), then leave unacknowledged.
                await asyncio.wait([future])
                future.result()
                raise
        except PoisonRecord as exc:
            _die(
                EXIT_POISON,
                "projection worker stopped on a poison record at %s:%s:%s",
                exc.topic,
                exc.partition,
                exc.offset,
            )
        except asyncio.CancelledError:
            raise
        except BaseException:
            _die(EXIT_FAILED, "projection worker stopped: the batch from %s:%s:%s on failed", *raw[0][:3])

    async def apply_ready_loop() -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(executor, applier.load_positions)
        if gate is not None:
            await loop.run_in_executor(executor, gate.start_heartbeat)  # beats before it first looks at a pause
        while not app.should_stop:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), timeout=settings.worker_batch_seconds)
            arrived.clear()
            while True:
                if gate is not None:
                    # Idle ticks too: a replay waits for every live worker to acknowledge its pause.
                    await loop.run_in_executor(executor, gate.before_batch)
                ready = merger.pop_ready(assigned(), highwater, applier.positions, batch)
                if not ready:
                    break
                released = time.time()
                drained.set()
                applier.ownership(app.rebalancing_count, not app.rebalancing and owns_everything())
                await run_batch(
                    [(e.message.topic, e.message.partition, e.message.offset, e.value) for _, e, _ in ready]
                )
                for stream, event, _ in ready:
                    await stream.ack(event)
                if trace is not None:
                    trace.batch(ready, released, applier.marks)

    @app.task  # type: ignore[untyped-decorator]
    async def apply_ready() -> None:
        try:
            await apply_ready_loop()
        except asyncio.CancelledError:
            raise
        except BaseException:
            # The only task that applies and acknowledges: without it the worker would sit idle looking healthy.
            _die(EXIT_FAILED, "projection worker stopped: the applying task failed")

    return app
