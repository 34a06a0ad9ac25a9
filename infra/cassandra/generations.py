"""Which Cassandra tables hold each projection's read model: blue/green generations.

The scale twin of infra/readmodel_generations.py. A projection's tables start as
`rm_<table>` (the legacy generation); `glimpse replay --mode scale` builds generation N
beside them as `rm<N>_<table>` and switches to it. The registry is one partition of
`readmodel_registry` (migration 0003):

- the *epoch* (a static column): bumped by every switch. Processes poll it (one cell) to
  learn that they must re-route, and the Redis caches key their entries by it;
- kind `active`: per switched projection, the prefix of its active generation (the others
  use the legacy prefix);
- kind `retired`: tables no reader should use any more, with the time they may be dropped.

A switch is one conditional batch on that partition: the epoch goes from N to N+1 only
if it is still N, together with the new prefixes and the retirements, so a reader sees
all of a switch or none of it, and two replays cannot both switch from the same epoch.

`GenerationRouter` keeps a process's `CassandraReadModel`s routed to the active tables:
`refresh()` reads the epoch and, when it moved, the active prefixes; API processes call it
from a thread every second and before answering a consistency wait, the worker after a
pause (infra/worker/pause.py).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cassandra import ConsistencyLevel
from cassandra.cluster import Session
from cassandra.query import BatchStatement, SimpleStatement

from infra.cassandra.session import DDL_TIMEOUT_SECONDS, check_name
from projections.projection import Projection

log = logging.getLogger(__name__)

LEGACY_PREFIX = "rm_"
SCOPE = "registry"
REFRESH_SECONDS = 1.0  # how often API processes look at the epoch


# -- pure: routes and switch plans ---------------------------------------------------------------


@dataclass(frozen=True)
class Active:
    projection: str
    prefix: str
    version: int
    build_id: int


@dataclass(frozen=True)
class Retired:
    physical: str
    drop_after: float  # seconds since the epoch
    reason: str


@dataclass(frozen=True)
class RegistryState:
    epoch: int = 0
    active: Mapping[str, Active] = field(default_factory=dict)
    retired: Mapping[str, Retired] = field(default_factory=dict)

    def prefix_of(self, projection: str) -> str:
        found = self.active.get(projection)
        return LEGACY_PREFIX if found is None else found.prefix


def routes_for(state: RegistryState, projections: Iterable[Projection]) -> dict[str, str]:
    """Logical table -> physical table, for every table of `projections`."""
    return {t.name: state.prefix_of(p.name) + t.name for p in projections for t in p.tables}


@dataclass(frozen=True)
class SwitchPlan:
    """What one switch writes: from `epoch` to `epoch + 1`."""

    epoch: int
    active: tuple[Active, ...]
    retired: tuple[Retired, ...]


def plan_switch(
    state: RegistryState,
    build_id: int,
    prefix: str,
    switched: Sequence[Projection],
    helpers: Sequence[Projection],
    now: float,
    grace_seconds: float,
) -> SwitchPlan:
    """Make the build the active generation of `switched`: their current tables retire after
    the grace period, the helpers' tables of the build at once (nobody ever read them)."""
    active = tuple(Active(p.name, prefix, p.version, build_id) for p in switched)
    retired: dict[str, Retired] = {}
    for p in switched:
        old = state.prefix_of(p.name)
        if old != prefix:
            for t in p.tables:
                retired[old + t.name] = Retired(old + t.name, now + grace_seconds, f"replaced by build {build_id}")
    for p in helpers:
        for t in p.tables:
            retired[prefix + t.name] = Retired(prefix + t.name, now, f"helper of build {build_id}")
    return SwitchPlan(state.epoch, active, tuple(retired.values()))


def due(state: RegistryState, now: float, projections: Iterable[Projection]) -> list[str]:
    """Retired tables whose grace period is over; never one that is routed to (a table may
    be retired, then made active again by a later build reusing the prefix: not ours, but cheap to rule out)."""
    live = set(routes_for(state, projections).values())
    return sorted(r.physical for r in state.retired.values() if r.drop_after <= now and r.physical not in live)


