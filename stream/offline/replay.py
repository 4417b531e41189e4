"""Batch mode over raw events (`touchstream attribute --events`): the stream's own pure code.

`attribute_events` replays raw events through the same validation, the same routing
and the same per-person `step` as the worker (each line is one position of a single
synthetic partition, so event-id dedup behaves as in the stream) and yields the very
`attribution.conversions` values the stream emits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from stream.attribution.paths import VALUE_SCALE, PathCount, parse_path
from stream.attribution.snapshot import Snapshot
from stream.core.codec import decode_event
from stream.core.config import Config, Limits, ReportLimits
from stream.core.control import ControlKind, control_event, expires_before
from stream.core.counters import counts_of
from stream.core.output import Message, read_path_message
from stream.core.partitioning import partition_of
from stream.core.person import PersonState, Positioned, step
from stream.core.records import Event
from stream.core.revenue import Stored
from stream.core.routing import Conflict, route
from stream.core.topics import CONVERSIONS, PATHS, PERSONS
from stream.core.validation import Rejection, validate

BATCH_TP = "batch:0"


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    reason_code: str
    error: str


def attribute_events(
    lines: Iterable[bytes],
    config: Config,
    limits: Limits,
    now_ms: int,
    rejected: list[Rejected] | None = None,
    snapshot: Snapshot | None = None,
) -> Iterator[bytes]:
    """`attribution.conversions` values for every conversion in a JSONL stream of raw events."""
    replay = EventReplay(config, limits, now_ms, snapshot=snapshot)
    yield from replay.run(lines)
    if rejected is not None:
        rejected.extend(replay.rejected)


class EventReplay:
    """Raw events through the stream's validation and per-person `step`, offline.

    Each line is one position of a single synthetic partition, so event-id dedup behaves as
    in the stream. Path counts for the data-driven models are collected as the stream's
    Redis counts are, and `finish` expires what the stream's sweeper would expire at the
    end: journeys idle for the lookback window before the low watermark, the lowest of the
    raw partitions' (the partition of an event is Kafka's murmur2 of its key, the
    customer id or else the anonymous id, as producers key them).
    Memory: one journey per person, each bounded by the journey cap and lookback.
    """

    def __init__(
        self,
        config: Config,
        limits: Limits,
        now_ms: int,
        partitions: int = 8,
        snapshot: Snapshot | None = None,
        reports: ReportLimits | None = None,
    ) -> None:
        self.config, self.limits, self.now_ms, self.partitions = config, limits, now_ms, partitions
        self.snapshot = snapshot
        self.reports = reports or ReportLimits()
        # (partition, day) -> report counter -> amount, as the stream's Redis hashes
        self.counters: dict[tuple[int, str], dict[str, int]] = {}
        self.states: dict[str, PersonState] = {}
        self.rejected: list[Rejected] = []
        # partition -> path text -> [conversions, value_micros, nulls], as the stream's Redis hashes
        self.paths: dict[int, dict[str, list[int]]] = {}
        self.watermarks: dict[int, int] = {}  # raw partition -> highest ts of its events with a person id
        self.position = 0
        self.stored: dict[str, tuple[str, Stored]] = {}  # conversion id -> (person, stored record)
        self.identities: dict[str, str] = {}  # anonymous id -> customer

    def run(self, lines: Iterable[bytes]) -> Iterator[bytes]:
        for number, line in enumerate(lines, start=1):
            raw = line.rstrip(b"\r\n")
            if not raw:
                continue
            event = validate(raw, self.limits, self.now_ms)
            if isinstance(event, Event):
                self._advance(event)
                event = self._route(event)
            if isinstance(event, Conflict):
                self.rejected.append(Rejected(number, "identity_conflict", event.error))
            elif isinstance(event, Rejection):
                self.rejected.append(Rejected(number, event.reason_code, event.error))
            else:
                yield from self._apply(event)

    def finish(self) -> dict[tuple[str, ...], PathCount]:
        """Expire idle journeys as the sweeper would, then return the path counts (all partitions)."""
        watermark = min(self.watermarks.values(), default=0)
        for pid, state in list(self.states.items()):
            last_ts = state.journey.last_ts
            if last_ts and last_ts < expires_before(watermark, self.config.rules):
                self._control("expire", pid, last_ts, watermark)
        totals: dict[str, list[int]] = {}
        for counts in self.paths.values():
            for path, (c, v, n) in counts.items():
                total = totals.setdefault(path, [0, 0, 0])
                total[0], total[1], total[2] = total[0] + c, total[1] + v, total[2] + n
        return {parse_path(p): PathCount(c, v / VALUE_SCALE, n) for p, (c, v, n) in sorted(totals.items())}

    def close_idle_sessions(self, now_ms: int) -> None:
        """What the sweeper's wall-clock `close_idle` events do to every open session."""
        for pid, state in list(self.states.items()):
            if state.journey.session_open:
                self._control("close_idle", pid, state.journey.session_last_ts, now_ms)

    def _control(self, kind: ControlKind, pid: str, last_ts: int, ts: int) -> None:
        list(self._apply(control_event(kind, pid, last_ts, ts)))

    def _count(self, pid: str, event: Event, messages: list[Message]) -> None:
        """The report counters of one event and its messages, as `paths.lua` applies them."""
        for count in counts_of(event, messages, self.config.currency):
            if self.reports.expires_at(count.day) <= self.now_ms:
                continue
            counters = self.counters.setdefault((self.partition(pid), count.day), {})
            name = count.field
            if name not in counters and len(counters) >= self.reports.max_counters:
                name = count.fold
            counters[name] = counters.get(name, 0) + count.amount

    def report_counters(self, days: Iterable[str]) -> dict[str, int]:
        """The report counters of `days`, summed over the days and partitions."""
        wanted, totals = set(days), {}
        for (_partition, day), counters in self.counters.items():
            if day in wanted:
                for name, amount in counters.items():
                    totals[name] = totals.get(name, 0) + amount
        return totals

    def partition(self, person_id: str) -> int:
        return partition_of(person_id.encode(), self.partitions)

    def _advance(self, event: Event) -> None:
        """The watermark of the raw partition the event was published to (its key is its
        person id: the customer id, else the anonymous id)."""
        if event.person_id:
            partition = self.partition(event.person_id)
            self.watermarks[partition] = max(event.ts, self.watermarks.get(partition, 0))

    def _route(self, event: Event) -> Event | Rejection | Conflict:
        """The ingest's routing rule, over this replay's identity map and conversions."""
        claimed_as = None
        if event.type == "identify":
            claimed_as = self.identities.setdefault(event.anonymous_id or "", event.customer_id or "")
        cid = event.conversion_id or ""
        owners = {cid: self.stored[cid][0]} if not event.person_id and cid in self.stored else {}
        return route(event, claimed_as, self.identities, owners)

    def _apply(self, event: Event) -> Iterator[bytes]:
        """The journeys agent's step; events it forwards (identity stitching) follow at once."""
        self.position += 1
        pid = event.person_id
        state = self.states.get(pid, PersonState())
        found = (
            self.stored.get(event.conversion_id or "") if event.type in ("revenue", "conversion") else None
        )
        if found and found[0] == pid:
            state = dataclasses.replace(state, conversions={event.conversion_id or "": found[1]})
        if event.type == "identify":
            anon = event.anonymous_id or ""
            state = dataclasses.replace(state, others={anon: self.states.get(anon, PersonState())})
        item = Positioned(BATCH_TP, self.position, event)
        result = step(pid, state, [item], self.config, self.snapshot)
        if result.lacking:  # revisions: the stream loads the revisions they replace, and steps again
            wanted = {cid: self.stored[cid][1] for cid in result.lacking if cid in self.stored}
            state = dataclasses.replace(state, conversions={**state.conversions, **wanted})
            result = step(pid, state, [item], self.config, self.snapshot)
        self._count(pid, event, [m for messages in result.outbox.values() for m in messages])
        self.states[pid] = dataclasses.replace(result.state, conversions={}, others={})
        self.states |= result.tombstones
        self.stored |= {c.conversion_id: (pid, c.record) for c in result.conversions}
        for messages in result.outbox.values():
            for m in messages:
                if m.topic == PERSONS:
                    yield from self._apply(decode_event(m.value))
                elif m.topic == CONVERSIONS:
                    yield m.value
                elif m.topic == PATHS:
                    path, *increments = read_path_message(m.value)
                    counts = self.paths.setdefault(self.partition(pid), {}).setdefault(path, [0, 0, 0])
                    for i, amount in enumerate(increments):
                        counts[i] += amount
