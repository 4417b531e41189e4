"""Batch mode (`touchstream attribute`): the stream's own pure code over files.

`attribute_events` replays raw events through the same validation and the
same per-person `step` as the worker (each line is one position of a single
synthetic partition, so event-id dedup behaves as in the stream) and yields
the very `attribution.conversions` values the stream emits.

`read_paths` / `path_totals` handle aggregated path files in the common
format `path,total_conversions,total_conversion_value,total_null`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from stream.attribution import MODELS, markov, shapley
from stream.attribution.paths import PathCount, parse_path
from stream.attribution.snapshot import VALUE_SCALE, Snapshot
from stream.events import Limits, Rejection, decode_event, validate
from stream.journey import EXPIRY_SLACK_MS
from stream.output import CONVERSIONS, PATHS, PERSONS, read_path_message
from stream.person import Config, PersonState, Positioned, step
from stream.records import AttributionInput, Event, ModelParams, Touchpoint
from stream.topics import key_hash

BATCH_TP = "batch:0"
DAY_MS = 24 * 3600 * 1000


class InputError(ValueError):
    """A bad row in a batch input file; the message names the line."""


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
    end: journeys idle for the lookback window before their partition's event-time
    watermark (partition = Kafka's murmur2 of the person id, as the producer picks it).
    Memory: one journey per person, each bounded by the journey cap and lookback.
    """

    def __init__(
        self,
        config: Config,
        limits: Limits,
        now_ms: int,
        partitions: int = 8,
        snapshot: Snapshot | None = None,
    ) -> None:
        self.config, self.limits, self.now_ms, self.partitions = config, limits, now_ms, partitions
        self.snapshot = snapshot
        self.states: dict[str, PersonState] = {}
        self.rejected: list[Rejected] = []
        # partition -> path text -> [conversions, value_micros, nulls], as the stream's Redis hashes
        self.paths: dict[int, dict[str, list[int]]] = {}
        self.watermarks: dict[int, int] = {}
        self.position = 0
        self.stored: dict[str, tuple[str, bytes]] = {}  # conversion id -> (person, stored record)
        self.identities: dict[str, str] = {}  # anonymous id -> customer

    def run(self, lines: Iterable[bytes]) -> Iterator[bytes]:
        for number, line in enumerate(lines, start=1):
            raw = line.rstrip(b"\r\n")
            if not raw:
                continue
            event = validate(raw, self.limits, self.now_ms)
            if isinstance(event, Event):
                event = self._route(event)
            if not isinstance(event, Event):
                self.rejected.append(Rejected(number, event.reason_code, event.error))
                continue
            yield from self._apply(event)

    def finish(self) -> dict[tuple[str, ...], PathCount]:
        """Expire idle journeys as the sweeper would, then return the path counts (all partitions)."""
        for pid, state in list(self.states.items()):
            watermark = self.watermarks.get(self.partition(pid), 0)
            idle = watermark - state.journey.last_ts
            if state.journey.last_ts and idle > self.config.rules.longest + EXPIRY_SLACK_MS:
                self._control("expire", pid, watermark)
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
                self._control("close_idle", pid, now_ms)

    def _control(self, kind: str, pid: str, ts: int) -> None:
        list(self._apply(Event(f"{kind}:{pid}:{ts}", kind, ts, pid)))  # type: ignore[arg-type]

    def partition(self, person_id: str) -> int:
        return key_hash(person_id.encode()) % self.partitions

    def _route(self, event: Event) -> Event | Rejection:
        """The ingest agent's routing: identity map (first mapping wins), revenue by conversion."""
        if event.type == "identify":
            mapped_to = self.identities.setdefault(event.anonymous_id or "", event.customer_id or "")
            if mapped_to != event.customer_id:
                return Rejection("identity_conflict", f"anonymous id already identified as {mapped_to!r}")
            return event
        if event.anonymous_id in self.identities and not event.customer_id:
            return dataclasses.replace(event, person_id=self.identities[event.anonymous_id or ""])
        if not event.person_id:  # revenue naming only its conversion
            owner = self.stored.get(event.conversion_id or "", ("", b""))[0]
            error = f"revenue for unknown conversion {event.conversion_id!r}"
            return (
                dataclasses.replace(event, person_id=owner)
                if owner
                else Rejection("unknown_conversion", error)
            )
        return event

    def _apply(self, event: Event) -> Iterator[bytes]:
        """The journeys agent's step; events it forwards (identity stitching) follow at once."""
        self.position += 1
        pid = event.person_id
        if event.type not in ("close_idle", "expire"):  # the stream's watermark counts the same events
            partition = self.partition(pid)
            self.watermarks[partition] = max(event.ts, self.watermarks.get(partition, 0))
        state = self.states.get(pid, PersonState())
        found = (
            self.stored.get(event.conversion_id or "") if event.type in ("revenue", "conversion") else None
        )
        if found and found[0] == pid:
            state = dataclasses.replace(state, conversions={event.conversion_id or "": found[1]})
        if event.type == "identify":
            anon = event.anonymous_id or ""
            state = dataclasses.replace(state, others={anon: self.states.get(anon, PersonState())})
        result = step(pid, state, [Positioned(BATCH_TP, self.position, event)], self.config, self.snapshot)
        self.states[pid] = dataclasses.replace(result.state, conversions={}, others={})
        self.states |= result.tombstones
        self.stored |= {c.conversion_id: (pid, c.value) for c in result.conversions}
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


