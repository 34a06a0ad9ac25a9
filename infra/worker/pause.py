"""Pausing the projection workers so that a scale replay can switch them to new tables.

The protocol, over a small shared store (`PauseControl`; Cassandra's `worker_control`,
infra/cassandra/worker_control.py):

Worker side (`WorkerGate`):
- a thread writes the worker's heartbeat every `HEARTBEAT_SECONDS`;
- before every batch (and on every idle tick) the worker reads the pause. If one is
  active it acknowledges it with the offsets it has applied, applies nothing more, and
  waits until the pause is lifted or its lease runs out; then it re-reads the registry
  (`on_resume`: re-route, forget cached rows, reload the positions) and goes on.
  A worker writes its heartbeat before it first looks at the pause.

Controller side (`pause_workers`, called by the replay):
- take the pause (compare-and-set against the current request, so two replays cannot both
  hold it) with a lease, renewed while the replay works;
- then wait until every *live* worker (heartbeat younger than `STALE_SECONDS`) has
  acknowledged it. No live worker at all: switch directly (`Paused.direct`). The order
  makes that safe: the controller writes the pause before it reads the heartbeats, a
  worker writes its heartbeat before it reads the pause, so a worker starting meanwhile
  either is seen (and waited for) or sees the pause (and waits);
- a live worker that does not acknowledge within the timeout fails the replay (the pause
  is lifted, nothing switched).

A worker frozen longer than `STALE_SECONDS` (heartbeat thread included) could be taken
for dead and wake up to apply one batch to the old tables: the worker therefore checks,
after writing a batch and before saving its positions, that the epoch it writes for is
still the registry's (`EpochGuardedPositions`); if not, it stops without saving or
acknowledging anything, and its restart applies those records again on the new tables.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)

Partition = tuple[str, int]

HEARTBEAT_SECONDS = 1.0
STALE_SECONDS = 10.0  # a heartbeat older than this: the worker is gone
LEASE_SECONDS = 60.0  # a pause whose controller died lifts itself after this
ACK_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class WorkerRow:
    worker: str
    heartbeat: float | None  # seconds since the epoch
    acked: str | None  # the pause this worker acknowledged (and honours)
    positions: Mapping[Partition, int] = field(default_factory=dict)  # applied offsets, as it acknowledged


@dataclass(frozen=True)
class PauseState:
    request: str | None = None
    until: float | None = None  # the lease
    workers: tuple[WorkerRow, ...] = ()

    def active(self, now: float) -> str | None:
        """The pause in force, if any (an expired lease is no pause)."""
        if self.request is None or self.until is None or self.until <= now:
            return None
        return self.request

    def live(self, now: float, stale: float = STALE_SECONDS) -> list[WorkerRow]:
        return [w for w in self.workers if w.heartbeat is not None and now - w.heartbeat < stale]


class PauseControl(Protocol):
    def state(self, group: str) -> PauseState: ...

    def heartbeat(self, group: str, worker: str, now: float) -> None: ...

    def ack(self, group: str, worker: str, request: str | None, positions: Mapping[Partition, int]) -> None: ...

    def take(self, group: str, request: str, until: float, replacing: str | None) -> bool:
        """Set the pause to `request` if it is still `replacing` (None: no pause)."""
        ...

    def renew(self, group: str, request: str, until: float) -> bool:
        """Extend the lease if the pause is still `request`."""
        ...

    def lift(self, group: str, request: str) -> bool:
        """Clear the pause if it is still `request`."""
        ...


class PauseBusy(RuntimeError):
    """Another replay holds the pause."""


class PauseTimeout(RuntimeError):
    """A live worker did not acknowledge the pause in time."""


@dataclass(frozen=True)
class Paused:
    request: str
    workers: tuple[str, ...]  # the live workers that acknowledged
    positions: Mapping[str, Mapping[Partition, int]]  # what each had applied, as it acknowledged
    direct: bool  # no live worker: the replay switched without one


def pause_workers(
    control: PauseControl,
    group: str,
    *,
    timeout: float = ACK_TIMEOUT_SECONDS,
    lease: float = LEASE_SECONDS,
    stale: float = STALE_SECONDS,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Paused:
    """Pause every live worker of `group` (see the module doc); lift it with `control.lift`."""
    now = clock()
    current = control.state(group)
    holder = current.active(now)
    if holder is not None:
        raise PauseBusy(f"worker group {group} is already paused by request {holder} (another replay?)")
    request = uuid.uuid4().hex
    if not control.take(group, request, now + lease, current.request):
        raise PauseBusy(f"another replay took the pause of worker group {group} first")
    deadline = now + timeout
    try:
        while True:
            now = clock()
            state = control.state(group)
            if state.active(now) != request:
                raise PauseBusy(f"the pause of worker group {group} was taken over or expired")
            live = state.live(now, stale)
            waiting = [w.worker for w in live if w.acked != request]
            if not waiting:
                return Paused(
                    request, tuple(w.worker for w in live), {w.worker: w.positions for w in live}, direct=not live
                )
            if now >= deadline:
                raise PauseTimeout(
                    f"worker(s) {', '.join(sorted(waiting))} of group {group} did not pause within {timeout:.0f}s"
                )
            control.renew(group, request, now + lease)
            sleep(POLL_SECONDS)
    except BaseException:
        control.lift(group, request)
        raise


class WorkerGate:
    """The worker's side of the pause. `before_batch` is called from the applying thread
    before each batch and on idle ticks; `on_resume` runs after a pause, before the next batch."""

    def __init__(
        self,
        control: PauseControl,
        group: str,
        *,
        worker: str | None = None,
        positions: Callable[[], Mapping[Partition, int]] = dict,
        on_resume: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll: float = POLL_SECONDS,
    ) -> None:
        self._control = control
        self.group = group
        self.worker = worker or uuid.uuid4().hex
        self._positions = positions
        self._on_resume = on_resume
        self._clock = clock
        self._sleep = sleep
        self._poll = poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pauses = 0  # pauses honoured since start

    def beat(self) -> None:
        self._control.heartbeat(self.group, self.worker, self._clock())

    def start_heartbeat(self, interval: float = HEARTBEAT_SECONDS) -> None:
        """Beat once now (before any look at the pause), then every `interval` in a thread."""
        self.beat()
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.beat()
                except Exception:
                    log.warning("could not write the worker heartbeat", exc_info=True)

        self._thread = threading.Thread(target=loop, name="glimpse-worker-heartbeat", daemon=True)
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def before_batch(self) -> bool:
        """Honour a pause if one is in force (blocks until it is lifted); returns whether it paused."""
        request = self._control.state(self.group).active(self._clock())
        if request is None:
            return False
        while request is not None:
            self._control.ack(self.group, self.worker, request, self._positions())
            log.info("paused by request %s (a replay is switching generations)", request)
            while True:
                self._sleep(self._poll)
                current = self._control.state(self.group).active(self._clock())
                if current != request:
                    break
            request = current  # another pause straight away: acknowledge that one too
        self._on_resume()
        self._control.ack(self.group, self.worker, None, {})
        self.pauses += 1
        log.info("resumed after the pause")
        return True


class GenerationChanged(RuntimeError):
    """The read models were switched while this worker wrote a batch to the old ones."""


class PositionStore(Protocol):
    def save_positions(self, group: str, positions: Mapping[Partition, int]) -> None: ...

    def positions(self, group: str) -> Mapping[Partition, int]: ...


class EpochGuardedPositions:
    """A position store that refuses to save positions for a batch written to a generation
    that is no longer the active one (see the module doc): the batch fails, the worker stops
    without acknowledging it, and its restart applies it to the right tables."""

    def __init__(self, inner: PositionStore, current: Callable[[], int], routed: Callable[[], int]) -> None:
        self._inner = inner
        self._current = current  # the registry's epoch, read now
        self._routed = routed  # the epoch this process writes for

    def save_positions(self, group: str, positions: Mapping[Partition, int]) -> None:
        now, mine = self._current(), self._routed()
        if now != mine:
            raise GenerationChanged(
                f"the read models moved to epoch {now} while this worker wrote a batch for epoch {mine}"
            )
        self._inner.save_positions(group, positions)

    def positions(self, group: str) -> Mapping[Partition, int]:
        return self._inner.positions(group)
