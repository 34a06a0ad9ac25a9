"""The blue/green replay engine (infra/replay.py) over a live embedded store.

The live store is kept up to date by the real projector while the replay runs: the
engine is a generator, and these tests run commands between its steps, in every phase,
the way the serving process interleaves requests with a replay.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from events.union import Event
from infra import readmodel_generations as generations
from infra.projector import ProjectionFailed
from infra.readmodel_digest import digests, projection_digests
from infra.replay import ReplayPlan, ReplayReport, blue_green, catch_up_new_projections, plan, rebuild, run
from infra.replay_progress import Progress
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.projection import Projection
from projections.registry import PROJECTIONS
from projections.store import Op, Put, ReadModel, Table
from tests.unit.replay_histories import History, Step

EVERYDAY: list[Step] = [
    ("register", 0, 0, 0),
    ("register", 1, 0, 0),
    ("register", 2, 0, 0),
    ("follow", 0, 1, 1),
    ("follow", 2, 1, 1),
    ("post", 1, 0, 2),
    ("like", 0, 0, 0),
    ("comment", 2, 0, 1),
    ("story", 1, 0, 2),
    ("view_story", 0, 0, 0),
    ("block", 2, 0, 1),
    ("close_friends", 1, 0, 5),
]
MORE: list[Step] = [
    ("post", 0, 1, 1),
    ("like", 1, 1, 1),
    ("follow", 1, 0, 1),
    ("unfollow", 2, 1, 1),
    ("comment", 0, 1, 3),
    ("delete_comment", 1, 0, 0),
    ("private", 0, 0, 1),
    ("follow", 2, 0, 1),
    ("approve", 0, 2, 1),
    ("read_notifications", 1, 0, 0),
]


def fresh_replay(history: History) -> dict[str, str]:
    """What a replay of the whole log into an empty store gives."""
    tables = [t for p in history.projections for t in p.tables]
    import sqlite3

    store = SqliteReadModel(sqlite3.connect(":memory:", isolation_level=None), tables)
    store.create_schema()
    steps = blue_green(history.log, store, plan(history.projections), settle=history.log.head)
    run(steps)
    return digests(store)


def drive(history: History, steps_: object, commands: list[Step]) -> tuple[ReplayReport, list[str]]:
    """Run the engine to its end, one command between two steps while commands last;
    returns the report and the phases the commands ran in."""
    phases: list[str] = []
    todo = iter(commands)
    gen = steps_
    while True:
        try:
            next(gen)  # type: ignore[call-overload]
        except StopIteration as done:
            return done.value, phases
        command = next(todo, None)
        if command is not None:
            history.step(*command)
            phases.append(history.phase)  # type: ignore[attr-defined]


def replayed(history: History, chosen: ReplayPlan, commands: list[Step], **kw: object) -> ReplayReport:
    history.phase = ""  # type: ignore[attr-defined]

    def progress(p: Progress) -> None:
        history.phase = p.phase  # type: ignore[attr-defined]

    steps_ = blue_green(
        history.log,
        history.live,
        chosen,
        settle=history.projector.catch_up,
        pause=history.bus.paused,
        progress=progress,
        **kw,  # type: ignore[arg-type]
    )
    report, phases = drive(history, steps_, commands)
    history.phases = phases  # type: ignore[attr-defined]
    return report


def test_the_switched_read_models_equal_a_replay_of_the_final_log() -> None:
    history = History().run(EVERYDAY)
    before = history.log.head()
    report = replayed(history, plan(PROJECTIONS), MORE * 8, batch=3, load_chunk=60)
    # Commands ran while projecting, loading and catching up, and none of their events was lost.
    assert {"project", "load", "catch-up"} <= set(history.phases)  # type: ignore[attr-defined]
    assert history.log.head() > before
    assert report.position == history.log.head() == history.projector.position
    assert history.live.physical("accounts") == f"rm{report.build_id}_accounts"
    assert digests(history.live) == fresh_replay(history)
    # After the switch, writes go to the new generation, and it keeps agreeing with a replay.
    history.run(MORE)
    assert digests(history.live) == fresh_replay(history)


def test_the_sqlite_engine_builds_the_same_read_models_without_the_memory_store() -> None:
    history = History().run(EVERYDAY)
    report = replayed(history, plan(PROJECTIONS), MORE, batch=4, engine="sqlite")
    assert report.rows == 0 and "load" not in report.seconds
    assert "project" in history.phases  # type: ignore[attr-defined]
    assert digests(history.live) == fresh_replay(history)


def test_events_appended_after_the_last_catch_up_are_applied_before_the_switch() -> None:
    history = History().run(EVERYDAY)
    # One projecting step, many loading steps, no catch-up step: everything the commands
    # append is left for the final catch-up under the command bus's lock.
    report = replayed(history, plan(PROJECTIONS), MORE, batch=10_000, load_chunk=10)
    assert set(history.phases) == {"project", "load"}  # type: ignore[attr-defined]
    assert report.switch_events > 0
    assert digests(history.live) == fresh_replay(history)


def test_the_old_generation_waits_out_its_grace_period_then_goes() -> None:
    history = History().run(EVERYDAY)
    report = replayed(history, plan(PROJECTIONS), [], grace_seconds=60)
    conn = history.live.conn
    retired = dict(generations.retired(conn))
    assert "rm_accounts" in retired and retired["rm_accounts"] > time.time() + 50
    assert generations.drop_due(conn) == []
    dropped = generations.drop_due(conn, now=time.time() + 61)
    assert "rm_accounts" in dropped
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "rm_accounts" not in names and f"rm{report.build_id}_accounts" in names


def test_replaying_one_projection_switches_it_alone_and_drops_its_helpers_at_once() -> None:
    history = History().run(EVERYDAY)
    live = projection_digests(history.live, PROJECTIONS)
    chosen = plan(PROJECTIONS, ["stories"])
    report = replayed(history, chosen, MORE, batch=2)
    assert report.projections == ("stories",) and report.helpers == ("profile", "graph")
    assert history.live.physical("stories") == f"rm{report.build_id}_stories"
    assert history.live.physical("followers") == "rm_followers"  # the helpers' live tables stay
    assert generations.active(history.live.conn) == {"stories": (f"rm{report.build_id}_", chosen.switch[0].version)}
    helper_tables = {f"rm{report.build_id}_followers", f"rm{report.build_id}_accounts"}
    assert helper_tables <= set(generations.drop_due(history.live.conn))
    now = projection_digests(history.live, PROJECTIONS)
    assert now["stories"] == projection_digests(_replayed_store(history), PROJECTIONS)["stories"]
    assert live.keys() == now.keys()


def _replayed_store(history: History) -> SqliteReadModel:
    import sqlite3

    tables = [t for p in PROJECTIONS for t in p.tables]
    store = SqliteReadModel(sqlite3.connect(":memory:", isolation_level=None), tables)
    store.create_schema()
    run(blue_green(history.log, store, plan(PROJECTIONS), settle=history.log.head))
    return store


def test_a_failing_replay_switches_nothing_and_leaves_nothing_behind() -> None:
    history = History().run(EVERYDAY)
    calls = itertools.count()

    def breaks_late(event: Event, read: ReadModel) -> list[Op]:
        if next(calls) == 10:
            raise RuntimeError("a bug")
        return []

    engagement = next(p for p in PROJECTIONS if p.name == "engagement")
    broken = tuple(Projection(p.name, p.version, p.tables, breaks_late) if p is engagement else p for p in PROJECTIONS)
    before = digests(history.live)
    with pytest.raises(ProjectionFailed, match="engagement"):
        run(blue_green(history.log, history.live, plan(broken), settle=history.projector.catch_up))
    conn = history.live.conn
    assert generations.active(conn) == {}
    assert history.live.physical("likes") == "rm_likes"
    assert digests(history.live) == before
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not [n for n in names if n.startswith("rm1_")]
    assert conn.execute("SELECT state FROM readmodel_builds").fetchall() == [("failed",)]


# -- a projection added later, or a new version, catches up from offset zero ------------------

POSTS_BY_AUDIENCE = Table(
    "posts_by_audience", partition=("audience",), clustering=("post_id",), types={"audience": str}
)


def _by_audience(event: Event, read: ReadModel) -> list[Op]:
    from events.posts import PostCreated

    if isinstance(event, PostCreated):
        return [Put(POSTS_BY_AUDIENCE.name, {"audience": event.audience, "post_id": event.post_id})]
    return []


def test_a_projection_added_later_catches_up_from_offset_zero() -> None:
    history = History().run(EVERYDAY + MORE)
    late = Projection("posts_by_audience", 1, (POSTS_BY_AUDIENCE,), _by_audience)
    projections = (*PROJECTIONS, late)
    store = SqliteReadModel(history.live.conn, [t for p in projections for t in p.tables])
    store.route({t.name: history.live.physical(t.name) for p in PROJECTIONS for t in p.tables})
    store.create_schema()
    report = catch_up_new_projections(history.log, store, projections)
    assert report is not None and report.projections == ("posts_by_audience",)
    assert report.helpers == tuple(p.name for p in PROJECTIONS)  # not in READS: everything before it
    assert {r["post_id"] for r in store.scan("posts_by_audience", {"audience": "followers"})} | {
        r["post_id"] for r in store.scan("posts_by_audience", {"audience": "public"})
    } == set(history.posts)
    versions = generations.stored_versions(store.conn)
    assert versions["posts_by_audience"] == (1, history.log.head())
    assert catch_up_new_projections(history.log, store, projections) is None  # once is enough


@pytest.mark.parametrize("memory_max_events", [None, 0])
def test_a_projection_whose_version_changed_is_rebuilt_when_the_read_models_open(memory_max_events: int | None) -> None:
    history = History().run(EVERYDAY)
    bumped = tuple(
        Projection(p.name, p.version + 1, p.tables, p.project) if p.name == "notifications" else p for p in PROJECTIONS
    )
    before = projection_digests(history.live, PROJECTIONS)
    report = catch_up_new_projections(history.log, history.live, bumped, memory_max_events=memory_max_events)
    assert report is not None and report.projections == ("notifications",)
    in_memory = memory_max_events is None  # else a log longer than the limit: projected straight into SQLite
    assert ("load" in report.seconds) == in_memory and (report.rows > 0) == in_memory
    assert history.live.physical("notification_groups") == f"rm{report.build_id}_notification_groups"
    assert generations.stored_versions(history.live.conn)["notifications"][0] == bumped[-1].version
    assert projection_digests(history.live, PROJECTIONS) == before


def test_an_empty_log_needs_no_replay() -> None:
    history = History()
    assert catch_up_new_projections(history.log, history.live, PROJECTIONS) is None


def test_rebuild_writes_a_new_file_equal_to_the_live_read_models(tmp_path: Path) -> None:
    history = History().run(EVERYDAY + MORE)
    store = rebuild(history.log, tmp_path / "rebuilt.db", PROJECTIONS)
    assert digests(store) == digests(history.live)
    with pytest.raises(FileExistsError):
        rebuild(history.log, tmp_path / "rebuilt.db", PROJECTIONS)
