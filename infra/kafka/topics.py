"""Topic names per stream, and creating the missing ones.

Topics are created by Glimpse rather than auto-created by the broker, because
the broker's default is one partition and the partition count fixes how far
the projection worker can scale out (it can never shrink without rekeying).
"""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from events.union import STREAMS
from infra.settings import Settings

# Three copies survive one broker loss while another is being restarted; a
# single dev broker can only hold one.
MAX_REPLICATION = 3


def topic_of(settings: Settings, stream: str) -> str:
    return f"{settings.kafka_topic_prefix}.{stream}"


def all_topics(settings: Settings) -> list[str]:
    return [topic_of(settings, s) for s in STREAMS]


def bootstrap_servers(settings: Settings) -> list[str]:
    return [h.strip() for h in settings.kafka_bootstrap.split(",") if h.strip()]


async def ensure_topics_async(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create every stream topic that does not exist yet; returns the ones created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings), request_timeout_ms=int(timeout * 1000))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [t for t in all_topics(settings) if t not in existing]
        if not missing:
            return []
        brokers = len((await admin.describe_cluster())["brokers"])
        replication = max(1, min(MAX_REPLICATION, brokers))
        response = await admin.create_topics(
            [NewTopic(t, settings.kafka_partitions, replication) for t in missing], timeout_ms=int(timeout * 1000)
        )
        for topic, code, *message in response.topic_errors:
            # Another process may have created it between our list and create.
            if code not in (0, TopicAlreadyExistsError.errno):
                raise RuntimeError(f"cannot create Kafka topic {topic}: error {code} {message}")
        return missing
    finally:
        await admin.close()


def ensure_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Synchronous form, for launchers that run before any event loop."""
    return asyncio.run(ensure_topics_async(settings, timeout))
