"""What a replay of some projections rebuilds beside them, and that `READS` is right.

A projection rebuilt from offset zero must read the other projections' tables as they
were at each event, so the replay rebuilds those too (infra/replay.py `READS`). These
tests check `READS` against what the projections really read over random histories,
and that a projection reading outside its plan fails the replay instead of reading
the live tables at the wrong position.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings

from events.union import Event
from infra.projector import ProjectionFailed
from infra.replay import READS, ReplayError, plan, project_in_memory, run
from infra.storage.indexed_memory_readmodel import IndexedMemoryReadModel
from infra.storage.memory_eventlog import MemoryEventLog
from projections.projection import Projection
from projections.registry import PROJECTIONS
from projections.store import Key, Op, ReadModel, Row
from tests.unit.replay_histories import History, Step, steps

OWNER = {t.name: p.name for p in PROJECTIONS for t in p.tables}


class Recording:
    """A read port that notes every table read through it."""

    def __init__(self, inner: ReadModel) -> None:
        self._inner = inner
        self.tables: set[str] = set()

    def get(self, table: str, key: Key) -> Row | None:
        self.tables.add(table)
        return self._inner.get(table, key)

    def get_many(self, table: str, keys: Sequence[Key]) -> list[Row]:
        self.tables.add(table)
        return self._inner.get_many(table, keys)

    def scan(self, table: str, prefix: Key, **kw: Any) -> list[Row]:
        self.tables.add(table)
        return self._inner.scan(table, prefix, **kw)

    def count(self, table: str, prefix: Key) -> int:
        self.tables.add(table)
        return self._inner.count(table, prefix)

    def find(self, table: str, where: Key, limit: int | None = None) -> list[Row]:
        self.tables.add(table)
        return self._inner.find(table, where, limit)


def test_every_registered_projection_has_an_entry() -> None:
    assert set(READS) == {p.name for p in PROJECTIONS}


@settings(max_examples=40, deadline=None)
@given(steps())
def test_projections_read_only_their_own_tables_and_those_their_entry_names(history: list[Step]) -> None:
    events = [e for _, e in History().run(history).events()]
    store = IndexedMemoryReadModel([t for p in PROJECTIONS for t in p.tables])
    for event in events:
        for p in PROJECTIONS:
            recording = Recording(store)
            store.apply(p.project(event, recording))  # type: ignore[arg-type]
            others = {OWNER[t] for t in recording.tables} - {p.name}
            assert others <= set(READS[p.name]), f"{p.name} read tables of {sorted(others)} on {event.type}"


def test_a_plan_adds_what_the_projections_read_and_keeps_registry_order() -> None:
    feed = plan(PROJECTIONS, ["feed"])
    assert [p.name for p in feed.switch] == ["feed"]
    assert [p.name for p in feed.helpers] == ["profile", "graph"]
    assert [p.name for p in feed.build] == ["profile", "graph", "feed"]
    everything = plan(PROJECTIONS)
    assert [p.name for p in everything.switch] == [p.name for p in PROJECTIONS]
    assert everything.helpers == ()
    assert [p.name for p in plan(PROJECTIONS, ["engagement"]).build] == ["engagement"]


def test_an_unknown_projection_is_refused() -> None:
    with pytest.raises(ReplayError, match="no projection named nope"):
        plan(PROJECTIONS, ["feed", "nope"])


def test_a_projection_missing_from_reads_is_planned_with_everything_before_it() -> None:
    extra = Projection("late_comer", 1, (), lambda event, read: [])
    chosen = plan((*PROJECTIONS, extra), ["late_comer"])
    assert [p.name for p in chosen.helpers] == [p.name for p in PROJECTIONS]


def test_reading_outside_the_plan_fails_the_replay_loudly() -> None:
    def sneaky(event: Event, read: ReadModel) -> list[Op]:
        read.get("accounts", {"user_id": 1})  # profile's table, but "engagement" says it reads nothing
        return []

    engagement = next(p for p in PROJECTIONS if p.name == "engagement")
    impostor = Projection("engagement", engagement.version, engagement.tables, sneaky)
    history = History()
    history.run([("register", 0, 0, 0)])
    log = MemoryEventLog()
    log.append([e for _, e in history.events()])
    chosen = plan([impostor], ["engagement"])
    with pytest.raises(ProjectionFailed, match="engagement"):
        run(project_in_memory(log, chosen.build, log.head()))
