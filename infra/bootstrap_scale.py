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
from infra.cassandra.migrations import migrate
from infra.cassandra.readmodel import CassandraReadModel
from infra.cassandra.session import connect, ensure_keyspace
from infra.container import Container
from infra.feed_freshness import safe_render
from infra.feed_wiring import scale_feed
from infra.kafka.eventlog import KafkaEventLog
from infra.kafka.topics import ensure_topics
from infra.media.s3_store import S3MediaStore
from infra.redis_adapters.feed_cache import FeedCacheMirror
from infra.redis_adapters.pubsub import RedisPubSub
from infra.redis_adapters.ratelimit import RedisRateLimiter
from infra.redis_adapters.wiring import cached_read_model, redis_client
from infra.remote_consistency import RemoteConsistency
from infra.settings import Settings
from projections.registry import all_tables


def build_scale(settings: Settings, role: Role = "all", clock: Callable[[], datetime] = utc_now) -> Container:
    session = connect(settings)
    keyspace = settings.cassandra_keyspace
    ensure_keyspace(session, keyspace, settings.cassandra_replication_factor)
    tables = all_tables()
    migrate(session, keyspace, tables)
    ensure_topics(settings)
    durable = CassandraReadModel(session, keyspace, tables)
    cache = redis_client(settings)
    read = cached_read_model(durable, cache, settings)
    # A stale feed rebuilt by a read goes to Cassandra, then into the cache as the worker's writes do.
    mirror = FeedCacheMirror(cache, prefix=settings.redis_prefix, cap=settings.feed_cache_cap)
    feed = scale_feed(settings, durable, cache, mirror.apply)
    store = CassandraCommandStore(session, keyspace)
    log = KafkaEventLog(settings, store)
    media = S3MediaStore(settings)
    media.ensure_bucket()
    new_id = IdGenerator(settings.shard_id)
    pubsub = RedisPubSub(settings.redis_url, settings.redis_prefix)

    def close() -> None:
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
        consistency=RemoteConsistency(lambda: store.positions(settings.worker_group)),
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
