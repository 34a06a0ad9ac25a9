"""The media worker: run_job (store in, renditions out) and the embedded driver around it.

The driver runs against a real command bus, projector and SQLite read model (in
memory), with the worker's thread pool; `drain()` is called by the test, as the
event loop would.
"""

from __future__ import annotations

import hashlib
import io
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from PIL import Image

from commands import accounts, media
from commands.bus import CommandBus
from events.ids import IdGenerator
from infra.media import worker as worker_module
from infra.media.local_store import MemoryMediaStore
from infra.media.probe import probe
from infra.media.processing import ProcessingLimits
from infra.media.worker import (
    MAX_ATTEMPTS,
    RETRY_AFTER_SECONDS,
    TIMEOUT_GRACE_SECONDS,
    Failed,
    InProcessMediaWorker,
    JobUnavailable,
    MediaJob,
    Outcome,
    Processed,
    run_job,
)
from infra.projector import Projector
from infra.storage.memory_eventlog import MemoryEventLog
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.media import MEDIA, MEDIA_BY_KEY, storage_key_for
from projections.registry import PROJECTIONS, all_tables
from tests.unit import media_cases as mc
from tests.unit.posts_world import NOW

LIMITS = ProcessingLimits(job_seconds=10)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Stack:
    """Log, read model, projector and bus as the embedded process has them, minus HTTP."""

    def __init__(self) -> None:
        self.log = MemoryEventLog()
        self.conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.read = SqliteReadModel(self.conn, all_tables())
        self.read.create_schema()
        self.projector = Projector(self.log, self.read, PROJECTIONS)
        self.bus = CommandBus(
            self.log,
            self.read,
            IdGenerator(3),
            lambda: NOW,
            after_append=lambda token: self.projector.catch_up(until=int(token)),
        )
        self.store = MemoryMediaStore()
        self.clock = FakeClock()
        self.worker: InProcessMediaWorker | None = None

    def start(
        self, runner: Callable[..., Outcome] = run_job, limits: ProcessingLimits = LIMITS, listen: bool = True
    ) -> InProcessMediaWorker:
        """`listen=False` is the scale stack's way: no in-process projector, the tick finds uploads."""
        self.worker = InProcessMediaWorker(
            self.bus, self.read, self.store, limits, threads=2, clock=self.clock, runner=runner, collect_unused=listen
        )
        if listen:
            self.projector.subscribe(self.worker.on_applied)
        return self.worker

    def user(self, name: str) -> int:
        cmd = accounts.Register(username=name, password="a long password")
        result = self.bus.execute("register", lambda ctx: accounts.register(ctx, cmd, "hash"), actor_id=None)
        return int(orjson.loads(result.body)["id"])

    def upload(self, owner: int, data: bytes) -> int:
        probed = probe(data, LIMITS.max_pixels)
        self.store.put(probed.storage_key, data, probed.content_type)
        result = self.bus.execute("upload_media", lambda ctx: media.upload(ctx, probed), actor_id=owner)
        return int(orjson.loads(result.body)["id"])

    def status(self, media_id: int) -> str | None:
        row = self.read.get(MEDIA.name, {"media_id": media_id})
        return None if row is None else str(row["status"])

    def row(self, media_id: int) -> dict[str, Any]:
        row = self.read.get(MEDIA.name, {"media_id": media_id})
        assert row is not None
        return row

    def settle(self, seconds: float = 20) -> None:
        """Drain until no job is in flight, as the event loop would."""
        assert self.worker is not None
        deadline = time.monotonic() + seconds
        while True:
            self.worker.drain()
            if self.worker.in_flight == 0:
                return
            assert time.monotonic() < deadline, "the worker did not settle"
            time.sleep(0.01)


@pytest.fixture
def stack() -> Iterator[Stack]:
    s = Stack()
    yield s
    if s.worker is not None:
        s.worker.close()
    s.conn.close()


def picture(seed: int = 1, size: tuple[int, int] = (700, 500)) -> bytes:
    return mc.encode(mc.photo(size, seed), "JPEG", quality=85, exif=mc.gps_exif(6).tobytes())


# -- run_job ---------------------------------------------------------------------------------


