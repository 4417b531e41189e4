"""The live stream's results compared with the batch oracle: shared by the reliability tests
(test_chaos.py, test_kafka_cluster.py, test_redis_failover.py).

`oracle` runs the batch mode (`EventReplay`, the code behind `touchstream attribute
--events`) over the time-sorted events; `mismatches` compares with it the latest revision
of every conversion seen downstream, every journey, every path count and every report
counter (summed over the partitions) that the workers left in Redis, a single server or a
Redis Cluster under the settings' key prefix; `settle` polls until they are equal (or a
deadline passed); `applied_by` reads how far a worker process got.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable

import orjson
from aiokafka import ConsumerRecord
from redis import Redis
from redis.cluster import RedisCluster

from stream.core.topics import CONVERSIONS
from stream.devtools.runner import WorkerProcess, metric
from stream.offline.replay import EventReplay
from stream.settings import Settings
from tests.support import redis_target
from tests.support.kafka import lag, read_all, worker_inputs
from tests.support.revisions import difference, journeys_differing, latest, stored_journeys
from tests.support.waiting import wait_until


@dataclasses.dataclass
class Oracle:
    conversions: dict[str, dict]  # attribution id -> its latest revision (revision blanked)
    replay: EventReplay


def oracle(settings: Settings, events: list[dict], now_ms: int) -> Oracle:
    """The batch mode over the time-sorted events."""
    replay = EventReplay(settings.config(), settings.limits(), now_ms, settings.partitions)
    values = list(replay.run(orjson.dumps(e) for e in sorted(events, key=lambda e: e["ts"])))
    replay.finish()
    replay.close_idle_sessions(now_ms)
    return Oracle(latest(values), replay)


def mismatches(
    settings: Settings, expected: Oracle, seen: list[ConsumerRecord], examples: list[str] | None = None
) -> dict[str, int]:
    """Everything that differs from the oracle; all zero when the stream is exact. A few
    examples of what differs are appended to `examples`."""
    examples = [] if examples is None else examples
    got = latest(m.value for m in seen)
    expected_journeys = {pid: state.journey for pid, state in expected.replay.states.items()}
    stored = stored_journeys(settings, expected_journeys)
    journeys_off = journeys_differing(expected_journeys, stored)
    examples += [f"journey {p}: {difference(expected_journeys[p], stored[p])}" for p in journeys_off[:3]]
    versions: dict[tuple[str, int], set[bytes]] = {}
    for m in seen:
        doc = orjson.loads(m.value)
        versions.setdefault((doc["attribution_id"], doc["revision"]), set()).add(m.value)
    with redis_target.client(settings) as client:
        paths_off = _path_counts_differing(settings, client, expected.replay, examples)
        counters_off = _report_counters_differing(settings, client, expected.replay, examples)
    differing = [i for i, v in got.items() if v != expected.conversions.get(i)]
    examples += [_conversion_difference(i, expected.conversions.get(i) or {}, seen) for i in differing[:2]]
    return {
        "missing conversions": len(set(expected.conversions) - set(got)),
        "unexpected conversions": len(set(got) - set(expected.conversions)),
        "conversions differing": len(differing),
        "revisions emitted twice with other bytes": sum(len(v) > 1 for v in versions.values()),
        "journeys differing": len(journeys_off),
        "path counts differing": paths_off,
        "report counters differing": counters_off,
    }


def _path_counts_differing(
    settings: Settings, client: Redis | RedisCluster, replay: EventReplay, examples: list[str]
) -> int:
    """Path counts (summed over the partitions, as the models read them) that differ from the
    oracle's: an event's increments are kept under the partition it was read from (its
    fence's), which for a device identified as another person's is not always the person's own."""
    keys = redis_target.keys(settings)
    counted: dict[str, int] = {}
    for partition in range(settings.partitions):
        for f, v in client.hgetall(keys.partition(partition, "paths")).items():
            if f != b"#":
                counted[f.decode()] = counted.get(f.decode(), 0) + int(v)
    want: dict[str, int] = {}
    for paths in replay.paths.values():
        for path, amounts in paths.items():
            for kind, amount in zip("cvn", amounts, strict=True):
                want[f"{kind}|{path}"] = want.get(f"{kind}|{path}", 0) + amount
    differing = sorted(f for f in set(counted) | set(want) if counted.get(f, 0) != want.get(f, 0))
    examples += [f"paths {f}: want {want.get(f)} got {counted.get(f)}" for f in differing[:2]]
    return len(differing)


def _report_counters_differing(
    settings: Settings, client: Redis | RedisCluster, replay: EventReplay, examples: list[str]
) -> int:
    """Report counters (per day, summed over the partitions) that differ from the oracle's."""
    live: dict[tuple[str, str], int] = {}
    pattern = f"{redis_target.keys(settings).prefix}:{{agg:*}}:report:*"
    for key in client.scan_iter(match=pattern, count=1000):
        day = key.decode().rpartition(":")[2]
        for name, amount in client.hgetall(key).items():
            live[day, name.decode()] = live.get((day, name.decode()), 0) + int(amount)
    want: dict[tuple[str, str], int] = {}
    for (_partition, day), counters in replay.counters.items():
        for name, amount in counters.items():
            want[day, name] = want.get((day, name), 0) + amount
    differing = sorted(k for k in set(live) | set(want) if live.get(k, 0) != want.get(k, 0))
    examples += [f"report counter {k}: want {want.get(k)} got {live.get(k)}" for k in differing[:2]]
    assert len(want) > 1000  # the oracle counted
    return len(differing)


def _conversion_difference(attribution_id: str, want: dict, seen: list[ConsumerRecord]) -> str:
    """A conversion's person, the channels it is credited on in the oracle and in each revision
    the stream emitted, and the first touchpoint fields that differ in the latest."""

    def channels(doc: dict) -> str:
        return ">".join(t["channel"] for t in doc.get("touchpoints", []))

    docs = sorted(
        (doc for doc in (orjson.loads(m.value) for m in seen) if doc["attribution_id"] == attribution_id),
        key=lambda doc: doc["revision"],
    )
    touches = zip(want.get("touchpoints", []), docs[-1]["touchpoints"] if docs else [], strict=False)
    fields = [
        f"touch {w['index']} {k}: want {w.get(k)} got {g.get(k)}"
        for w, g in touches
        for k in sorted(set(w) | set(g))
        if w.get(k) != g.get(k)
    ]
    return (
        f"conversion {attribution_id} of {want.get('person_id')} at {want.get('conversion', {}).get('ts')}: "
        f"want {channels(want)}; emitted {[(d['revision'], channels(d)) for d in docs]}; {fields[:4]}"
    )


def settle(
    settings: Settings, expected: Oracle, watchdog: Callable[[], None]
) -> tuple[list[ConsumerRecord], dict[str, int], list[str]]:
    """Poll until the stream is drained and equal to the oracle (or 240 s passed), the
    watchdog getting its turn before each next poll: the last poll's records downstream,
    mismatches and examples of what differs."""
    polls: list[tuple[list[ConsumerRecord], dict[str, int], list[str]]] = []

    def exact() -> bool:
        drained = lag(settings, settings.app_id, worker_inputs(settings)) == 0
        seen = read_all(settings, settings.topic(CONVERSIONS))
        examples: list[str] = []
        polls.append((seen, mismatches(settings, expected, seen, examples), examples))
        if drained and not any(polls[-1][1].values()):
            return True
        watchdog()
        return False

    with contextlib.suppress(TimeoutError):  # the mismatches of the last poll are reported
        wait_until(exact, timeout=240, what="stream equal to the oracle", interval=2)
    return polls[-1]


def applied_by(worker: WorkerProcess) -> float:
    """Events the journeys handler of a running worker has applied (0 for a stopped one)."""
    if worker.proc is None or worker.proc.poll() is not None:
        return 0.0
    try:
        return metric(worker.settings, 'touchstream_batch_size_sum{stage="journeys"}')
    except OSError:
        return 0.0
