"""Composition root of the embedded process: SQLite log and read models, local media."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from commands.bus import CommandBus
from events.ids import IdGenerator
from infra.auth import TokenService
from infra.consistency import LocalConsistency
from infra.container import Container
from infra.feed_freshness import FreshnessRecorder, safe_render
from infra.feed_wiring import embedded_feed
from infra.jobs import wire as wire_stories_and_notifications
from infra.media import collector as media_collector
from infra.media import worker as media_worker
from infra.media.local_store import LocalDiskMediaStore
from infra.personal_data.wiring import embedded_codec, shred_on_deletion
from infra.projector import Projector
from infra.pubsub import InProcessPubSub
from infra.ratelimit import RateLimiter
from infra.replay_embedded import open_read_models
from infra.replay_embedded import wire as wire_replays
from infra.settings import Settings
from infra.storage.sqlite_eventlog import SqliteEventLog, connect
from infra.storage.sqlite_readmodel import SqliteReadModel
from projections.registry import all_tables


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_embedded(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Container:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    codec = embedded_codec(settings.data_dir)
    log = SqliteEventLog(settings.data_dir / "events.db", codec)
    read_conn = connect(settings.data_dir / "readmodels.db")
    read = SqliteReadModel(read_conn, all_tables())
    read_lock = open_read_models(settings, log, read)  # blue/green generations; new projections from offset zero
    read.create_schema()
    projections, feed = embedded_feed(settings, read)  # the feed projection bound to the feed settings
    projector = Projector(log, read, projections)
    projector.subscribe(FreshnessRecorder(feed.freshness))
    projector.subscribe(shred_on_deletion(codec))
    projector.catch_up()  # whatever the log holds beyond the read models (e.g. after a crash)
    new_id = IdGenerator(settings.shard_id)
    pubsub = InProcessPubSub()
    bus = CommandBus(log, read, new_id, clock, after_append=lambda token: projector.catch_up(until=int(token)))

    def close() -> None:
        log.close()
        read_conn.close()
        read_lock.release()

    container = Container(
        settings=settings,
        log=log,
        read=read,
        bus=bus,
        media=LocalDiskMediaStore(settings.data_dir / "media"),
        tokens=TokenService(settings.resolved_jwt_secret(), settings.jwt_ttl_seconds),
        pubsub=pubsub,
        consistency=LocalConsistency(log, projector),
        probes={"event_log": log.head, "read_models": lambda: read.get("accounts", {"user_id": 0})},
        projector=projector,
        login_limiter=RateLimiter(settings.login_attempts_per_minute),
        write_limiter=RateLimiter(settings.writes_per_minute),
        new_id=new_id,
        clock=clock,
        close=close,
        feed=feed,
        extra_metrics=[safe_render(feed.freshness)],
    )
    for wire in WIRING:
        wire(container)
    return container


# Each feature may hook into a freshly built container (periodic jobs, listeners).
WIRING: list[Callable[[Container], None]] = []
WIRING.append(media_collector.wire)  # delete media blobs once an erased account no longer uses them
WIRING.append(wire_stories_and_notifications)  # story expiry job, notification announcer for SSE
WIRING.append(media_worker.wire)  # renditions of each upload, in a thread pool; MediaProcessed / MediaFailed
WIRING.append(wire_replays)  # `glimpse replay` against this running process; drops retired read models
