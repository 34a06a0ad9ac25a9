"""The pure parts of scale blue/green switches: registry routes and switch plans
(infra/cassandra/generations.py) and the worker pause protocol (infra/worker/pause.py),
with in-memory fakes of their stores."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import pytest

pytest.importorskip("cassandra")

from infra.cassandra.generations import (
    LEGACY_PREFIX,
    Active,
    GenerationRouter,
    RegistryState,
    Retired,
    due,
    plan_switch,
    routes_for,
)
from infra.worker.pause import (
    EpochGuardedPositions,
    GenerationChanged,
    Partition,
    PauseBusy,
    PauseState,
    PauseTimeout,
    WorkerGate,
    WorkerRow,
    pause_workers,
)
from projections.registry import PROJECTIONS

BY_NAME = {p.name: p for p in PROJECTIONS}


# -- routes and plans ------------------------------------------------------------------------------


def test_projections_never_switched_use_the_legacy_tables() -> None:
    routes = routes_for(RegistryState(), PROJECTIONS)
    assert routes == {t.name: LEGACY_PREFIX + t.name for p in PROJECTIONS for t in p.tables}


def test_a_switched_projection_routes_to_its_generation_and_the_others_do_not_move() -> None:
    state = RegistryState(3, {"notifications": Active("notifications", "rm7_", 2, 7)})
    routes = routes_for(state, PROJECTIONS)
    for t in BY_NAME["notifications"].tables:
        assert routes[t.name] == "rm7_" + t.name
    for t in BY_NAME["profile"].tables:
        assert routes[t.name] == "rm_" + t.name


def test_a_switch_plan_retires_the_old_tables_after_the_grace_period_and_helpers_at_once() -> None:
    state = RegistryState(1, {"notifications": Active("notifications", "rm2_", 1, 2)})
    plan = plan_switch(state, 5, "rm5_", [BY_NAME["notifications"]], [BY_NAME["profile"]], now=1000.0, grace_seconds=60)
    assert plan.epoch == 1
    assert plan.active == (Active("notifications", "rm5_", BY_NAME["notifications"].version, 5),)
    retired = {r.physical: r.drop_after for r in plan.retired}
    assert retired == {
        **{"rm2_" + t.name: 1060.0 for t in BY_NAME["notifications"].tables},
        **{"rm5_" + t.name: 1000.0 for t in BY_NAME["profile"].tables},
    }
    # the live profile tables are not the build's helpers: untouched
    assert not any(name.startswith("rm_") for name in retired)


def test_only_due_tables_that_nobody_routes_to_are_dropped() -> None:
    state = RegistryState(
        2,
        {"posts": Active("posts", "rm4_", 1, 4)},
        {
            "rm_posts": Retired("rm_posts", 100.0, "old"),
            "rm3_posts": Retired("rm3_posts", 500.0, "later"),
            "rm4_posts": Retired("rm4_posts", 100.0, "routed again: keep"),
        },
    )
    assert due(state, 200.0, PROJECTIONS) == ["rm_posts"]
    assert due(state, 600.0, PROJECTIONS) == ["rm3_posts", "rm_posts"]


class FakeRegistry:
    def __init__(self) -> None:
        self.current = RegistryState()
        self.state_reads = 0

    def epoch(self) -> int:
        return self.current.epoch

    def state(self) -> RegistryState:
        self.state_reads += 1
        return self.current


class FakeStore:
    def __init__(self) -> None:
        self.routes: list[dict[str, str]] = []

    def route(self, routes: Mapping[str, str]) -> None:
        self.routes.append(dict(routes))


def test_the_router_reroutes_only_when_the_epoch_moves_and_then_tells_its_listeners() -> None:
    registry, store, seen = FakeRegistry(), FakeStore(), []
    router = GenerationRouter(registry, PROJECTIONS, [store], [seen.append])
    assert router.refresh() is True  # first routing
    assert router.refresh() is False and registry.state_reads == 1  # the cheap epoch read only
    registry.current = RegistryState(1, {"feed": Active("feed", "rm1_", 1, 1)})
    assert router.refresh() is True
    assert seen == [0, 1]
    assert store.routes[-1]["feed"] == "rm1_feed"
    assert store.routes[-1]["accounts"] == "rm_accounts"
    late = FakeStore()
    router.add_store(late)  # a store added later gets the current routes at once
    assert late.routes == [store.routes[-1]]


# -- the pause protocol ----------------------------------------------------------------------------


class FakeControl:
    """`PauseControl` in memory, shared by threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.request: str | None = None
        self.until: float | None = None
        self.rows: dict[str, WorkerRow] = {}
        self.lifted = 0

    def state(self, group: str) -> PauseState:
        with self._lock:
            return PauseState(self.request, self.until, tuple(self.rows.values()))

    def heartbeat(self, group: str, worker: str, now: float) -> None:
        with self._lock:
            row = self.rows.get(worker, WorkerRow(worker, None, None))
            self.rows[worker] = WorkerRow(worker, now, row.acked, row.positions)

    def ack(self, group: str, worker: str, request: str | None, positions: Mapping[Partition, int]) -> None:
        with self._lock:
            row = self.rows.get(worker, WorkerRow(worker, None, None))
            self.rows[worker] = WorkerRow(worker, row.heartbeat, request, dict(positions))

    def take(self, group: str, request: str, until: float, replacing: str | None) -> bool:
        with self._lock:
            if self.request != replacing:
                return False
            self.request, self.until = request, until
            return True

    def renew(self, group: str, request: str, until: float) -> bool:
        with self._lock:
            if self.request != request:
                return False
            self.until = until
            return True

    def lift(self, group: str, request: str) -> bool:
        with self._lock:
            if self.request != request:
                return False
            self.request = self.until = None
            self.lifted += 1
            return True


