"""Event-time order across the partitions one worker reads (pure; no I/O).

A person's events reach it through several partitions (an anonymous device's key, the
known customer's key). Kafka orders each partition, never partitions among themselves,
and a consumer may drain one partition far ahead of another: then a person's later
events are applied before its earlier ones. Touchstream stays exact either way (late
events are put at their place and re-credit what they change; docs/architecture.md,
"Late events"). What the batch consumer does about the order:

- the records of one fetch are handed on merged by timestamp, each partition's kept in
  offset order (Kafka Streams, within a task, takes the buffered record with the
  smallest timestamp first);
- each partition's *position* — the timestamp of the last record fetched from it — is
  tracked, and the spread between the partitions that still have records to fetch is
  reported (`touchstream_partition_skew_ms`), so that operators see how far apart they run.

It does not pause a partition that runs ahead (as Flink's watermark alignment does):
both ways of doing that inside Faust's fetch loop that were tried — holding fetched
records back, and leaving partitions out of a fetch — made the Kafka client reset
offsets and lose records under load, so neither is shipped.

Timestamps are the Kafka record timestamps (producers that set them to the event time
order by event time; send-time timestamps order by publication).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class Timestamped(Protocol):
    @property
    def timestamp(self) -> float: ...  # seconds


K = TypeVar("K", bound=Hashable)
R = TypeVar("R", bound=Timestamped)


@dataclass
class Positions(Generic[K]):
    """The position of each partition of one topic: its last fetched timestamp (s)."""

    positions: dict[K, float] = field(default_factory=dict)

    def fetched(self, partition: K, records: Sequence[Timestamped]) -> None:
        if records:
            self.positions[partition] = records[-1].timestamp

    def skew_ms(self, behind: Iterable[K]) -> float:
        """The spread of the positions of the partitions with records left, in ms."""
        positions = [self.positions[p] for p in behind if p in self.positions]
        return (max(positions) - min(positions)) * 1000 if len(positions) > 1 else 0.0

    def forget(self) -> None:
        """A rebalance: positions start again."""
        self.positions.clear()


def merged(runs: Iterable[Sequence[R]]) -> list[R]:
    """Records of several partitions merged by timestamp, each partition's kept in order."""
    runs = [run for run in runs if run]
    if len(runs) == 1:
        return list(runs[0])
    return list(heapq.merge(*runs, key=lambda r: r.timestamp))
