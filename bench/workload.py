"""The benchmark's workload: the simulator's journeys plus identifies, as Kafka records."""

from __future__ import annotations

import random

from stream.adapters.kafka.clients import Record, event_record
from stream.devtools.simulate import generate

PARTITIONS = 8
END_MS = 1_790_000_000_000


def workload(customers: int, seed: int = 5) -> list[Record]:
    """The simulator's journeys plus an identify for one customer in a hundred."""
    rng = random.Random(seed)
    events = list(generate(customers, seed, END_MS))
    identifies = [
        {
            "event_id": f"id-{n}",
            "type": "identify",
            "ts": END_MS - 1000,
            "anonymous_id": f"a-{n}",
            "customer_id": f"c-{n}",
        }
        for n in rng.sample(range(customers), customers // 100)
    ]
    return [event_record(e) for e in events + identifies]
