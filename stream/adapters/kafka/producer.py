"""The worker's Kafka producer: Faust's, made idempotent.

Faust (faust-streaming 0.15) waits for all in-sync replicas (`producer_acks`, -1 by
default) but enables aiokafka's idempotence only for exactly-once transactions. Without
it, a batch whose acknowledgement was lost (its leader killed after the followers copied
it) is written again by the retry to the new leader: a duplicate. With it, the broker
knows the producer id and sequence numbers of what it holds and drops the retried copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

DURABLE = {"acks": "all", "enable_idempotence": True}


class IdempotentProducer(faust_aiokafka.Producer):
    """Faust's aiokafka producer with `acks=all` and `enable_idempotence=True` always."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), **DURABLE}