# -- aggregated paths ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathRow:
    path: tuple[str, ...]
    conversions: float
    value: float
    nulls: float


def read_paths(text: Iterable[str]) -> Iterator[PathRow]:
    """Rows of a `path,total_conversions,total_conversion_value,total_null` CSV (header optional)."""
    for number, row in enumerate(csv.reader(text), start=1):
        if not row or (number == 1 and row[0].strip().lower() == "path"):
            continue
        if len(row) != 4:
            raise InputError(
                f"line {number}: expected 4 columns (path,conversions,value,null), got {len(row)}"
            )
        path = tuple(part.strip() for part in row[0].split(">"))
        if not all(path):
            raise InputError(f"line {number}: empty channel in path {row[0]!r}")
        try:
            conversions, value, nulls = (float(cell) for cell in row[1:])
        except ValueError:
            raise InputError(f"line {number}: counts must be numbers, got {row[1:]}") from None
        if min(conversions, value, nulls) < 0:
            raise InputError(f"line {number}: counts must not be negative")
        yield PathRow(path, conversions, value, nulls)


def path_input(path: tuple[str, ...]) -> AttributionInput:
    """A path with no timestamps as a conversion's input: touches one day apart, the last
    one a day before the conversion; no lead or opportunity position."""
    n = len(path)
    touches = tuple(Touchpoint(ts=(i - n) * DAY_MS, channel=c, session_id=str(i)) for i, c in enumerate(path))
    return AttributionInput(touches, conversion_ts=0)


Totals = dict[str, dict[str, dict[str, float]]]  # model -> channel -> {"conversions", "value"}


DATA_DRIVEN = ("markov", "shapley")


def path_totals(
    rows: Iterable[PathRow], models: Iterable[str], params: ModelParams, markov_order: int = 1
) -> Totals:
    """Channel totals of every named model in one pass over the rows.

    Heuristic models credit each row as `conversions` conversions of its path;
    `markov` and `shapley` learn from every row (converting and null) and use
    the global normalisation of DESIGN.md §7.
    """
    names = tuple(models)
    stats: dict[tuple[str, ...], PathCount] = {}

    def collect(row: PathRow) -> PathRow:
        count = PathCount(row.conversions, row.value, row.nulls)
        stats[row.path] = stats[row.path] + count if row.path in stats else count
        return row

    wanted = any(name in DATA_DRIVEN for name in names)
    totals = heuristic_totals((collect(r) for r in rows) if wanted else rows, names, params)
    if "markov" in names:
        totals["markov"] = markov.channel_totals(stats, markov.removal_effects(stats, markov_order))
    if "shapley" in names:
        totals["shapley"] = shapley.channel_totals(stats, shapley.shapley_values(stats))
    return {name: totals[name] for name in names if name in totals}


def heuristic_totals(rows: Iterable[PathRow], models: Iterable[str], params: ModelParams) -> Totals:
    """Heuristic channel totals: each row is `conversions` conversions of its path."""
    names = [m for m in models if m in MODELS]
    totals: Totals = {name: {} for name in names}
    for row in rows:
        if row.conversions == 0 and row.value == 0:
            continue
        inp = path_input(row.path)
        for name in names:
            channels = totals[name]
            for touch, share in zip(inp.touches, MODELS[name](inp, params), strict=True):
                cell = channels.setdefault(touch.channel, {"conversions": 0.0, "value": 0.0})
                cell["conversions"] += share * row.conversions
                cell["value"] += share * row.value
    return totals


def format_table(totals: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """Channel totals as a plain-text table, one block per model."""
    out = io.StringIO()
    for model, channels in totals.items():
        out.write(f"{model}\n")
        for channel, cell in sorted(channels.items(), key=lambda kv: -kv[1]["conversions"]):
            out.write(f"  {channel:<20} {cell['conversions']:>14.4f} {cell['value']:>16.2f}\n")
    return out.getvalue()
