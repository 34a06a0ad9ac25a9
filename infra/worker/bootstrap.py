"""Composition root of the projection worker: Cassandra read models and positions,
the projections of the registry, and the Faust app around them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from events.union import Event
from infra.personal_data.codec import EventCodec
from infra.personal_data.wiring import scale_codec, shred_on_deletion
from infra.settings import Settings
from infra.worker.applier import BatchApplier, Listener
from infra.worker.pause import WorkerGate
from projections.registry import all_tables
from projections.store import Op, ReadModel, ReadModelWriter

log = logging.getLogger(__name__)


@dataclass
class ProjectionWorker:
    applier: BatchApplier
    close: Callable[[], None]
    gate: WorkerGate | None = None  # pauses for a replay's switch (infra/worker/generations.py)


def worker_listeners(
    settings: Settings, read: ReadModel, codec: EventCodec, caches: Listener | None = None
) -> list[Listener]:
    """What follows each applied batch: Redis caches, live notifications, unused media blobs.

    `caches`: the feed mirror and counter invalidation of the active generation
    (`GenerationListeners`); by default those of the bare Redis prefix."""
    from infra.feed_wiring import freshness_recorder
    from infra.jobs import notification_announcer
    from infra.media.collector import collect, released_keys
    from infra.media.s3_store import S3MediaStore
    from infra.redis_adapters.pubsub import RedisPubSub
    from infra.redis_adapters.wiring import cache_listeners, redis_client

    media = S3MediaStore(settings)
    client = redis_client(settings)
    # After the caches: a post counts as fresh once its fan-out is readable from the cache.
    cached = cache_listeners(client, settings) if caches is None else [caches, freshness_recorder(settings, client)]

    def collect_media(event: Event, projection: str, ops: Sequence[Op]) -> None:
        keys = released_keys(event, projection, ops)
        if keys:
            collect(read, media, keys)

    return [
        *cached,
        notification_announcer(RedisPubSub(settings.redis_url, settings.redis_prefix)),
        collect_media,
        shred_on_deletion(codec),  # last: after the media of the deleted account went
    ]


def connect_worker(settings: Settings) -> Any:
    """The worker's Cassandra session."""
    from infra.cassandra.session import connect

    return connect(settings)


def build_read_model(session: Any, settings: Settings, *, overlay: bool = True) -> ReadModelWriter:
    """The read models the applier writes through."""
    from infra.cassandra.readmodel import CassandraReadModel
    from infra.worker.overlay import BatchOverlay

    read = CassandraReadModel(session, settings.cassandra_keyspace, all_tables())
    return BatchOverlay(read, all_tables()) if overlay else read


def build_worker(settings: Settings) -> ProjectionWorker:
    """The applier wired to Cassandra (keyspace and tables created or migrated if needed)."""
    from infra.cassandra.command_store import CassandraCommandStore
    from infra.cassandra.flush_journal import CassandraFlushJournal
    from infra.cassandra.migrations import migrate
    from infra.cassandra.readmodel import CassandraReadModel
    from infra.cassandra.session import connect, ensure_keyspace
    from infra.feed_wiring import worker_projections
    from infra.redis_adapters.wiring import redis_client
    from infra.worker.generations import WorkerGenerations
    from infra.worker.overlay import BatchOverlay

    session = connect(settings)
    try:
        keyspace = settings.cassandra_keyspace
        ensure_keyspace(session, keyspace, settings.cassandra_replication_factor)
        tables = all_tables()
        migrate(session, keyspace, tables)
        read = CassandraReadModel(session, keyspace, tables)
        positions = CassandraCommandStore(session, keyspace)
        codec = scale_codec(session, keyspace, settings.personal_key_cache_seconds)
        client = redis_client(settings)
        projections = worker_projections(settings, client)  # the feed bound to its settings
        generations = WorkerGenerations(session, settings, read, projections, client)
        # The query services write rebuilt home feeds into the feed's tables (FeedRuntime.repair):
        # the overlay must not remember those from one batch to the next.
        shared = [t.name for p in projections if p.name == "feed" for t in p.tables]
        overlay = BatchOverlay(read, tables, volatile=shared)  # rounds of concurrent reads, one flush per batch
        applier = BatchApplier(
            overlay,
            projections,
            generations.guard(positions),
            settings.worker_group,
            worker_listeners(settings, read, codec, generations.caches),
            journal=CassandraFlushJournal(session, keyspace),
            decode=codec.decode,
        )
    except BaseException:
        session.cluster.shutdown()
        raise
    gate = generations.gate(applier, overlay)

    def close() -> None:
        gate.stop_heartbeat()
        session.cluster.shutdown()

    return ProjectionWorker(applier=applier, close=close, gate=gate)


def run_worker(settings: Settings, log_level: str = "info") -> int:
    """Run the worker until it is stopped (SIGTERM/SIGINT); returns the exit status."""
    import faust

    from infra.kafka.topics import ensure_topics
    from infra.worker.app import create_app

    created = ensure_topics(settings)
    worker = build_worker(settings)
    try:
        app = create_app(settings, worker.applier, gate=worker.gate)
        if created:
            log.info("created Kafka topics %s", ", ".join(created))
        faust.Worker(app, loglevel=log_level).execute_from_commandline()
    except SystemExit as stop:
        return int(stop.code or 0) if not isinstance(stop.code, str) else 1
    finally:
        worker.close()
    return 0
