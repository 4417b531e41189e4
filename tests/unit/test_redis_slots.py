"""Every Lua script call and multi-key command stays in one Redis Cluster hash slot.

A script's keys must all hash to one slot, or a cluster refuses the call (CROSSSLOT). The
key sets are built by `stream.adapters.redis.keys` (`person_keys`, `partition_keys`,
`snapshot_keys`), for any prefix and any person id (braces included); and the stores'
own call sites queue, on redis-py's real cluster pipeline (never executed), EVALSHA
calls whose keys share one slot, which the client routes without complaint.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from stream.adapters.redis.aggregates import PartitionBatch, PartitionStore, PathIncrement
from stream.adapters.redis.connection import Ttls
from stream.adapters.redis.keys import Keys
from stream.adapters.redis.persons import PersonStore
from stream.core.config import Config, ReportLimits
from stream.core.counters import Count
from stream.core.person import PersonState, Positioned, StepResult, step
from stream.core.records import Event

PREFIXES = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,12}", fullmatch=True)
IDS = st.text(min_size=1, max_size=24)  # braces, colons, any unicode: ids are the producers'
NAMES = st.lists(st.text(max_size=20).map(lambda t: f"conv:{t}"), max_size=6)
TTLS = Ttls(10**10, 10**10, 10**10)
T0 = 1_767_000_000_000
MINUTE = 60_000


def slots(keys: list[str]) -> set[int]:
    return {key_slot(k.encode()) for k in keys}


@given(PREFIXES, IDS, NAMES)
def test_a_persons_keys_share_one_slot(prefix: str, person_id: str, names: list[str]) -> None:
    keys = Keys(prefix).person_keys(person_id, ["state", "out", *names, "revenue:x"])
    assert len(slots(keys)) == 1


@given(PREFIXES, st.integers(0, 10_000), st.sampled_from(["paths-fence", "paths-fence:raw"]))
def test_a_partitions_keys_share_one_slot(prefix: str, partition: int, fence: str) -> None:
    names = ["paths", fence, "report:2026-03-01", "report:2026-03-02", "open", "active", "raw-watermark"]
    assert len(slots(Keys(prefix).partition_keys(partition, names))) == 1


@given(PREFIXES)
def test_the_snapshots_keys_share_one_slot(prefix: str) -> None:
    assert len(slots(Keys(prefix).snapshot_keys())) == 1


def test_persons_and_partitions_spread_over_the_slots() -> None:
    """The tags are per person and per partition, not one for all: a cluster shares the load."""
    keys = Keys("ts")
    assert len(slots([keys.person(f"c-{i}", "state") for i in range(100)])) > 90
    assert len(slots([keys.partition(p, "paths") for p in range(8)])) == 8


def person_result(person_id: str) -> StepResult:
    """A person's step that writes its state, outbox, a stored conversion and its revenue."""
    who = {"customer_id": person_id}
    events = [
        Event("e1", "interaction", T0, person_id, channel="email", **who),
        Event(
            "e2",
            "conversion",
            T0 + MINUTE,
            person_id,
            conversion="lead",
            conversion_id="lead-{1}",
            value=0.0,
            currency="EUR",
            **who,
        ),
        Event(
            "e3",
            "revenue",
            T0 + 2 * MINUTE,
            person_id,
            conversion_id="lead-{1}",
            value=50.0,
            currency="EUR",
            **who,
        ),
    ]
    positioned = [Positioned("touchpoints.raw:0", i, e) for i, e in enumerate(events)]
    return step(person_id, PersonState(), positioned, Config(models=("linear",)))


def partition_batch(partition: int, fence: str) -> PartitionBatch:
    """Path increments and report counters of three days (three report hashes)."""
    today = datetime.now(UTC).date()
    days = [(today - timedelta(days=d)).isoformat() for d in range(3)]
    counts = [(i, Count(day, f"conversions|{i}", "conversions|(other)", 1)) for i, day in enumerate(days)]
    increments = [PathIncrement(0, "email > direct", 1, 5_000_000, 0)]
    return PartitionBatch(partition, fence, 2, increments, counts)


def queued_scripts(pipe) -> list[tuple]:
    commands = pipe._execution_strategy._command_queue
    return [c.args for c in commands if c.args[0] == "EVALSHA"]


def test_every_script_call_site_queues_keys_of_one_slot() -> None:
    """PersonStore's apply.lua (state, outbox, conversions, revenue; tombstones alike),
    PartitionStore's paths.lua (path counts, fence, day hashes) and watermark.lua, queued by
    the stores' own code on a cluster pipeline; redis-py routes each to one slot.
    (snapshot.lua goes through redis-py's Script with `snapshot_keys`, tested above.)"""
    client = RedisCluster(host="127.0.0.1", port=1)  # never connected: nothing is executed
    persons = PersonStore(client, TTLS, prefix="prod-eu")
    partitions = PartitionStore(client, TTLS, reports=ReportLimits(), prefix="prod-eu")
    pipe = persons.pipeline()
    for pid in ("c-7", "a}b", "{p:x}", "é-ü", "anon:{42"):
        result = person_result(pid)
        assert result.conversions and result.conversions[0].revenue_changed
        persons._queue_apply(pipe, pid, result)
    for partition in range(8):
        for fence in ("paths-fence", "paths-fence:raw"):
            partitions._queue_paths(pipe, partition_batch(partition, fence), -1, T0)
        partitions._watermark.queue(pipe, partitions.keys.partition_keys(partition, ["raw-watermark"]), [1])
    calls = queued_scripts(pipe)
    assert len(calls) == 5 + 8 * 3
    for args in calls:
        keys = [k.decode() if isinstance(k, bytes) else k for k in args[3 : 3 + args[2]]]
        assert len(keys) >= 1 and all(k.startswith("prod-eu:") for k in keys)
        assert len(slots(keys)) == 1, keys
        assert asyncio.run(client._determine_slot(*args)) == key_slot(keys[0].encode())
    assert {len(a[3 : 3 + a[2]]) for a in calls} == {1, 4, 5}  # watermark; apply; paths with 3 days
