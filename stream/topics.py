"""Topic names and creation (DESIGN.md §2).

Public topics carry the configured prefix; the person-keyed topic is internal
to the Faust app id. `ensure_topics` creates whatever is missing, so a worker,
the simulator and the tests can start against an empty broker.
"""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from stream.security import aiokafka_options
from stream.settings import Settings


def key_hash(key: bytes) -> int:
    """Kafka's default partitioner hashes a key so: the record goes to `key_hash % partitions`
    (Java clients, aiokafka, the emitter and the batch mode's partitions agree)."""
    return murmur2(key) & 0x7FFFFFFF


RAW = "touchpoints.raw"
PUBLIC = (
    RAW,
    "touchpoints.dlq",
    "touchpoints.sessions",
    "attribution.conversions",
    "attribution.credits",
    "attribution.models",
    "touchpoints.identity_conflicts",
)


def persons_topic(settings: Settings) -> str:
    """Internal topic: validated events keyed by person id."""
    return f"{settings.topic_prefix}{settings.app_id}-touchpoints.persons"


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
        if missing:
            new = [NewTopic(name, settings.partitions, replication_factor) for name in missing]
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                await admin.create_topics(new)
        return missing
    finally:
        await admin.close()