def test_run_job_stores_content_addressed_renditions_and_names_them() -> None:
    store = MemoryMediaStore()
    data = picture()
    store.put("originals/x.jpg", data, "image/jpeg")
    outcome = run_job(MediaJob(5, "originals/x.jpg"), store, LIMITS)
    assert isinstance(outcome, Processed)
    facts = outcome.facts
    assert (facts.media_id, facts.width, facts.height) == (5, 500, 700)  # orientation 6
    assert [(r.width, r.format) for r in facts.renditions] == [
        (500, "webp"),
        (500, "jpeg"),
        (320, "webp"),
        (320, "jpeg"),
    ]
    assert outcome.stored_keys == tuple(r.key for r in facts.renditions)
    for r in facts.renditions:
        blob = store.get(r.key)
        assert blob is not None
        sha = hashlib.sha256(blob).hexdigest()
        assert r.key == f"renditions/{sha[:2]}/{sha}.{'jpg' if r.format == 'jpeg' else r.format}"
        assert mc.EXIF_GPS_IFD not in Image.open(io.BytesIO(blob)).getexif()
    assert facts.placeholder.startswith("data:image/webp;base64,")


def test_run_job_refusals_store_nothing() -> None:
    store = MemoryMediaStore()
    store.put("originals/t.jpg", mc.fixture("truncated_jpeg.jpg"), "image/jpeg")
    outcome = run_job(MediaJob(5, "originals/t.jpg"), store, LIMITS)
    assert isinstance(outcome, Failed) and outcome.code == "invalid_image" and "truncated" in outcome.reason
    assert outcome.stored_keys == ()
    assert list(store._blobs) == ["originals/t.jpg"]
    missing = run_job(MediaJob(6, "originals/gone.jpg"), store, LIMITS)
    assert isinstance(missing, Failed) and missing.code == "original_missing"


def test_run_job_abandoned_before_storing_stores_nothing() -> None:
    store = MemoryMediaStore()
    store.put("o", picture(), "image/jpeg")
    outcome = run_job(MediaJob(5, "o"), store, LIMITS, abandoned=lambda: True)
    assert isinstance(outcome, Failed) and outcome.code == "processing_timeout"
    assert list(store._blobs) == ["o"]


