"""Replays in the embedded mode: opening the read models, and replays asked of a serving process.

Opening (`open_read_models`, called by the embedded bootstrap before its projector runs):
take the data dir's shared lock (infra/data_dir_lock.py), drop what a dead replay left
behind and retired tables past their grace period, route every table to the active
generation of its projection, create missing tables, and rebuild from offset zero, the
blue/green way, any projection the read models have not applied in its current
version (a projection added since, or one whose version was bumped).

Replays while serving: `glimpse replay` runs in its own process, and the read models
belong to the serving process (it projects every write into them, in the event-loop
thread). So the command asks the server instead of writing the database itself: it
drops a request file into `<data dir>/replays/requests/`, and a periodic job of the
server (`wire`) picks it up and runs the replay as an asyncio task, a batch per
step, writing its progress to `<data dir>/replays/status/<id>.json`, which the
command follows. The switch then happens in the process that owns the tables, under
the command bus's lock, between two requests.

Why files rather than an admin HTTP endpoint: the data dir is already the trust
boundary of the embedded mode (whoever can write it can rewrite the log), so a request
file needs no new credential and opens no new network path; it reaches the process
that serves this data dir whatever port that one listens on; and the command can tell
a server that died mid-replay (its lock is gone) from one that is busy.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commands.ports import ReadableEventLog
from infra import readmodel_generations as generations
from infra.container import Container, PeriodicJob
from infra.data_dir_lock import DataDirLock, hold_shared, try_exclusive
from infra.feed_wiring import feed_policy, feed_projections
from infra.replay import (
    NOBODY_ACTIVE,
    SERVER_BATCH,
    ColdCacheProjection,
    Engine,
    ReplayReport,
    blue_green,
    catch_up_new_projections,
    plan,
    run_async,
)
from infra.replay_progress import Progress, ProgressLine
from infra.settings import Settings
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.feed import make_projection
from projections.projection import Projection

log = logging.getLogger(__name__)

REQUESTS = "replays/requests"
STATUS = "replays/status"
POLL_SECONDS = 0.5
DROP_EVERY_SECONDS = 10.0


def replay_projections(settings: Settings, *, cold_caches: bool = True) -> tuple[Projection, ...]:
    """The projections as the embedded projector runs them, except for whom the feed pushes
    to: activity is not in the log, so a replay cannot know who was reading when.

    The hybrid feed sees nobody as active and leaves its per-user feeds empty
    (`ColdCacheProjection`: the switch marks every reader, whose first read rebuilds
    their feed). Otherwise (push, or `cold_caches=False`: the scale replay, whose switch
    does not mark the readers kept in Redis) it sees everyone as active and pushes every
    post, as the push strategy does live."""
    projections = feed_projections(settings)
    if settings.feed_strategy != "hybrid" or not cold_caches:
        return projections
    feed = make_projection(policy=feed_policy(settings), activity=NOBODY_ACTIVE)
    cold = ColdCacheProjection(feed.name, feed.version, feed.tables, feed.project)
    return tuple(cold if p.name == cold.name else p for p in projections)


def open_read_models(settings: Settings, log_: ReadableEventLog, store: SqliteReadModel) -> DataDirLock:
    """Make `store` ready for a projector: see the module doc. Returns the data dir lock,
    which the caller releases when it closes the read models."""
    conn = store.conn
    generations.ensure_schema(conn)
    alone = try_exclusive(settings.data_dir)
    if alone is not None:  # nobody else has the data dir open: leftovers of a dead replay can go
        try:
            dead = generations.abandon_unfinished(conn)
            if dead:
                log.warning("dropped the tables of unfinished replays %s", dead)
        finally:
            alone.release()
    lock = hold_shared(settings.data_dir)
    try:
        generations.drop_due(conn)
        projections = replay_projections(settings)
        generations.activate(store, projections)
        store.create_schema()
        line = ProgressLine() if sys.stderr.isatty() else None  # `glimpse serve` starting on a terminal
        try:
            report = catch_up_new_projections(
                log_, store, projections, progress=line, memory_max_events=settings.replay_memory_max_events
            )
        finally:
            if line is not None:
                line.close()
        if report is not None:
            log.info(
                "rebuilt %s from offset zero: %d events, %.0f events/s",
                ", ".join(report.projections),
                report.events,
                report.events_per_second,
            )
    except BaseException:
        lock.release()
        raise
    return lock


# -- the request and status files --------------------------------------------------------


def _write_json(path: Path, body: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body))
    os.replace(tmp, path)


@dataclass(frozen=True)
class ReplayRequest:
    request_id: str
    projections: tuple[str, ...]
    grace_seconds: float
    engine: Engine = "memory"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.request_id,
            "projections": list(self.projections),
            "grace_seconds": self.grace_seconds,
            "engine": self.engine,
            "requested_at": time.time(),
        }


def request_replay(
    data_dir: Path, projections: Sequence[str], grace_seconds: float, engine: Engine = "memory"
) -> ReplayRequest:
    request = ReplayRequest(uuid.uuid4().hex, tuple(projections), grace_seconds, engine)
    _write_json(status_path(data_dir, request.request_id), {"id": request.request_id, "state": "requested"})
    _write_json(data_dir / REQUESTS / f"{request.request_id}.json", request.as_dict())
    return request


def status_path(data_dir: Path, request_id: str) -> Path:
    return data_dir / STATUS / f"{request_id}.json"


def read_status(data_dir: Path, request_id: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads(status_path(data_dir, request_id).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return found


class ReplayService:
    """Runs the replays asked of this serving process, one at a time (see the module doc)."""

    def __init__(self, container: Container, store: SqliteReadModel) -> None:
        if container.projector is None:
            raise ValueError("replays while serving need the in-process projector (embedded mode)")
        self._container = container
        self._store = store
        self._projector = container.projector
        self._data_dir = container.settings.data_dir
        self._task: asyncio.Task[None] | None = None
        self._last_drop = 0.0
        self.reports: list[ReplayReport] = []

    def poll(self) -> None:
        """A periodic job, on the event loop: start the oldest pending request, if idle."""
        now = time.monotonic()
        if now - self._last_drop >= DROP_EVERY_SECONDS:
            self._last_drop = now
            dropped = generations.drop_due(self._store.conn)
            if dropped:
                log.info("dropped retired read-model tables %s", ", ".join(dropped))
        if self._task is not None and not self._task.done():
            return
        request = self._next_request()
        if request is not None:
            self._task = asyncio.get_running_loop().create_task(self.run(request))

    def _next_request(self) -> ReplayRequest | None:
        folder = self._data_dir / REQUESTS
        try:
            pending = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
        except FileNotFoundError:
            return None
        for path in pending:
            try:
                raw = json.loads(path.read_text())
                path.unlink()
            except (FileNotFoundError, json.JSONDecodeError):
                continue
            engine: Engine = "sqlite" if raw.get("engine") == "sqlite" else "memory"
            return ReplayRequest(
                str(raw["id"]), tuple(raw.get("projections") or ()), float(raw["grace_seconds"]), engine
            )
        return None

    async def run(self, request: ReplayRequest) -> None:
        path = status_path(self._data_dir, request.request_id)
        last = 0.0

        def on_progress(p: Progress) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= 0.25 or p.done >= p.total:
                last = now
                _write_json(path, {"id": request.request_id, "state": "running", "progress": p.as_dict()})

        _write_json(path, {"id": request.request_id, "state": "running", "progress": None})
        try:
            chosen = plan(replay_projections(self._container.settings), request.projections)
            steps = blue_green(
                self._container.log,  # type: ignore[arg-type]  # the embedded log is readable
                self._store,
                chosen,
                settle=self._projector.catch_up,
                pause=self._container.bus.paused,
                grace_seconds=request.grace_seconds,
                progress=on_progress,
                batch=SERVER_BATCH,
                engine=request.engine,
            )
            report: ReplayReport = await run_async(steps)
        except Exception as exc:
            log.exception("replay %s failed", request.request_id)
            _write_json(path, {"id": request.request_id, "state": "failed", "error": f"{type(exc).__name__}: {exc}"})
            return
        self.reports.append(report)
        log.info(
            "replayed %s: %d events at %.0f events/s, switched at position %d",
            ", ".join(report.projections),
            report.events,
            report.events_per_second,
            report.position,
        )
        _write_json(path, {"id": request.request_id, "state": "done", "report": report.as_dict()})


def wire(container: Container) -> None:
    """Serve replay requests (and drop retired tables) from the embedded app's periodic jobs."""
    store = container.read
    if container.projector is None or not isinstance(store, SqliteReadModel):
        return  # the scale stack: replays run in `glimpse replay --mode scale`
    service = ReplayService(container, store)
    container.jobs.append(PeriodicJob("replay_requests", POLL_SECONDS, service.poll))
