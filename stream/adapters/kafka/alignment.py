"""Event-time alignment across the partitions one worker reads (pure; no I/O).

A person's events reach it through several raw partitions (an anonymous device's key,
the known customer's key). Kafka orders each partition, never partitions among
themselves, and a consumer may drain one partition far ahead of another: then a
person's later events are applied before its earlier ones. Touchstream stays exact
either way (late events are put at their place and re-credit what they change), but
each late arrival costs a re-derivation and a revision downstream. So, as Kafka Streams
does within a task (it processes the buffered record with the smallest timestamp and
pauses partitions whose buffer is full) and Flink's watermark alignment does across
splits, the batch consumer holds fetched records back:

- each partition's *head* is the event time of its first record not yet handed on, or,
  when it holds none but has records left on the broker, of the last record fetched
  from it (what comes next is about as late); a partition with nothing held and nothing
  left does not count; one with records left but none fetched yet (its head unknown) holds
  every other back for up to `wait_ms` of wall clock (Kafka Streams' `max.task.idle.ms`):
  otherwise the first partition fetched would run ahead of all the others;
- the *frontier* is the lowest head; a partition hands on its records, in offset order,
  while their event time is at most the frontier + `bound_ms`;
- a partition holding `cap` records is left out of the next fetches until it hands some
  on (memory stays bounded; the broker keeps the rest).

Records without an event time (values that fail validation) never wait. Event times
are clamped to the wall clock, so that an event stamped in the future (a producer's
clock) does not hold its partition back until that time comes. Across workers nothing
waits: each worker aligns the partitions it owns (the low watermark that journeys
expire by is global, `stream.core.control`).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")
UNKNOWN = -(2**62)  # the head of a partition that has records to come but none fetched yet


@dataclass
class Aligner(Generic[K, R]):
    """Fetched records of one topic, held per partition until the others catch up."""

    time_of: Callable[[R], int | None]  # a record's event time (ms), None when it has none
    bound_ms: int
    cap: int
    wait_ms: int = 2000
    held: dict[K, deque[R]] = field(default_factory=dict)
    positions: dict[K, int] = field(default_factory=dict)  # event time of the last record fetched
    unknown_since: dict[K, int] = field(default_factory=dict)  # wall clock: behind, nothing fetched yet

    def add(self, partition: K, records: Sequence[R]) -> None:
        """Records fetched from `partition`, in offset order."""
        if not records:
            return
        self.held.setdefault(partition, deque()).extend(records)
        for record in reversed(records):
            ts = self.time_of(record)
            if ts is not None:
                self.positions[partition] = ts
                break

    def release(self, behind: Collection[K], now_ms: int) -> dict[K, list[R]]:
        """What may be handed on, per partition in offset order; `behind`: the partitions with
        records left on the broker. Handing records on moves the frontier: repeated until
        nothing more may go."""
        out: dict[K, list[R]] = {}
        while self.held:
            frontier = self.frontier(behind, now_ms)
            limit = None if frontier is None else frontier + self.bound_ms
            moved = False
            for partition, queue in list(self.held.items()):
                n = self._releasable(queue, now_ms, limit)
                if n:
                    moved = True
                    out.setdefault(partition, []).extend(queue.popleft() for _ in range(n))
                if not queue:
                    del self.held[partition]
            if not moved:
                break
        return out

    def _releasable(self, queue: deque[R], now_ms: int, limit: int | None) -> int:
        """How many records from the front of `queue` may go: up to the first whose event
        time (clamped to now) is beyond `limit`."""
        if limit is None or now_ms <= limit:
            return len(queue)
        n = 0
        for record in queue:
            ts = self.time_of(record)
            if ts is not None and ts > limit:
                break
            n += 1
        return n

    def frontier(self, behind: Iterable[K], now_ms: int) -> int | None:
        """The lowest head; UNKNOWN while a partition whose head is not known yet holds back."""
        if self._waiting_for_first(behind, now_ms):
            return UNKNOWN
        return min(self._heads(behind, now_ms).values(), default=None)

    def skew_ms(self, behind: Iterable[K], now_ms: int) -> int:
        """How far apart in event time the partitions with records to come (and known heads) run."""
        heads = self._heads(behind, now_ms).values()
        return max(heads) - min(heads) if heads else 0

    def saturated(self) -> set[K]:
        """Partitions to leave out of the next fetch: they hold `cap` records or more."""
        return {p for p, queue in self.held.items() if len(queue) >= self.cap}

    def forget(self) -> None:
        """A rebalance: what is held is fetched again from the committed offsets."""
        self.held.clear()
        self.positions.clear()
        self.unknown_since.clear()

    def _waiting_for_first(self, behind: Iterable[K], now_ms: int) -> bool:
        """Whether a partition with records to come, none fetched yet, still holds the others back."""
        waiting = False
        for partition in behind:
            if partition in self.positions or partition in self.held:
                continue
            since = self.unknown_since.setdefault(partition, now_ms)
            waiting = waiting or now_ms - since <= self.wait_ms
        return waiting

    def _heads(self, behind: Iterable[K], now_ms: int) -> dict[K, int]:
        heads = {p: min(ts, now_ms) for p in behind if (ts := self.positions.get(p)) is not None}
        for partition, queue in self.held.items():
            ts = self._first_time(queue)
            if ts is not None:
                heads[partition] = min(ts, now_ms)
        return heads

    def _first_time(self, queue: deque[R]) -> int | None:
        for record in queue:
            ts = self.time_of(record)
            if ts is not None:
                return ts
        return None


def merged(runs: Iterable[Sequence[R]], key: Callable[[R], float]) -> list[R]:
    """Records of several partitions merged by `key`, each partition's kept in order."""
    runs = [run for run in runs if run]
    if len(runs) == 1:
        return list(runs[0])
    return list(heapq.merge(*runs, key=key))