class BrokenStore(MemoryMediaStore):
    def __init__(self, fail_get: bool = False, fail_after_puts: int | None = None) -> None:
        super().__init__()
        self.fail_get, self.fail_after_puts, self.puts = fail_get, fail_after_puts, 0

    def get(self, key: str) -> bytes | None:
        if self.fail_get:
            raise OSError("disk gone")
        return super().get(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        if self.fail_after_puts is not None and self.puts >= self.fail_after_puts:
            raise OSError("disk full")
        self.puts += 1
        super().put(key, data, content_type)


def test_an_unavailable_store_is_not_a_verdict_on_the_media() -> None:
    with pytest.raises(JobUnavailable):
        run_job(MediaJob(5, "o"), BrokenStore(fail_get=True), LIMITS)
    store = BrokenStore(fail_after_puts=3)
    store._blobs["o"] = picture()
    store.puts = 1
    with pytest.raises(JobUnavailable) as err:
        run_job(MediaJob(5, "o"), store, LIMITS)
    assert len(err.value.stored_keys) == 2  # what it managed to write, for the collector


# -- the embedded driver --------------------------------------------------------------------


def test_uploads_are_processed_in_the_background_and_recorded(stack: Stack) -> None:
    worker = stack.start()
    alice = stack.user("alice")
    m = stack.upload(alice, picture())
    assert stack.status(m) == "processing"
    stack.settle()
    row = stack.row(m)
    assert (row["status"], row["width"], row["height"]) == ("ready", 500, 700)
    for r in row["renditions"]:
        assert stack.store.exists(r["key"])
        assert stack.read.count(MEDIA_BY_KEY.name, {"storage_key": r["key"]}) == 1
    types = [e.type for _, e in stack.log.read(0, 100)]
    assert types[-2:] == ["MediaUploaded", "MediaProcessed"]
    assert worker.in_flight == 0


def test_hostile_uploads_fail_with_reasons_and_the_worker_keeps_going(stack: Stack) -> None:
    stack.start()
    alice = stack.user("alice")
    flood = stack.upload(alice, mc.gif_frame_flood(30_000))
    truncated = stack.upload(alice, mc.fixture("truncated_jpeg.jpg"))
    fake_video = stack.upload(alice, b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 300)
    good = stack.upload(alice, picture(2))
    stack.settle()
    assert (stack.status(flood), stack.row(flood)["reason"]) == ("failed", "animation has more than 1000 frames")
    assert stack.status(truncated) == "failed" and "truncated" in stack.row(truncated)["reason"]
    assert stack.status(fake_video) == "failed" and stack.row(fake_video)["reason"]
    assert stack.status(good) == "ready"
    renditions = {r["key"] for r in stack.row(good)["renditions"]}
    assert {k for k in stack.store._blobs if k.startswith("renditions/")} == renditions  # nothing half-made


class Gate:
    """A runner that waits for the test before (or after) the real job."""

    def __init__(self, after_job: bool = False, ignore_abandon: bool = False) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.after_job = after_job
        self.ignore_abandon = ignore_abandon

    def __call__(self, job: MediaJob, store: Any, limits: ProcessingLimits, **kw: Any) -> Outcome:
        if self.ignore_abandon:
            kw["abandoned"] = lambda: False  # as if the deadline passed just after the check
        if not self.after_job:
            self.started.set()
            assert self.release.wait(20)
            return run_job(job, store, limits, **kw)
        outcome = run_job(job, store, limits, **kw)
        self.started.set()
        assert self.release.wait(20)
        return outcome


def test_a_job_past_its_deadline_fails_and_what_it_stores_late_is_collected(stack: Stack) -> None:
    gate = Gate(ignore_abandon=True)
    worker = stack.start(runner=gate)
    m = stack.upload(stack.user("alice"), picture())
    assert gate.started.wait(10)
    worker.drain()
    assert stack.status(m) == "processing"  # within its time
    stack.clock.now += LIMITS.job_seconds + TIMEOUT_GRACE_SECONDS + 1
    worker.drain()
    assert stack.row(m)["status"] == "failed"
    assert "longer than 10 s" in stack.row(m)["reason"]
    gate.release.set()
    stack.settle()
    assert stack.status(m) == "failed"
    assert not [k for k in stack.store._blobs if k.startswith("renditions/")]


def test_unavailable_jobs_are_retried_after_a_pause_then_failed(stack: Stack) -> None:
    calls: list[int] = []

    def unavailable(job: MediaJob, *_: Any, **__: Any) -> Outcome:
        calls.append(job.media_id)
        raise JobUnavailable("store down")

    worker = stack.start(runner=unavailable)
    m = stack.upload(stack.user("alice"), picture())
    stack.settle()
    assert stack.status(m) == "processing" and len(calls) == 1
    worker.tick()
    assert len(calls) == 1  # not before the pause
    for attempt in range(2, MAX_ATTEMPTS + 1):
        stack.clock.now += RETRY_AFTER_SECONDS * attempt
        worker.tick()
        stack.settle()
        assert len(calls) == attempt
    assert stack.status(m) == "failed" and "3 tries" in stack.row(m)["reason"]


def test_a_crashing_job_fails_the_media_not_the_worker(stack: Stack) -> None:
    def crash(job: MediaJob, *_: Any, **__: Any) -> Outcome:
        if job.media_id == first:
            raise ValueError("bug")
        return run_job(job, *_, **__)

    stack.start(runner=crash)
    alice = stack.user("alice")
    first = stack.upload(alice, picture(1))
    second = stack.upload(alice, picture(2))
    stack.settle()
    assert stack.status(first) == "failed" and "internal error" in stack.row(first)["reason"]
    assert stack.status(second) == "ready"


def test_uploads_left_processing_by_a_restart_are_picked_up(stack: Stack) -> None:
    alice = stack.user("alice")
    m = stack.upload(alice, picture())  # no worker yet: as if the process stopped here
    assert stack.status(m) == "processing"
    worker = stack.start()
    worker.tick()
    stack.settle()
    assert stack.status(m) == "ready"


def test_an_outcome_for_media_erased_meanwhile_is_dropped_and_its_renditions_collected(stack: Stack) -> None:
    gate = Gate(after_job=True)
    stack.start(runner=gate)
    alice = stack.user("alice")
    m = stack.upload(alice, picture())
    assert gate.started.wait(20)  # the renditions are stored, the outcome not yet recorded
    assert [k for k in stack.store._blobs if k.startswith("renditions/")]
    stack.bus.execute("delete_account", lambda ctx: accounts.delete_account(ctx), actor_id=alice)
    assert stack.status(m) is None
    gate.release.set()
    stack.settle()
    assert stack.status(m) is None
    assert not [k for k in stack.store._blobs if k.startswith("renditions/")]


def test_renditions_another_job_holds_are_spared_by_the_collector(stack: Stack) -> None:
    """Two users upload the same picture: equal renditions, equal keys. The first job's
    outcome is dropped (its owner is erased); the second job is still in flight."""
    first_gate, second_gate = Gate(after_job=True), Gate(after_job=True)
    gates: dict[int, Gate] = {}

    def runner(job: MediaJob, *a: Any, **kw: Any) -> Outcome:
        return gates[job.media_id](job, *a, **kw)

    stack.start(runner=runner)
    alice, bob = stack.user("alice"), stack.user("bob")
    data = picture()
    gates_order = [first_gate, second_gate]
    original = stack.worker.submit  # type: ignore[union-attr]

    def submit(job: MediaJob) -> bool:
        gates.setdefault(job.media_id, gates_order[len(gates)])
        return original(job)

    stack.worker.submit = submit  # type: ignore[union-attr,method-assign]
    a = stack.upload(alice, data)
    b = stack.upload(bob, data)
    assert first_gate.started.wait(20) and second_gate.started.wait(20)
    stack.bus.execute("delete_account", lambda ctx: accounts.delete_account(ctx), actor_id=alice)
    first_gate.release.set()
    deadline = time.monotonic() + 20
    while stack.worker.in_flight > 1:  # type: ignore[union-attr]
        stack.worker.drain()  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert stack.status(a) is None
    kept = [k for k in stack.store._blobs if k.startswith("renditions/")]
    assert kept  # bob's job holds them
    second_gate.release.set()
    stack.settle()
    assert stack.status(b) == "ready"
    assert all(stack.store.exists(r["key"]) for r in stack.row(b)["renditions"])
    assert stack.store.exists(storage_key_for(hashlib.sha256(data).hexdigest(), "image/jpeg"))


def test_a_closed_worker_takes_no_more_jobs(stack: Stack) -> None:
    worker = stack.start()
    worker.close()
    assert worker.submit(MediaJob(1, "x")) is False
    assert worker.drain() == 0


def test_limits_follow_the_settings() -> None:
    from infra.settings import Settings

    limits = worker_module.limits_from(
        Settings(max_upload_bytes=123, max_image_pixels=456, max_video_seconds=7, media_job_timeout_seconds=8)
    )
    assert (limits.max_file_bytes, limits.max_pixels, limits.max_video_seconds, limits.job_seconds) == (123, 456, 7, 8)


def test_without_a_projector_the_tick_finds_uploads_and_nothing_is_collected(stack: Stack) -> None:
    """The scale command service: the read model is fed by another process, so the tick
    finds new uploads, and a key no row names yet is not evidence that it is unused."""
    gate = Gate(after_job=True)
    worker = stack.start(runner=gate, listen=False)
    alice = stack.user("alice")
    stack.upload(alice, picture())
    assert worker.in_flight == 0
    assert worker.reconcile() == 1
    assert gate.started.wait(20)
    stack.bus.execute("delete_account", lambda ctx: accounts.delete_account(ctx), actor_id=alice)
    gate.release.set()
    stack.settle()
    assert [k for k in stack.store._blobs if k.startswith("renditions/")]  # left for a sweep


def test_a_recorded_outcome_is_not_redone_while_the_read_model_lags(stack: Stack) -> None:
    from projections.store import Patch

    calls: list[int] = []

    def counting(job: MediaJob, *a: Any, **kw: Any) -> Outcome:
        calls.append(job.media_id)
        return run_job(job, *a, **kw)

    worker = stack.start(runner=counting, listen=False)
    m = stack.upload(stack.user("alice"), picture())
    worker.tick()
    stack.settle()
    assert stack.status(m) == "ready" and calls == [m]
    # As if the MediaProcessed were still on its way to this read model:
    stack.read.apply([Patch(MEDIA.name, {"media_id": m}, {"status": "processing"})])
    worker.tick()
    assert worker.in_flight == 0 and calls == [m]
    stack.clock.now += RETRY_AFTER_SECONDS
    worker.tick()
    stack.settle()
    assert calls == [m, m]  # still `processing` after the pause: tried again