# -- Cassandra -----------------------------------------------------------------------------------


def _seconds(value: datetime | None) -> float:
    if value is None:
        return 0.0
    if value.tzinfo is None:  # the driver returns naive UTC datetimes
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class CassandraRegistry:
    """The registry partition and the build records of a keyspace (tables from migration 0003)."""

    def __init__(self, session: Session, keyspace: str) -> None:
        self._session = session
        self._ks = check_name(keyspace)

    def _run(self, cql: str, params: Sequence[Any] = (), *, timeout: float | None = None) -> Any:
        statement = SimpleStatement(cql, consistency_level=ConsistencyLevel.LOCAL_QUORUM)
        statement.serial_consistency_level = ConsistencyLevel.LOCAL_SERIAL
        return self._session.execute(statement, params, timeout=timeout)

    # -- reading ---------------------------------------------------------------------------------
    def epoch(self) -> int:
        found = self._run(f"SELECT epoch FROM {self._ks}.readmodel_registry WHERE scope = %s LIMIT 1", (SCOPE,)).one()
        return int(found[0] or 0) if found is not None else 0

    def state(self) -> RegistryState:
        rows = self._run(
            f"SELECT epoch, kind, name, prefix, version, build_id, at, reason FROM {self._ks}.readmodel_registry "
            "WHERE scope = %s",
            (SCOPE,),
        )
        epoch = 0
        active: dict[str, Active] = {}
        retired: dict[str, Retired] = {}
        for e, kind, name, prefix, version, build_id, at, reason in rows:
            epoch = int(e or 0)
            if kind == "active":
                active[name] = Active(name, prefix, int(version or 0), int(build_id or 0))
            elif kind == "retired":
                retired[name] = Retired(name, _seconds(at), reason or "")
        return RegistryState(epoch, active, retired)

    def routes(self, projections: Iterable[Projection]) -> dict[str, str]:
        return routes_for(self.state(), projections)

    # -- switching -------------------------------------------------------------------------------
    def switch(self, plan: SwitchPlan) -> bool:
        """Apply the plan if the epoch is still `plan.epoch`; returns whether it was applied."""
        ks = self._ks
        batch = BatchStatement(consistency_level=ConsistencyLevel.LOCAL_QUORUM)
        batch.serial_consistency_level = ConsistencyLevel.LOCAL_SERIAL
        condition = "IF epoch = null" if plan.epoch == 0 else "IF epoch = %s"
        batch.add(
            f"UPDATE {ks}.readmodel_registry SET epoch = %s WHERE scope = %s {condition}",
            (plan.epoch + 1, SCOPE) if plan.epoch == 0 else (plan.epoch + 1, SCOPE, plan.epoch),
        )
        now = datetime.now(UTC)
        for a in plan.active:
            batch.add(
                f"INSERT INTO {ks}.readmodel_registry (scope, kind, name, prefix, version, build_id, at) "
                "VALUES (%s, 'active', %s, %s, %s, %s, %s)",
                (SCOPE, a.projection, a.prefix, a.version, a.build_id, now),
            )
        for r in plan.retired:
            batch.add(
                f"INSERT INTO {ks}.readmodel_registry (scope, kind, name, at, reason) "
                "VALUES (%s, 'retired', %s, %s, %s)",
                (SCOPE, check_name(r.physical), _when(r.drop_after), r.reason),
            )
        return bool(self._session.execute(batch).was_applied)

    def drop_due(self, projections: Iterable[Projection], now: float | None = None) -> list[str]:
        """Drop the retired tables whose grace period is over; returns their names."""
        doomed = due(self.state(), time.time() if now is None else now, projections)
        for physical in doomed:
            self._run(f"DROP TABLE IF EXISTS {self._ks}.{check_name(physical)}", timeout=DDL_TIMEOUT_SECONDS)
            self._run(
                f"DELETE FROM {self._ks}.readmodel_registry WHERE scope = %s AND kind = 'retired' AND name = %s",
                (SCOPE, physical),
            )
        return doomed

    # -- builds ----------------------------------------------------------------------------------
    def new_build(self, switch: Sequence[Projection], helpers: Sequence[Projection]) -> int:
        """Claim the next build id (and so the prefix `rm<id>_`)."""
        taken = [int(r[0]) for r in self._run(f"SELECT build_id FROM {self._ks}.readmodel_builds")]
        build_id = max(taken, default=0) + 1
        while True:
            claimed = self._run(
                f"INSERT INTO {self._ks}.readmodel_builds (build_id, prefix, projections, helpers, state, started_at) "
                "VALUES (%s, %s, %s, %s, 'building', %s) IF NOT EXISTS",
                (
                    build_id,
                    f"rm{build_id}_",
                    json.dumps([p.name for p in switch]),
                    json.dumps([p.name for p in helpers]),
                    datetime.now(UTC),
                ),
            ).one()
            if claimed[0]:
                return build_id
            build_id += 1

    def finish_build(self, build_id: int, state: str, positions: Mapping[tuple[str, int], int], events: int) -> None:
        self._run(
            f"UPDATE {self._ks}.readmodel_builds SET state = %s, positions = %s, events = %s, finished_at = %s "
            "WHERE build_id = %s",
            (
                state,
                json.dumps({f"{t}:{p}": o for (t, p), o in sorted(positions.items())}),
                events,
                datetime.now(UTC),
                build_id,
            ),
        )

    def builds(self) -> dict[int, str]:
        return {int(b): str(s) for b, s in self._run(f"SELECT build_id, state FROM {self._ks}.readmodel_builds")}


