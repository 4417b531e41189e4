"""Kafka topic names and creation.

Public topics (`stream.core.topics.PUBLIC`) carry the configured prefix; the
person-keyed topic is internal to the Faust app id. `ensure_topics` creates whatever is
missing, so a worker, the simulator and the tests can start against an empty broker.

The topics a worker reads (the raw topic and the person-keyed one) are created with
`message.timestamp.type=LogAppendTime`: Kafka's time-based retention goes by record
timestamps, and a producer that stamps records with their event time (a backfill of
last quarter's events) would otherwise see them deleted before any worker reads them.
Touchstream orders and ages events by their `ts` field, never by the record timestamp.
"""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from stream.adapters.kafka.security import aiokafka_options
from stream.core.topics import PERSONS, PUBLIC, RAW
from stream.settings import Settings

APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}


def persons_topic(settings: Settings) -> str:
    """Internal topic: validated events keyed by person id."""
    return f"{settings.topic_prefix}{settings.app_id}-touchpoints.persons"


def topic_name(settings: Settings, logical: str) -> str:
    """The Kafka topic of a logical name: the person-keyed topic, or a public one with the prefix."""
    return persons_topic(settings) if logical == PERSONS else settings.topic(logical)


def all_topics(settings: Settings) -> list[str]:
    return [settings.topic(name) for name in PUBLIC] + [persons_topic(settings)]


async def ensure_topics(settings: Settings, replication_factor: int = 1) -> list[str]:
    """Create missing topics with `settings.partitions` partitions; returns those created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, **aiokafka_options(settings)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in all_topics(settings) if name not in existing]
        inputs = {settings.topic(RAW), persons_topic(settings)}
        if missing:
            new = [
                NewTopic(
                    name,
                    settings.partitions,
                    replication_factor,
                    topic_configs=APPEND_TIME if name in inputs else None,
                )
                for name in missing
            ]
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                await admin.create_topics(new)
        return missing
    finally:
        await admin.close()