def test_with_no_live_worker_the_replay_switches_directly() -> None:
    control = FakeControl()
    control.heartbeat("g", "dead", time.time() - 60)  # a worker that stopped a minute ago
    paused = pause_workers(control, "g", timeout=1)
    assert paused.direct and paused.workers == ()
    assert control.state("g").active(time.time()) == paused.request  # held until the replay lifts it


def test_a_running_worker_acknowledges_with_its_positions_applies_nothing_and_resumes_after_the_lift() -> None:
    control = FakeControl()
    applied = {("t.posts", 0): 41}
    resumed: list[float] = []
    gate = WorkerGate(control, "g", worker="w1", positions=lambda: applied, on_resume=lambda: resumed.append(1))
    gate.beat()
    batches: list[int] = []
    stop = threading.Event()

    def worker_loop() -> None:
        while not stop.is_set():
            gate.before_batch()
            batches.append(1)  # "applies a batch"
            time.sleep(0.005)

    thread = threading.Thread(target=worker_loop, daemon=True)
    thread.start()
    try:
        paused = pause_workers(control, "g", timeout=5)
        assert not paused.direct and paused.workers == ("w1",)
        assert paused.positions == {"w1": applied}
        frozen = len(batches)
        time.sleep(0.3)
        assert len(batches) == frozen, "the worker applied a batch while paused"
        assert not resumed
        control.lift("g", paused.request)
        deadline = time.monotonic() + 5
        while len(batches) == frozen:
            assert time.monotonic() < deadline, "the worker did not resume"
            time.sleep(0.01)
        assert resumed == [1] and gate.pauses == 1
        assert control.rows["w1"].acked is None
    finally:
        stop.set()
        thread.join(timeout=5)


def test_a_live_worker_that_does_not_acknowledge_fails_the_pause_and_the_pause_is_lifted() -> None:
    control = FakeControl()
    control.heartbeat("g", "stuck", time.time() + 3600)  # always fresh, never acknowledges
    with pytest.raises(PauseTimeout, match="stuck"):
        pause_workers(control, "g", timeout=0.3)
    assert control.request is None and control.lifted == 1


def test_one_replay_at_a_time_holds_the_pause() -> None:
    control = FakeControl()
    pause_workers(control, "g", timeout=1)
    with pytest.raises(PauseBusy):
        pause_workers(control, "g", timeout=1)


def test_an_expired_pause_is_no_pause_and_can_be_taken_over() -> None:
    control = FakeControl()
    control.take("g", "old", time.time() - 1, None)  # its replay died and the lease ran out
    gate = WorkerGate(control, "g", worker="w")
    assert gate.before_batch() is False  # the worker does not wait for it
    paused = pause_workers(control, "g", timeout=1)
    assert paused.request != "old"


def test_a_worker_starting_during_a_pause_waits_before_its_first_batch() -> None:
    control = FakeControl()
    paused = pause_workers(control, "g", timeout=1)  # nobody alive yet
    gate = WorkerGate(control, "g", worker="late")
    done = threading.Event()

    def start() -> None:
        gate.start_heartbeat(interval=0.05)
        gate.before_batch()
        done.set()

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    try:
        assert not done.wait(0.3), "a worker started during the pause went on"
        assert control.rows["late"].acked == paused.request
        control.lift("g", paused.request)
        assert done.wait(5)
    finally:
        gate.stop_heartbeat()
        thread.join(timeout=5)


class Positions:
    def __init__(self) -> None:
        self.saved: list[Mapping[Partition, int]] = []

    def save_positions(self, group: str, positions: Mapping[Partition, int]) -> None:
        self.saved.append(positions)

    def positions(self, group: str) -> Mapping[Partition, int]:
        return {}


def test_positions_are_not_saved_for_a_batch_written_to_a_generation_switched_meanwhile() -> None:
    inner, registry_epoch = Positions(), [1]
    guarded = EpochGuardedPositions(inner, lambda: registry_epoch[0], lambda: 1)
    guarded.save_positions("g", {("t", 0): 5})
    registry_epoch[0] = 2
    with pytest.raises(GenerationChanged):
        guarded.save_positions("g", {("t", 0): 9})
    assert inner.saved == [{("t", 0): 5}]
