"""What the benchmark reads off a run: CPU time, latency percentiles, Redis memory per journey,
Kafka's on-disk bytes per topic."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis

from stream.adapters.redis.keys import DEFAULT, Keys
from stream.core.record_codec import decode_record
from stream.core.state_codec import decode_state

TICKS = os.sysconf("SC_CLK_TCK")
PARTITION_DIR = re.compile(r"(.+)-(\d+)")  # <topic>-<partition>: a partition's directory


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / TICKS


def redis_cpu_seconds(client: Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def person_memory(nodes: Redis | Sequence[Redis], keys: Keys = DEFAULT) -> dict[str, Any]:
    """Redis memory held per person, from `MEMORY USAGE` of every key under the prefix of
    `keys`, grouped by kind: on one server, or summed over a cluster's primaries (a person's
    keys share one hash tag, so one node holds them all).

    Person keys are `<prefix>:{p:<id>}:<kind>`; per-partition aggregates, the identity map and the
    conversion index are shared structures, reported apart. `by_touches` gives the mean
    bytes per person (journey state + dedup fence + outbox, conversion records apart) by the
    number of touchpoints in its journey, so the 10-touch figure is read off directly.
    """
    tally = _Tally()
    for client in [nodes] if isinstance(nodes, Redis) else nodes:
        tally.add_node(client, keys)
    persons, records = tally.persons, tally.records
    by_touches: dict[int, list[int]] = {}
    for pid, parts in persons.items():
        state = sum(v for kind, v in parts.items() if kind != "conv")
        by_touches.setdefault(tally.touches.get(pid, 0), []).append(state)
    person_bytes = sum(sum(p.values()) for p in persons.values())
    conv_bytes = sum(p.get("conv", 0) for p in persons.values())
    return {
        "persons": len(persons),
        "bytes_by_kind": tally.kinds,
        "bytes_per_person": person_bytes / max(1, len(persons)),
        "state_bytes_per_person": (person_bytes - conv_bytes) / max(1, len(persons)),
        "conversion_bytes": conv_bytes,
        "shared_bytes": sum(tally.kinds.values()) - person_bytes,  # paths, counters, indexes
        "aggregate_bytes": tally.aggregates,
        "report_days": len(tally.days),
        "by_touches": {n: sum(v) / len(v) for n, v in sorted(by_touches.items())},
        "persons_by_touches": {n: len(v) for n, v in sorted(by_touches.items())},
        "conversions": sum(len(v) for v in records.values()),
        "conversion_bytes_by_touches": {n: sum(v) / len(v) for n, v in sorted(records.items())},
    }


@dataclass
class _Tally:
    """`MEMORY USAGE` summed by kind and by person, journey lengths, conversion record sizes."""

    kinds: dict[str, int] = field(default_factory=dict)
    persons: dict[str, dict[str, int]] = field(default_factory=dict)
    touches: dict[str, int] = field(default_factory=dict)
    records: dict[int, list[int]] = field(default_factory=dict)
    aggregates: dict[str, int] = field(default_factory=dict)  # the partitions' keys, by name
    days: set[str] = field(default_factory=set)  # the days with report counters

    def add_node(self, client: Redis, keys: Keys) -> None:
        person = f"{keys.prefix}:{{p:"
        names = [k.decode() for k in client.scan_iter(match=f"{keys.prefix}:*", count=10_000)]
        pipe = client.pipeline(transaction=False)
        for k in names:
            pipe.memory_usage(k, samples=0)
        sizes = dict(zip(names, pipe.execute(), strict=True))
        for k, size in sizes.items():
            if k.startswith(person):
                pid, _, kind = k[len(person) :].partition("}:")
                kind = kind.split(":", 1)[0]  # conv:<id> -> conv
                parts = self.persons.setdefault(pid, {})
                parts[kind] = parts.get(kind, 0) + (size or 0)
            else:
                kind = k[len(keys.prefix) + 1 :].split(":", 1)[0].strip("{}")
                if kind.startswith("agg"):  # {agg:P}:<name>[:<day>]
                    name, _, day = k.partition("}:")[2].partition(":")
                    self.aggregates[name] = self.aggregates.get(name, 0) + (size or 0)
                    self.days.update([day] if name == "report" else [])
            self.kinds[kind] = self.kinds.get(kind, 0) + (size or 0)
        states = [
            k[len(person) :].partition("}:")[0]
            for k in names
            if k.startswith(person) and k.endswith("}:state")
        ]
        self.touches.update(_touch_counts(client, keys, states))
        conv_keys = [k for k in names if k.startswith(person) and "}:conv:" in k]
        for n, found in _record_sizes(client, conv_keys, sizes).items():
            self.records.setdefault(n, []).extend(found)


def _record_sizes(client: Redis, conv_keys: list[str], sizes: dict[str, int]) -> dict[int, list[int]]:
    """`MEMORY USAGE` of each stored conversion record, by its number of touchpoints."""
    pipe = client.pipeline(transaction=False)
    for k in conv_keys:
        pipe.get(k)
    by_touches: dict[int, list[int]] = {}
    for k, raw in zip(conv_keys, pipe.execute(), strict=True):
        if raw is not None:
            doc, _basis = decode_record(raw)
            by_touches.setdefault(len(doc["touchpoints"]), []).append(sizes[k] or 0)
    return by_touches


def _touch_counts(client: Redis, keys: Keys, persons: list[str]) -> dict[str, int]:
    pipe = client.pipeline(transaction=False)
    for pid in persons:
        pipe.get(keys.person(pid, "state"))
    counts = {}
    for pid, raw in zip(persons, pipe.execute(), strict=True):
        counts[pid] = len(decode_state(raw).journey.touches)
    return counts


def topic_log_bytes(data_dir: Path, prefix: str) -> dict[str, int]:
    """On-disk bytes of the record logs (`*.log` segments) of each topic whose name starts
    with `prefix`, summed over its partitions, in a broker's log dir `data_dir` (one
    replica's copy)."""
    sizes: dict[str, int] = {}
    for part in data_dir.iterdir():
        match = PARTITION_DIR.fullmatch(part.name)
        if match and part.is_dir() and part.name.startswith(prefix):
            size = sum(segment.stat().st_size for segment in part.glob("*.log"))
            sizes[match[1]] = sizes.get(match[1], 0) + size
    return sizes
