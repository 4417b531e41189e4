"""Where the pipeline applies a raw event: the same way, by the same person, every reading.

The failures this pins down (a chaos run: 20 SIGKILLs, rebalances 1->2->1):

- a worker owning partitions {0, 1} read raw partition 0, re-keyed an identified device's
  event to its customer's home 3 (owned by the other worker) and applied the rest of the
  batch, which moved `paths-fence:raw` of partition 0 past the device event's offset; it
  died before committing. Its successor owned every partition and applied the device event
  where it was read: a first application at an offset the fence had passed, so its report
  counters were left out. Routing by ownership made the two readings differ;
- a device's event read before its identify's claim was applied by the device; read again
  after it (a crash between), it went to the customer, who had not merged the device yet
  and applied it a second time: its report counters counted twice. An event that carries
  only an anonymous id now always goes to the device first, which forwards it once
  identified (`stream.core.person`): a second reading is a replay the device's fence knows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from stream.core.config import Limits
from stream.core.output import Message
from stream.core.partitioning import partition_of
from stream.core.records import Event, RawRecord
from stream.core.routing import Needs
from stream.core.topics import PERSONS, RAW
from stream.runtime.ingest import Ingestor
from stream.runtime.metrics import Metrics
from stream.runtime.pipeline import Pipeline

PARTITIONS = 4
RAW_TOPIC = "touchpoints.raw"


class Directory:
    """The identity map (the device identified as its customer, or not yet) and the
    conversions' persons."""

    def __init__(self, identified: dict[str, str], owners: dict[str, str]) -> None:
        self.identified, self.owners = identified, owners

    async def lookup(self, needs: Needs) -> tuple[list[str], dict[str, str], dict[str, str]]:
        identified = {a: self.identified[a] for a in needs.anonymous_ids if a in self.identified}
        return [], identified, {c: self.owners[c] for c in needs.conversion_ids if c in self.owners}


class Emitter:
    """Collects the re-keyed records; both topics have `PARTITIONS` partitions."""

    def __init__(self) -> None:
        self.rekeyed: list[Message] = []

    async def partition_counts(self, topics: Sequence[str]) -> list[int]:
        assert list(topics) == [RAW, PERSONS]
        return [PARTITIONS] * len(topics)

    def partition(self, key: bytes, count: int) -> int:
        return partition_of(key, count)

    async def emit_stamped(self, stamped: Sequence[tuple[Message, float | None]]) -> None:
        self.rekeyed += [message for message, _ts in stamped]


class Processor:
    """Records what journeys would apply, and where (the person's home)."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, int, int]] = []  # (person, raw offset, home)

    async def handle(self, records: Sequence[RawRecord], homes: dict[str, int]) -> None:
        self.applied += [(r.key.decode(), r.offset, homes[r.key.decode()]) for r in records if r.key]


class Aggregates:
    async def advance_watermarks(self, watermarks: dict[int, int], now_ms: int) -> None:
        pass


def person_with_home(home: int, stem: str) -> str:
    return next(
        f"{stem}-{n}" for n in range(1000) if partition_of(f"{stem}-{n}".encode(), PARTITIONS) == home
    )


def read(pipeline: Pipeline, records: list[RawRecord]) -> None:
    async def run() -> None:
        await pipeline.handle(records)
        if pipeline._advancing is not None:
            await pipeline._advancing

    asyncio.run(run())


def test_a_devices_event_goes_to_the_device_and_the_way_never_depends_on_ownership() -> None:
    device = person_with_home(0, "anon")  # keyed by the device: read from raw partition 0
    customer = person_with_home(3, "cust")  # its customer's home is 3
    own = person_with_home(0, "c")  # a person of partition 0, keyed by itself
    ts = 1_783_466_068_214
    events = [
        Event("d1", "interaction", ts, device, anonymous_id=device, channel="organic_social"),
        Event("o1", "interaction", ts + 1, own, customer_id=own, channel="email"),
        Event("r1", "revenue", ts + 2, "", conversion_id="k1", value=5.0, currency="EUR"),
    ]
    records = [
        RawRecord(RAW_TOPIC, 0, 3364 + i, e.person_id.encode() or b"k1", b"{}", ts / 1000, e, e.ts)
        for i, e in enumerate(events)
    ]
    readings = []
    for owner in ({device: customer}, {}):  # read, and read again after the claim (or before it)
        emitter, processor = Emitter(), Processor()
        ingestor = Ingestor(Limits(), Metrics.create(CollectorRegistry()), Directory(owner, {"k1": own}))
        pipeline = Pipeline(ingestor, processor, emitter, Aggregates(), RAW_TOPIC)  # type: ignore[arg-type]
        read(pipeline, records)
        readings.append((processor.applied, [(m.topic, m.key) for m in emitter.rekeyed]))
    # the device's event is applied by the device where it was read, identified or not (the
    # device forwards it); the revenue, routed by a lookup, always takes the person-keyed topic
    assert readings[0] == ([(device, 3364, 0), (own, 3365, 0)], [(PERSONS, own.encode())])
    assert readings[1] == readings[0]