# -- keeping a process routed ------------------------------------------------------------------


class Routable(Protocol):
    def route(self, routes: Mapping[str, str]) -> None: ...


class EpochSource(Protocol):
    def epoch(self) -> int: ...

    def state(self) -> RegistryState: ...


class GenerationRouter:
    """Routes read models to the active generation, and tells listeners the epoch moved.

    `listeners` are called with the new epoch after the stores are routed (the Redis
    caches change key prefix there). Thread-safe: the refresh thread, the consistency
    waiter and the worker may all call `refresh`."""

    def __init__(
        self,
        registry: EpochSource,
        projections: Sequence[Projection],
        stores: Sequence[Routable] = (),
        listeners: Sequence[Callable[[int], None]] = (),
    ) -> None:
        self._registry = registry
        self._projections = tuple(projections)
        self._stores = list(stores)
        self._listeners = list(listeners)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.epoch = -1  # nothing routed yet
        self.routes: dict[str, str] = {}

    def add_store(self, store: Routable) -> None:
        with self._lock:
            self._stores.append(store)
            if self.routes:
                store.route(self.routes)

    def refresh(self) -> bool:
        """Re-route if the epoch moved since the last refresh; returns whether it did."""
        if self._registry.epoch() == self.epoch:
            return False
        with self._lock:
            state = self._registry.state()  # epoch and prefixes of one switch, read together
            if state.epoch == self.epoch:
                return False
            routes = routes_for(state, self._projections)
            for store in self._stores:
                store.route(routes)
            self.routes = routes
            previous, self.epoch = self.epoch, state.epoch
            for listener in self._listeners:
                listener(state.epoch)
        if previous >= 0:
            log.info("read models switched to generation epoch %d", state.epoch)
        return True

    def start(self, interval: float = REFRESH_SECONDS) -> None:
        """Refresh every `interval` seconds in a daemon thread until `stop()`."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.refresh()
                except Exception:  # Cassandra briefly unavailable: keep serving the current generation
                    log.warning("could not read the read-model registry", exc_info=True)

        self._thread = threading.Thread(target=loop, name="glimpse-generations", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
