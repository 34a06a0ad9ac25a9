"""The media worker: turns each MediaUploaded into MediaProcessed or MediaFailed.

Three layers, so that the scale stack reuses the first two unchanged:

1. `run_job(job, store, limits)` knows nothing of events or logs: it reads the
   original from the media store, processes it (infra/media/processing), stores the
   renditions under content-addressed keys and returns an `Outcome`. A rejected
   upload is a `Failed` outcome with a reason; an unavailable store or tool raises,
   so the job is tried again later instead of failing for good.
2. `OutcomeRecorder` records an outcome through the command bus (the only way
   anything reaches the log), as MediaProcessed or MediaFailed.
3. `InProcessMediaWorker` drives them inside an API process: a projector listener
   (embedded mode) submits each new upload to a thread pool; finished outcomes are
   queued and recorded on the event-loop thread (SQLite is only used from there),
   woken by `call_soon_threadsafe` and by a periodic tick, which also fails jobs
   that passed their deadline and submits uploads still `processing` that no job
   holds (after a restart; and in the scale stack, where there is no in-process
   projector, the tick is what finds new uploads).

The scale stack's intended driver is a Kafka consumer in place of layer 3
(docs/media-pipeline.md): it reads MediaUploaded from the media topic, calls
`run_job` in a thread pool with the S3 store, records with `OutcomeRecorder` over
the Kafka log, and commits its offset only after recording. Until it exists, the
scale command service runs this worker from its periodic tick (as it runs the
story expiry job). Redelivery and a second worker's answer are harmless:
renditions are content addressed and the media projection keeps the first outcome.

Nothing half-made is served: renditions are stored before their MediaProcessed is
appended, and the byte route serves a key only once a MediaProcessed names it.
Blobs stored by a job whose outcome was not recorded (it timed out, or the media
was erased meanwhile) are collected unless another job in flight holds them; only
where the projection runs in this process (embedded), since elsewhere "no row
names this key yet" may just mean the projection has not caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import orjson

from commands import media
from commands.bus import CommandBus
from commands.media import ProcessedFacts
from commands.ports import MediaStore
from events.media import MediaUploaded, Rendition
from events.union import Event
from infra.container import Container, PeriodicJob
from infra.media.collector import collect
from infra.media.processing import MediaRejected, ProcessingLimits, ProcessingUnavailable, process_media
from infra.settings import Settings
from projections.media import MEDIA, PROCESSING, RENDITION_TYPES, rendition_key
from projections.media import PROJECTION as MEDIA_PROJECTION
from projections.store import Op, ReadModel, Row

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # tries of a job whose store or tools were unavailable, before it fails
RETRY_AFTER_SECONDS = 30.0
TIMEOUT_GRACE_SECONDS = 2.0  # the job's own deadline usually fires first, with a better reason
RECONCILE_BATCH = 200


@dataclass(frozen=True)
class MediaJob:
    media_id: int
    storage_key: str
    owner_id: int | None = None

    @classmethod
    def of_upload(cls, event: MediaUploaded) -> MediaJob:
        return cls(event.media_id, event.storage_key, event.owner_id)

    @classmethod
    def of_row(cls, row: Row) -> MediaJob:
        return cls(int(row["media_id"]), str(row["storage_key"]), int(row["owner_id"]))


@dataclass(frozen=True)
class Processed:
    facts: ProcessedFacts
    stored_keys: tuple[str, ...]


@dataclass(frozen=True)
class Failed:
    media_id: int
    reason: str
    code: str = "invalid_media"
    stored_keys: tuple[str, ...] = ()


Outcome = Processed | Failed


class JobUnavailable(RuntimeError):
    """The job could not run (store or tool unavailable); nothing is decided, try again later."""

    def __init__(self, message: str, stored_keys: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.stored_keys = tuple(stored_keys)


def limits_from(settings: Settings) -> ProcessingLimits:
    return ProcessingLimits(
        max_file_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
        max_video_seconds=settings.max_video_seconds,
        job_seconds=settings.media_job_timeout_seconds,
    )


def _nothing(_: str) -> None:
    return None


def run_job(
    job: MediaJob,
    store: MediaStore,
    limits: ProcessingLimits,
    *,
    hold: Callable[[str], None] = _nothing,
    abandoned: Callable[[], bool] = lambda: False,
) -> Outcome:
    """Process one upload and store its renditions. Independent of where jobs come from.

    `hold(key)` is called before each rendition is written (so a collector can spare
    blobs still being written); `abandoned()` is asked before anything is stored.
    """
    try:
        data = store.get(job.storage_key)
    except Exception as exc:
        raise JobUnavailable(f"cannot read {job.storage_key}: {exc!r}") from exc
    if data is None:
        return Failed(job.media_id, "the original upload is missing from the media store", "original_missing")
    try:
        processed = process_media(data, limits)
    except MediaRejected as rejected:
        return Failed(job.media_id, rejected.reason, rejected.code)
    except ProcessingUnavailable as exc:
        raise JobUnavailable(str(exc)) from exc
    except Exception:
        log.exception("media %s: processing crashed", job.media_id)
        return Failed(job.media_id, "the media could not be processed (internal error)", "internal_error")
    del data
    if abandoned():
        return Failed(job.media_id, "processing was abandoned after its time ran out", "processing_timeout")
    renditions: list[Rendition] = []
    stored: list[str] = []
    try:
        for r in processed.renditions:
            key = rendition_key(hashlib.sha256(r.data).hexdigest(), r.format)
            hold(key)
            if not store.exists(key):  # content-addressed: equal bytes are already there
                store.put(key, r.data, RENDITION_TYPES[r.format])
            stored.append(key)
            renditions.append(Rendition(key=key, width=r.width, height=r.height, format=r.format))
    except Exception as exc:
        raise JobUnavailable(f"cannot store renditions: {exc!r}", stored) from exc
    facts = ProcessedFacts(
        media_id=job.media_id,
        owner_id=job.owner_id,
        width=processed.width,
        height=processed.height,
        renditions=tuple(renditions),
        placeholder=processed.placeholder,
        duration_ms=processed.duration_ms,
    )
    return Processed(facts, tuple(stored))


class OutcomeRecorder:
    """Records outcomes through the command bus; returns whether an event was appended."""

    def __init__(self, bus: CommandBus) -> None:
        self._bus = bus

    def record(self, outcome: Outcome) -> bool:
        if isinstance(outcome, Processed):
            facts = outcome.facts
            result = self._bus.execute(
                "record_media_processed", lambda ctx: media.record_processed(ctx, facts), actor_id=None
            )
        else:
            failed = outcome
            result = self._bus.execute(
                "record_media_failed",
                lambda ctx: media.record_failed(ctx, failed.media_id, failed.reason),
                actor_id=None,
            )
        return bool(orjson.loads(result.body)["recorded"])


@dataclass(eq=False)
class _Flight:
    """One submitted job. Fields other than `job` are guarded by the worker's lock."""

    job: MediaJob
    started: float | None = None
    abandoned: bool = False
    keys: set[str] = field(default_factory=set)


