"""Kafka as the event log of the scale stack, behind the synchronous `EventLog` port.

An append is: claim the reservations in the command store (Cassandra LWT), produce
every event to its stream's topic keyed by aggregate id with an idempotent producer
and acks=all, wait until Kafka acknowledged all of them, release what the command
gave up, and store the idempotent result with the token. Kafka acknowledging the
events is the commit point.

If Kafka is down or too slow, the claimed reservations are released and the command
answers 503 (`Unavailable`), so from the client's side nothing was written. Windows
that remain, by design of a log without a transaction spanning two stores:
- a produce request that reached the broker just before the timeout may still be
  written although we answered 503 (unsent batches are dropped with the producer);
- Kafka acked the events but releasing or storing the result failed: the events
  stand, the command answers 503, and a retry re-executes. Decide functions are
  idempotent by design (a second like finds the reservation, a second follow is a
  no-op in the read models), so the worst case is a duplicate fact in the log that
  the projections absorb.
Kafka transactions (read_committed consumers) would close the first window at the
cost of a round trip per command; not worth it yet.

The command bus is synchronous, aiokafka is not: the producer lives on its own event
loop in a background thread, and each append hands one coroutine to it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from commands.errors import Unavailable
from commands.ports import Reservation, StoredResult
from events.union import Event
from infra.kafka.topics import bootstrap_servers, ensure_topics_async, topic_of
from infra.personal_data.codec import PLAIN, EventCodec
from infra.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

# Extra time the calling thread grants the loop beyond the send timeout, so the
# loop's own timeout (which also drops the producer's unsent batches) fires first.
_GRACE_SECONDS = 5.0


class CommandStore(Protocol):
    """What the log needs from the reservation/result store (Cassandra in production)."""

    def reserve(self, reservations: Sequence[Reservation]) -> None: ...

    def release(self, reservations: Sequence[Reservation]) -> None: ...

    def put_result(self, result: StoredResult) -> None: ...

    def get_result(self, scope: str) -> StoredResult | None: ...


def format_token(positions: dict[tuple[str, int], int]) -> str:
    """`topic:partition:offset` of the highest offset written per partition, comma-separated."""
    return ",".join(f"{topic}:{partition}:{offset}" for (topic, partition), offset in sorted(positions.items()))


class _LoopThread:
    """An event loop running forever in a daemon thread, fed coroutines from other threads."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class KafkaEventLog:
    def __init__(self, settings: Settings, command_store: CommandStore, codec: EventCodec = PLAIN) -> None:
        self._settings = settings
        self._codec = codec
        self._store = command_store
        self._timeout = settings.kafka_send_timeout_seconds
        self._loop = _LoopThread("glimpse-kafka-producer")
        self._producer: AIOKafkaProducer | None = None  # started on first use: nothing connects at build time
        self._topics_ready = False
        self._starting = asyncio.Lock()  # concurrent appends share one producer
        self._closed = False

    # -- EventLog port -------------------------------------------------------------

    def append(
        self,
        events: Sequence[Event],
        *,
        reserve: Sequence[Reservation] = (),
        release: Sequence[Reservation] = (),
        result: StoredResult | None = None,
    ) -> str:
        if self._closed:
            raise RuntimeError("the Kafka event log is closed")
        if reserve:
            self._store.reserve(reserve)  # ReservationTaken propagates: nothing written
        token = ""
        if events:
            records = [
                (topic_of(self._settings, e.STREAM), str(e.aggregate_id).encode(), data)
                for e, data in zip(events, self._codec.encode_many(events), strict=True)
            ]
            try:
                token = self._loop.run(self._produce(records), self._timeout + _GRACE_SECONDS)
            except BaseException as exc:
                if reserve:
                    self._release_claimed(reserve)
                if isinstance(exc, Unavailable):
                    raise
                if isinstance(exc, KafkaError | OSError | concurrent.futures.TimeoutError):
                    raise Unavailable(f"the event log is unavailable: {exc!r}") from exc
                raise
        if release:
            self._store.release(release)
        if result is not None:
            body = self._codec.seal_result(result.subject, result.body)
            self._store.put_result(StoredResult(result.scope, result.fingerprint, result.status, body, token))
        return token

    def stored_result(self, scope: str) -> StoredResult | None:
        stored = self._store.get_result(scope)
        body = None if stored is None else self._codec.open_result(stored.body)
        return None if stored is None or body is None else replace(stored, body=body)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.run(self._stop_producer(), self._timeout + _GRACE_SECONDS)
        except Exception:
            log.exception("stopping the Kafka producer failed")
        self._loop.stop()

    # -- on the producer's loop --------------------------------------------------

    async def _produce(self, records: list[tuple[str, bytes, bytes]]) -> str:
        try:
            return await asyncio.wait_for(self._send_all(records), self._timeout)
        except (TimeoutError, KafkaError, OSError) as exc:
            # Batches still queued would go out whenever Kafka answers again, after we
            # told the client 503 and released its reservations: drop them with the producer.
            await self._abandon_producer()
            raise Unavailable(f"the event log did not acknowledge the events: {exc!r}") from exc

    async def _send_all(self, records: list[tuple[str, bytes, bytes]]) -> str:
        producer = await self._started_producer()
        # Queue every record first, then wait: one round trip per partition, not per event.
        acks = [await producer.send(topic, value, key=key) for topic, key, value in records]
        written: dict[tuple[str, int], int] = {}
        for meta in await asyncio.gather(*acks):
            tp = (meta.topic, meta.partition)
            written[tp] = max(written.get(tp, -1), meta.offset)
        return format_token(written)

    async def _started_producer(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._starting:
            if self._producer is None:
                self._producer = await self._start_producer()
            return self._producer

    async def _start_producer(self) -> AIOKafkaProducer:
        if not self._topics_ready:
            await ensure_topics_async(self._settings, timeout=self._timeout)
            self._topics_ready = True
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers(self._settings),
            acks="all",
            enable_idempotence=True,  # broker-side dedup of retried batches, and per-partition order kept
            request_timeout_ms=int(self._timeout * 1000),
            linger_ms=0,
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    async def _abandon_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        # stop() first flushes, which never ends while Kafka is away; cancel the flush,
        # which leaves the sender and the connections for stop() to tear down.
        stopping = asyncio.ensure_future(producer.stop())
        done, _ = await asyncio.wait([stopping], timeout=0.2)
        if not done:
            stopping.cancel()
            sender = getattr(producer, "_sender", None)
            if sender is not None:
                await sender.close()
            await producer.client.close()

    async def _stop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    # -- helpers -----------------------------------------------------------------

    def _release_claimed(self, reserve: Sequence[Reservation]) -> None:
        try:
            self._store.release(reserve)
        except Exception:
            # The claim stays until an operator frees it; the client still gets 503.
            log.exception("could not release reservations %s after a failed append", list(reserve))
