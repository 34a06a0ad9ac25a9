"""Composition root of the scale-stack API processes (command service, query service).

Writes go to Kafka (reservations and idempotent results in Cassandra); reads come
from Cassandra read models behind the Redis feed and counter caches; media lives
in S3; notifications arrive over Redis pub/sub from the projection worker
(`glimpse worker`), which is the only process that applies projections.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from commands.bus import CommandBus
from events.ids import IdGenerator
from infra.app import Role
from infra.auth import TokenService
from infra.bootstrap import WIRING, utc_now
from infra.cassandra.command_store import CassandraCommandStore
from infra.cassandra.generations import CassandraRegistry, GenerationRouter
from infra.cassandra.migrations import migrate
from infra.cassandra.readmodel import CassandraReadModel
from infra.cassandra.session import connect, ensure_keyspace
from infra.container import Container
from infra.feed_freshness import safe_render
from infra.feed_wiring import scale_feed
from infra.kafka.eventlog import KafkaEventLog
from infra.kafka.topics import ensure_topics
from infra.media.s3_store import S3MediaStore
from infra.personal_data.wiring import scale_codec
from infra.redis_adapters.generation_caches import GenerationCaches
from infra.redis_adapters.pubsub import RedisPubSub
from infra.redis_adapters.ratelimit import RedisRateLimiter
from infra.redis_adapters.wiring import redis_client
from infra.remote_consistency import RemoteConsistency
from infra.settings import Settings
from projections.registry import PROJECTIONS, all_tables


def build_scale(settings: Settings, role: Role = "all", clock: Callable[[], datetime] = utc_now) -> Container:
    session = connect(settings)
    keyspace = settings.cassandra_keyspace
    ensure_keyspace(session, keyspace, settings.cassandra_replication_factor)
    tables = all_tables()
    migrate(session, keyspace, tables)
    ensure_topics(settings)
    durable = CassandraReadModel(session, keyspace, tables)
    cache = redis_client(settings)
    read = GenerationCaches(durable, cache, settings)
    # Reads follow the blue/green switches of `glimpse replay --mode scale` within a second,
    # the Redis caches with them (a key prefix per generation): docs/replay.md, "The scale mode".
    router = GenerationRouter(CassandraRegistry(session, keyspace), PROJECTIONS, [durable], [read.switch])
    router.refresh()
    router.start()
    # A stale feed rebuilt by a read goes to Cassandra, then into the cache as the worker's writes do.
    feed = scale_feed(settings, durable, cache, read.mirror)
    store = CassandraCommandStore(session, keyspace)

    def applied_positions() -> dict[tuple[str, int], int]:
        applied = store.positions(settings.worker_group)
        # A switch records the new generation before the positions the rebuilt tables cover, so
        # positions read first and the registry after: a reached token is readable where we read.
        router.refresh()
        return applied

    log = KafkaEventLog(settings, store, scale_codec(session, keyspace, settings.personal_key_cache_seconds))
    media = S3MediaStore(settings)
    media.ensure_bucket()
    new_id = IdGenerator(settings.shard_id)
    pubsub = RedisPubSub(settings.redis_url, settings.redis_prefix)

    def close() -> None:
        router.stop()
        log.close()
        session.cluster.shutdown()

    container = Container(
        settings=settings,
        log=log,
        read=read,
        bus=CommandBus(log, read, new_id, clock),
        media=media,
        tokens=TokenService(settings.resolved_jwt_secret(), settings.jwt_ttl_seconds),
        pubsub=pubsub,
        login_limiter=RedisRateLimiter(cache, settings.login_attempts_per_minute, settings.redis_prefix),
        write_limiter=RedisRateLimiter(cache, settings.writes_per_minute, settings.redis_prefix),
        new_id=new_id,
        clock=clock,
        consistency=RemoteConsistency(applied_positions),
        probes={
            "cassandra": lambda: session.execute("SELECT release_version FROM system.local"),
            "redis": cache.ping,
            "s3": lambda: media.exists("readyz-probe"),
            "kafka": lambda: ensure_topics(settings),
        },
        close=close,
        feed=feed,
        extra_metrics=[safe_render(feed.freshness)],
    )
    for wire in WIRING:
        wire(container)
    if role == "query":
        container.jobs.clear()  # periodic jobs write: they belong to the command service
    return container
