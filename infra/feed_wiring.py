"""How the composition roots put the home feed together: settings in, projections and the
read path's runtime out (DESIGN.md section 5).

- `feed_policy(settings)`: the strategy, thresholds, caps and chunk sizes.
- `feed_projections(settings, activity)`: the registry's projections with the feed's
  bound to that policy and activity store; every process that applies projections
  (the embedded projector, the scale worker) uses it, so both modes decide alike.
- `FeedRuntime`: what GET /v1/feed needs beyond the read port: the policy, the
  activity store (hybrid only), how to write back a rebuilt feed, and the freshness
  histogram for /metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

from infra.feed_activity import RedisActivityStore, SqliteActivityStore
from infra.feed_freshness import Freshness, FreshnessRecorder, MemoryFreshness, RedisFreshness
from infra.settings import Settings
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.feed import FeedPolicy, make_projection
from projections.feed.activity import EVERYONE_ACTIVE, ActivityStore
from projections.projection import Projection
from projections.registry import PROJECTIONS
from projections.store import Op, ReadModelWriter


def feed_policy(settings: Settings) -> FeedPolicy:
    return FeedPolicy(
        strategy=settings.feed_strategy,
        cap=settings.feed_fanout_cap,
        backfill=settings.feed_backfill_posts,
        celebrity_threshold=settings.feed_celebrity_threshold,
        active_window_seconds=settings.feed_active_window_seconds,
        chunk=settings.feed_fanout_chunk,
        rebuild_depth=settings.feed_rebuild_depth,
    )


def feed_projections(settings: Settings, activity: ActivityStore = EVERYONE_ACTIVE) -> tuple[Projection, ...]:
    """The registry's projections, in order, with the feed's built from the settings."""
    feed = make_projection(policy=feed_policy(settings), activity=activity)
    return tuple(feed if p.name == feed.name else p for p in PROJECTIONS)


@dataclass
class FeedRuntime:
    policy: FeedPolicy
    activity: ActivityStore | None  # None unless hybrid: nothing is skipped, nothing rebuilt
    repair: Callable[[Sequence[Op]], None]
    freshness: Freshness


def embedded_feed(settings: Settings, store: SqliteReadModel) -> tuple[tuple[Projection, ...], FeedRuntime]:
    """The projector's projections and the read path's runtime over the embedded SQLite store."""
    policy = feed_policy(settings)
    activity = SqliteActivityStore(store.conn) if policy.strategy == "hybrid" else None

    def repair(ops: Sequence[Op]) -> None:
        store.conn.execute("BEGIN IMMEDIATE")
        try:
            store.apply(ops)
        except BaseException:
            store.conn.execute("ROLLBACK")
            raise
        store.conn.execute("COMMIT")

    runtime = FeedRuntime(policy, activity, repair, MemoryFreshness())
    return feed_projections(settings, activity or EVERYONE_ACTIVE), runtime


def scale_activity(settings: Settings, client: redis.Redis) -> ActivityStore:
    return RedisActivityStore(client, settings.redis_prefix) if settings.feed_strategy == "hybrid" else EVERYONE_ACTIVE


def scale_feed(
    settings: Settings,
    durable: ReadModelWriter,
    client: redis.Redis,
    mirror: Callable[[Sequence[Op]], object],
) -> FeedRuntime:
    """The API processes' runtime: a rebuilt feed goes to Cassandra, then through the
    cache mirror (like the worker's writes), and freshness comes from the worker."""
    policy = feed_policy(settings)
    activity = RedisActivityStore(client, settings.redis_prefix) if policy.strategy == "hybrid" else None

    def repair(ops: Sequence[Op]) -> None:
        durable.apply(ops)
        mirror(ops)

    return FeedRuntime(policy, activity, repair, RedisFreshness(client, settings.redis_prefix))


def worker_projections(settings: Settings, client: redis.Redis) -> tuple[Projection, ...]:
    """The scale worker's projections: the feed asks Redis who is active."""
    return feed_projections(settings, scale_activity(settings, client))


def freshness_recorder(settings: Settings, client: redis.Redis) -> FreshnessRecorder:
    """The scale worker's listener for the shared freshness histogram."""
    return FreshnessRecorder(RedisFreshness(client, settings.redis_prefix))
