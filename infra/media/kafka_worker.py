"""`glimpse media-worker`: the scale stack's driver of the media pipeline.

It consumes the media topic; for each MediaUploaded it waits until the projection
worker has applied that record (the outcome's decision reads the media row), runs
the same `run_job` as the embedded worker against S3 in a thread, records the
outcome through a command bus over the Kafka log, and only then commits the offset.
A crash repeats at most the jobs after the last commit: renditions are content
addressed and the media projection keeps the first outcome, so a repeat is harmless.
An unavailable store or tool is retried with a backoff, never skipped; a record
that cannot be decoded stops the worker loudly. Run several (one consumer group)
to use more cores: jobs spread over the topic's partitions.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from commands.bus import CommandBus
from events.ids import IdGenerator
from events.media import MediaUploaded
from infra.bootstrap import utc_now
from infra.cassandra.command_store import CassandraCommandStore
from infra.cassandra.migrations import migrate
from infra.cassandra.readmodel import CassandraReadModel
from infra.cassandra.session import connect, ensure_keyspace
from infra.kafka.eventlog import KafkaEventLog
from infra.kafka.topics import bootstrap_servers, ensure_topics_async, topic_of
from infra.media.s3_store import S3MediaStore
from infra.media.worker import JobUnavailable, MediaJob, OutcomeRecorder, limits_from, run_job
from infra.personal_data.wiring import scale_codec
from infra.settings import Settings
from projections.registry import all_tables

log = logging.getLogger(__name__)

PROJECTED_WAIT_SECONDS = 120.0
BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)


class MediaWorkerStopped(RuntimeError):
    pass


async def _wait_projected(store: CassandraCommandStore, group: str, topic: str, partition: int, offset: int) -> None:
    deadline = time.monotonic() + PROJECTED_WAIT_SECONDS
    while (await asyncio.to_thread(store.positions, group)).get((topic, partition), -1) < offset:
        if time.monotonic() > deadline:
            raise MediaWorkerStopped(f"the projection worker has not applied {topic}:{partition}:{offset}")
        await asyncio.sleep(0.05)


async def run(settings: Settings) -> None:
    session = connect(settings)
    ensure_keyspace(session, settings.cassandra_keyspace, settings.cassandra_replication_factor)
    tables = all_tables()
    migrate(session, settings.cassandra_keyspace, tables)
    await ensure_topics_async(settings)
    store = CassandraCommandStore(session, settings.cassandra_keyspace)
    read = CassandraReadModel(session, settings.cassandra_keyspace, tables)
    codec = scale_codec(session, settings.cassandra_keyspace, settings.personal_key_cache_seconds)
    kafka_log = KafkaEventLog(settings, store, codec)
    recorder = OutcomeRecorder(CommandBus(kafka_log, read, IdGenerator(settings.shard_id), utc_now))
    media = S3MediaStore(settings)
    media.ensure_bucket()
    limits = limits_from(settings)
    topic = topic_of(settings, "media")
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers(settings),
        group_id=f"{settings.worker_group}-media",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    log.info("media worker consuming %s", topic)
    try:
        async for message in consumer:
            try:
                event = codec.decode(message.value or b"")
            except Exception as exc:
                raise MediaWorkerStopped(
                    f"undecodable record {message.topic}:{message.partition}:{message.offset}: {exc!r}"
                ) from exc
            if isinstance(event, MediaUploaded):
                await _wait_projected(store, settings.worker_group, message.topic, message.partition, message.offset)
                job = MediaJob.of_upload(event)
                for attempt, pause in enumerate((*BACKOFF_SECONDS, None)):
                    try:
                        outcome = await asyncio.to_thread(run_job, job, media, limits)
                        await asyncio.to_thread(recorder.record, outcome)
                        break
                    except JobUnavailable as exc:
                        if pause is None:
                            raise MediaWorkerStopped(f"media {job.media_id}: still unavailable: {exc}") from exc
                        log.warning("media %s: attempt %d unavailable (%s); retrying", job.media_id, attempt + 1, exc)
                        await asyncio.sleep(pause)
            await consumer.commit({TopicPartition(message.topic, message.partition): message.offset + 1})
    finally:
        await consumer.stop()
        kafka_log.close()
        session.cluster.shutdown()


def run_media_worker(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(run(settings))
    except KeyboardInterrupt:
        return 0
    except MediaWorkerStopped as stop:
        log.error("media worker stopped: %s", stop)
        return 3
    return 0