class InProcessMediaWorker:
    def __init__(
        self,
        bus: CommandBus,
        read: ReadModel,
        store: MediaStore,
        limits: ProcessingLimits,
        *,
        threads: int = 2,
        clock: Callable[[], float] = time.monotonic,
        runner: Callable[..., Outcome] = run_job,
        collect_unused: bool = True,
    ) -> None:
        self._recorder = OutcomeRecorder(bus)
        self._collect_unused = collect_unused
        self._read = read
        self._store = store
        self._limits = limits
        self._clock = clock
        self._runner = runner
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="glimpse-media")
        self._lock = threading.Lock()
        self._flights: dict[int, _Flight] = {}
        self._finished: deque[tuple[_Flight, Outcome | BaseException]] = deque()
        self._attempts: dict[int, tuple[int, float]] = {}  # media id -> (failed tries, when last)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    # -- called on the event-loop thread ---------------------------------------------------

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._flights)

    def on_applied(self, event: Event, projection: str, ops: Sequence[Op]) -> None:
        """Projector listener: a new upload was projected."""
        if projection == MEDIA_PROJECTION.name and isinstance(event, MediaUploaded):
            self.submit(MediaJob.of_upload(event))

    def submit(self, job: MediaJob) -> bool:
        self._remember_loop()
        flight = _Flight(job)
        with self._lock:
            if self._closed or job.media_id in self._flights:
                return False
            self._flights[job.media_id] = flight
        try:
            self._pool.submit(self._work, flight)
        except RuntimeError:  # the pool is shut down: the process is stopping
            with self._lock:
                self._flights.pop(job.media_id, None)
            return False
        return True

    def tick(self) -> None:
        """The periodic job: record what finished, fail what overran, resubmit what a restart left."""
        self.drain()
        self.reconcile()

    def drain(self) -> int:
        """Record every finished outcome and time out overdue jobs; returns how many were settled."""
        self._remember_loop()
        now = self._clock()
        limit = self._limits.job_seconds + TIMEOUT_GRACE_SECONDS
        with self._lock:
            if self._closed:
                return 0
            finished = list(self._finished)
            self._finished.clear()
            overdue = [
                f
                for f in self._flights.values()
                if f.started is not None and not f.abandoned and now - f.started > limit
            ]
            for flight in overdue:
                flight.abandoned = True
        for flight in overdue:
            seconds = self._limits.job_seconds
            self._record(
                Failed(flight.job.media_id, f"processing took longer than {seconds:g} s", "processing_timeout")
            )
        for flight, result in finished:
            self._finish(flight, result)
        return len(overdue) + len(finished)

    def reconcile(self) -> int:
        """Submit uploads still `processing` that no job holds and none was tried on lately."""
        now = self._clock()
        submitted = 0
        rows = self._read.find(MEDIA.name, {"status": PROCESSING}, limit=RECONCILE_BATCH)
        for row in rows:
            media_id = int(row["media_id"])
            with self._lock:
                if self._closed:
                    return submitted
                busy = media_id in self._flights
            tries, last = self._attempts.get(media_id, (0, -RETRY_AFTER_SECONDS))
            if not busy and now - last >= RETRY_AFTER_SECONDS * max(1, tries) and self.submit(MediaJob.of_row(row)):
                submitted += 1
        if len(rows) < RECONCILE_BATCH:  # the whole backlog was seen: forget media that left it
            waiting = {int(r["media_id"]) for r in rows}
            self._attempts = {m: a for m, a in self._attempts.items() if m in waiting}
        return submitted

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _finish(self, flight: _Flight, result: Outcome | BaseException) -> None:
        with self._lock:
            if self._flights.get(flight.job.media_id) is flight:
                del self._flights[flight.job.media_id]
            held = set(flight.keys)
        media_id = flight.job.media_id
        if flight.abandoned:
            pass  # already recorded as timed out; whatever it stored is collected below
        elif isinstance(result, JobUnavailable):
            self._retry_later(media_id, str(result))
        elif isinstance(result, BaseException):
            log.error("media %s: job crashed", media_id, exc_info=result)
            self._record(Failed(media_id, "the media could not be processed (internal error)", "internal_error"))
        else:
            self._record(result)
        self._collect(held)

    def _retry_later(self, media_id: int, why: str) -> None:
        tries = self._attempts.get(media_id, (0, 0.0))[0] + 1
        log.warning("media %s: job could not run (try %d of %d): %s", media_id, tries, MAX_ATTEMPTS, why)
        if tries >= MAX_ATTEMPTS:
            self._attempts.pop(media_id, None)
            self._record(Failed(media_id, f"the media could not be processed after {tries} tries", "unavailable"))
        else:
            self._attempts[media_id] = (tries, self._clock())

    def _record(self, outcome: Outcome) -> None:
        media_id = outcome.facts.media_id if isinstance(outcome, Processed) else outcome.media_id
        try:
            self._recorder.record(outcome)
        except Exception:  # the upload stays `processing`; reconcile submits it again later
            log.exception("media %s: recording the outcome failed", media_id)
            self._attempts[media_id] = (self._attempts.get(media_id, (0, 0.0))[0] + 1, self._clock())
        else:
            # Recorded. A read model fed from elsewhere may still say `processing` for a
            # while: reconcile leaves it alone for a pause rather than process it twice.
            self._attempts[media_id] = (0, self._clock())

    def _collect(self, keys: Collection[str]) -> None:
        """Delete blobs among `keys` that no media row uses and no job in flight holds."""
        if not keys or not self._collect_unused:
            return
        with self._lock:
            pending = set().union(*(f.keys for f in self._flights.values()))
        try:
            collect(self._read, self._store, [k for k in keys if k not in pending])
        except Exception:
            log.exception("media: collecting unused renditions failed")

    def _remember_loop(self) -> None:
        with contextlib.suppress(RuntimeError):  # no loop running here (a CLI, a test)
            self._loop = asyncio.get_running_loop()

    # -- called on pool threads -------------------------------------------------------------

    def _work(self, flight: _Flight) -> None:
        with self._lock:
            flight.started = self._clock()

        def hold(key: str) -> None:
            with self._lock:
                flight.keys.add(key)

        def abandoned() -> bool:
            with self._lock:
                return flight.abandoned

        result: Outcome | BaseException
        try:
            result = self._runner(flight.job, self._store, self._limits, hold=hold, abandoned=abandoned)
        except BaseException as exc:
            result = exc
        with self._lock:
            self._finished.append((flight, result))
        self._wake()

    def _wake(self) -> None:
        loop = self._loop
        if loop is None:
            return
        # A loop that has ended (a request-scoped one) refuses: the next tick or drain records it.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._drain_logged)

    def _drain_logged(self) -> None:
        try:
            self.drain()
        except Exception:
            log.exception("media worker: drain failed")


def wire(container: Container) -> None:
    """Process uploads in this process. Embedded: new uploads arrive from the projector.
    Scale (no in-process projector): the periodic tick finds them in the read model."""
    settings = container.settings
    embedded = container.projector is not None
    if settings.media_processing == "kafka" or (settings.media_processing == "auto" and not embedded):
        return  # `glimpse media-worker` consumes the media topic (infra/media/kafka_worker.py)
    worker = InProcessMediaWorker(
        container.bus,
        container.read,
        container.media,
        limits_from(settings),
        threads=settings.media_worker_threads,
        collect_unused=embedded,
    )
    if container.projector is not None:
        container.projector.subscribe(worker.on_applied)
    container.jobs.append(PeriodicJob("media_worker", settings.media_poll_seconds, worker.tick))
    close_rest = container.close

    def close() -> None:
        worker.close()
        close_rest()

    container.close = close
