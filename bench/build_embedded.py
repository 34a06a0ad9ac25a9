"""The embedded state: events into a fresh SQLite log, read models by the real projector.

Two timed phases, each appended to the log and then projected by the projector's
`catch_up`: everything before the first post (accounts, media, follows), then the
posts, with a listener that counts the feed projection's writes, which gives fan-out
deliveries per second and durable feed rows written per post.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.state import batched
from events.posts import PostCreated
from events.union import Event
from projections.store import Delete, Op, Put, SetAdd

FEED_PROJECTION = "feed"


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Settings read the environment: set `values` for the duration (feed strategy and friends)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class FeedWrites:
    """Projector listener: what the feed projection wrote for each PostCreated."""

    def __init__(self) -> None:
        self.posts = 0
        self.puts: Counter[str] = Counter()
        self.deletes: Counter[str] = Counter()

    def __call__(self, event: Event, projection: str, ops: Sequence[Op]) -> None:
        if projection != FEED_PROJECTION or not isinstance(event, PostCreated):
            return
        for op in ops:
            if isinstance(op, Put | SetAdd):
                self.puts[op.table] += 1
            elif isinstance(op, Delete):
                self.deletes[op.table] += 1

    def deliveries(self) -> int:
        from projections.feed import FEED

        return self.puts[FEED.name]


def _append_and_project(
    data_dir: Path, events: Iterable[Event], env: dict[str, str], listener: Any = None
) -> tuple[int, float, float]:
    """Append `events` to the data dir's log, then let its projector catch up: (events,
    seconds appending, seconds projecting)."""
    from infra.bootstrap import build_embedded
    from infra.settings import Settings

    with environment(env):
        container = build_embedded(Settings(data_dir=data_dir))
    try:
        started = time.monotonic()
        count = 0
        for batch in batched(events, 5000):
            container.log.append(batch)
            count += len(batch)
        appended = time.monotonic()
        assert container.projector is not None
        if listener is not None:
            container.projector.subscribe(listener)
        container.projector.catch_up()
        done = time.monotonic()
    finally:
        container.close()
    return count, appended - started, done - appended


def build_graph(data_dir: Path, events: Iterable[Event]) -> dict[str, Any]:
    """Everything before the posts, projected once; each strategy starts from a copy.

    No post exists yet, so no feed setting can change what this projects. The read models
    are opened first, on an empty log, so that the projector takes the events as they come
    (as live), rather than the start-up rebuild of a read model that has never seen a log,
    which projects in memory: at a million users, more memory than this machine has.
    """
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    count, appending, projecting = _append_and_project(data_dir, events, {})
    return {
        "method": "events appended to a fresh SQLite log; read models by the embedded projector (catch_up)",
        "events": count,
        "seconds_append": round(appending, 2),
        "seconds_project": round(projecting, 2),
        "events_per_second_projected": round(count / max(1e-9, projecting), 1),
    }


def build_posts(data_dir: Path, posts: Iterable[Event], env: dict[str, str]) -> dict[str, Any]:
    """Append the posts to a copy of the graph state and project them with the strategy's settings."""
    writes = FeedWrites()
    count, appending, seconds = _append_and_project(data_dir, posts, env, writes)
    return {
        "method": "posts appended to the SQLite log; projected by the embedded projector (catch_up)",
        "posts": count,
        "seconds_append": round(appending, 2),
        "seconds_project": round(seconds, 2),
        "fanout_deliveries": writes.deliveries(),
        "fanout_deliveries_per_second": round(writes.deliveries() / max(1e-9, seconds), 1),
        "durable_feed_rows_per_post": round(sum(writes.puts.values()) / max(1, count), 2),
        "feed_rows_written_by_table": dict(writes.puts),
        "feed_rows_deleted_by_table": dict(writes.deletes),
    }


def copy_state(src: Path, dst: Path) -> None:
    """Copy a data dir that no process writes, but whose WAL files a closing connection may
    still fold in and delete: each database is checkpointed into its main file first, so a
    WAL file that vanishes during the copy held nothing."""
    import sqlite3
    from contextlib import closing

    for db in src.glob("*.db"):
        with closing(sqlite3.connect(db)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def copy(source: str, target: str) -> None:
        try:
            shutil.copy2(source, target)
        except FileNotFoundError:
            if not source.endswith(("-wal", "-shm")):
                raise

    shutil.copytree(src, dst, copy_function=copy)
