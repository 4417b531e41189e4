"""What the benchmark reads off a run: CPU time, latency percentiles, Redis memory per journey."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from redis import Redis

from stream.adapters.redis.keys import DEFAULT, Keys
from stream.core.record_codec import decode_record
from stream.core.state_codec import decode_state

TICKS = os.sysconf("SC_CLK_TCK")


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


def person_memory(client: Redis, keys: Keys = DEFAULT) -> dict[str, Any]:
    """Redis memory held per person, from `MEMORY USAGE` of every key under the prefix of
    `keys`, grouped by kind.

    Person keys are `<prefix>:{p:<id>}:<kind>`; per-partition aggregates, the identity map and the
    conversion index are shared structures, reported apart. `by_touches` gives the mean
    bytes per person (journey state + dedup fence + outbox, conversion records apart) by the
    number of touchpoints in its journey, so the 10-touch figure is read off directly.
    """
    person = f"{keys.prefix}:{{p:"
    names = [k.decode() for k in client.scan_iter(match=f"{keys.prefix}:*", count=10_000)]
    pipe = client.pipeline(transaction=False)
    for k in names:
        pipe.memory_usage(k, samples=0)
    sizes = dict(zip(names, pipe.execute(), strict=True))
    kinds: dict[str, int] = {}
    persons: dict[str, dict[str, int]] = {}
    for k, size in sizes.items():
        if k.startswith(person):
            pid, _, kind = k[len(person) :].partition("}:")
            kind = kind.split(":", 1)[0]  # conv:<id> -> conv
            parts = persons.setdefault(pid, {})
            parts[kind] = parts.get(kind, 0) + (size or 0)
        else:
            kind = k[len(keys.prefix) + 1 :].split(":", 1)[0].strip("{}")
        kinds[kind] = kinds.get(kind, 0) + (size or 0)
    touches = _touch_counts(client, keys, list(persons))
    records = _record_sizes(client, [k for k in names if k.startswith(person) and "}:conv:" in k], sizes)
    by_touches: dict[int, list[int]] = {}
    for pid, parts in persons.items():
        state = sum(v for kind, v in parts.items() if kind != "conv")
        by_touches.setdefault(touches.get(pid, 0), []).append(state)
    return {
        "persons": len(persons),
        "bytes_by_kind": kinds,
        "bytes_per_person": sum(sum(p.values()) for p in persons.values()) / max(1, len(persons)),
        "by_touches": {n: sum(v) / len(v) for n, v in sorted(by_touches.items())},
        "persons_by_touches": {n: len(v) for n, v in sorted(by_touches.items())},
        "conversions": sum(len(v) for v in records.values()),
        "conversion_bytes_by_touches": {n: sum(v) / len(v) for n, v in sorted(records.items())},
    }


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
