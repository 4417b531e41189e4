"""One person's batch, applied exactly once: fence, dedup, journey update, outputs.

Pure. The Redis store loads a `PersonState` per person, `step` decides what
each event does, and the store writes the new state back with a
compare-and-set on `Fence.version`. DESIGN.md §6:

- an event at or below the person's fence offset for its `topic:partition`
  was applied before: it is *replayed* — its outputs are re-emitted from the
  outbox the earlier write stored, never recomputed;
- an event whose `event_id` is among the person's recent ids is a duplicate
  published twice: skipped — and if its content differs from the first one's
  (compared by digest), it goes to the DLQ as `duplicate_event_id`;
- anything else is applied with `journey.apply` and its outputs built.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from stream import journey as journeys
from stream.attribution import DATA_DRIVEN_MODELS, DEFAULT_MODELS, MODELS, UnknownModelError
from stream.attribution.snapshot import Snapshot
from stream.events import encode_event
from stream.journey import Converted, Corrected, Journey, NullPath, Output, Rules, TooLate
from stream.output import (
    PERSONS,
    Message,
    attribution_doc,
    conversion_messages,
    dlq_message,
    path_message,
    session_message,
)
from stream.records import Event, ModelParams
from stream.revenue import Stored, revenue_doc
from stream.settings import Settings


@dataclass(frozen=True, slots=True)
class Fence:
    """Per-person write version, last applied offset per `topic:partition`, and the recent
    event ids (as `id_key`s) with a digest of each event's content."""

    version: int = 0
    offsets: dict[str, int] = field(default_factory=dict)
    recent: tuple[tuple[str, str], ...] = ()  # (id_key(event_id), content digest), oldest first

    @property
    def recent_keys(self) -> tuple[str, ...]:
        return tuple(key for key, _digest in self.recent)


@dataclass(frozen=True, slots=True)
class PersonState:
    """A person's stored state. `conversions` holds the stored records (`revenue.Stored`
    bytes) of the conversion ids this batch's conversion and revenue events name, where
    they exist, loaded on demand."""

    journey: Journey = Journey()
    fence: Fence = Fence()
    conversions: dict[str, bytes] = field(default_factory=dict)
    others: dict[str, PersonState] = field(default_factory=dict)  # anonymous ids this batch identifies


@dataclass(frozen=True, slots=True)
class Positioned:
    """An event with where it came from."""

    tp: str  # "topic:partition"
    offset: int
    event: Event
    encoded: bytes | None = None  # encode_event(event), when the caller has it (the record value)


@dataclass(frozen=True, slots=True)
class Attributed:
    """A conversion's stored record (`revenue.Stored`), written with the state, for late revenue."""

    conversion_id: str
    value: bytes


@dataclass(frozen=True, slots=True)
class StepResult:
    state: PersonState
    outbox: dict[int, list[Message]]  # offset -> what that event emitted
    conversions: list[Attributed]
    replayed: list[int]  # offsets applied before: re-emit their outbox entries
    duplicates: int
    changed: bool
    # anonymous persons merged into this one: their tombstoned states, written (compare-and-
    # set on their own version) before this person's state
    tombstones: dict[str, PersonState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Config:
    """The pure core's configuration; the worker and `touchstream attribute` share it."""

    rules: Rules = Rules()
    params: ModelParams = ModelParams()
    models: tuple[str, ...] = ()
    recent_ids: int = 256
    data_driven: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Config:
        """Per-conversion (heuristic) models of `settings.models`; the data-driven ones are
        computed from path counts elsewhere. Raises UnknownModelError for an unknown name."""
        models = settings.models or (*DEFAULT_MODELS, *DATA_DRIVEN_MODELS)
        for name in models:
            if name not in MODELS and name not in DATA_DRIVEN_MODELS:
                raise UnknownModelError(name)
        rules = Rules(
            settings.session_timeout_ms,
            settings.lookback_ms,
            settings.journey_cap,
            settings.lookback_by_type,
            settings.grace_ms,
        )
        per_conversion = tuple(name for name in models if name in MODELS)
        data_driven = tuple(name for name in models if name in DATA_DRIVEN_MODELS)
        return cls(rules, settings.model_params, per_conversion, settings.recent_ids, data_driven)


def step(
    person_id: str,
    state: PersonState,
    events: Sequence[Positioned],
    config: Config,
    snapshot: Snapshot | None = None,
) -> StepResult:
    """Apply one person's events (in offset order) to its stored state; data-driven
    shares come from `snapshot`."""
    journey, fence = state.journey, state.fence
    offsets = dict(fence.offsets)
    recent = dict(fence.recent)  # id_key -> digest, in insertion order
    outbox: dict[int, list[Message]] = {}
    stored: dict[str, Stored] = {}  # conversions attributed or given revenue in this step
    tombstones: dict[str, PersonState] = {}
    replayed: list[int] = []
    duplicates = 0
    for item in events:
        if item.offset <= offsets.get(item.tp, -1):
            replayed.append(item.offset)
            continue
        offsets[item.tp] = item.offset
        digest = content_digest(item.event, item.encoded)
        remembered_as = id_key(item.event.event_id)
        known = recent.get(remembered_as)
        if known is not None:
            duplicates += 1
            if known != digest:
                outbox[item.offset] = [_conflict(person_id, item)]
            continue
        recent[remembered_as] = digest
        if journey.merged_into and item.event.type in ("interaction", "conversion", "identify"):
            messages = [_forward(item.event, journey.merged_into)]  # sent before the map existed
        elif item.event.type == "identify":
            journey, messages = _identify(person_id, item, journey, state, config, snapshot, tombstones)
        elif item.event.type == "revenue":
            messages = _revenue(person_id, item, state, stored)
        elif item.event.type == "conversion" and _known(item.event.conversion_id, state, stored):
            error = f"conversion_id {item.event.conversion_id!r} was already attributed for this person"
            messages = [_dead(person_id, item, "duplicate_conversion_id", error)]
        else:
            journey, outputs = journeys.apply(journey, item.event, config.rules)
            messages = _messages(person_id, item, outputs, config, snapshot, state, stored)
        if messages:
            outbox[item.offset] = messages
    changed = offsets != fence.offsets or journey != state.journey
    kept = list(recent.items())
    new_fence = Fence(fence.version, offsets, tuple(kept[max(0, len(kept) - config.recent_ids) :]))
    conversions = [Attributed(cid, record.dumps()) for cid, record in stored.items()]
    return StepResult(
        PersonState(journey, new_fence), outbox, conversions, replayed, duplicates, changed, tombstones
    )


ID_KEY_HEX, DIGEST_HEX = 12, 8  # lengths of an id_key and a content_digest


def id_key(event_id: str) -> str:
    """How a fence remembers an event id: 48 bits of its BLAKE2b as 12 hex digits, so that
    remembering 256 ids costs a few kilobytes less per person in Redis than the ids would.
    Two distinct ids among one person's recent ones collide with odds ~n²/2⁴⁹."""
    return hashlib.blake2b(event_id.encode(), digest_size=6).hexdigest()


def content_digest(event: Event, encoded: bytes | None = None) -> str:
    """32 bits of BLAKE2b over an event's normalised content: tells a redelivery (same
    digest) from a conflicting reuse of its id; `encoded`: `encode_event(event)`, when known."""
    return hashlib.blake2b(encoded or encode_event(event), digest_size=4).hexdigest()


def _conflict(person_id: str, item: Positioned) -> Message:
    error = f"event_id {item.event.event_id!r} was already seen for this person with different content"
    return _dead(person_id, item, "duplicate_event_id", error)


def _dead(person_id: str, item: Positioned, reason: str, error: str) -> Message:
    topic, _, partition = item.tp.rpartition(":")
    raw = encode_event(item.event)
    return dlq_message(person_id.encode(), raw, reason, error, topic, int(partition), item.offset)


def _correction(
    person_id: str,
    out: Corrected,
    config: Config,
    snapshot: Snapshot | None,
    state: PersonState,
    stored: dict[str, Stored],
) -> list[Message]:
    """The conversion again as `revision`, its stored record updated (revenue kept when it
    is at hand), and its path count moved from the old channels to the new ones."""
    converted = Converted(out.event, out.attribution_input)
    doc = attribution_doc(
        person_id, converted, config.params, config.models, config.data_driven, snapshot, out.revision
    )
    cid = doc["conversion"]["conversion_id"]
    before = stored.get(cid) or (Stored.loads(state.conversions[cid]) if cid in state.conversions else None)
    stored[cid] = Stored(doc, before.revenue_total, before.revenue_events) if before else Stored(doc)
    messages = conversion_messages(doc)
    channels = tuple(t.channel for t in out.attribution_input.touches)
    if channels != out.previous_channels:
        value = out.event.value or 0.0
        if out.previous_channels:
            messages.append(path_message(out.previous_channels, -1, -value, 0))
        if channels:
            messages.append(path_message(channels, 1, value, 0))
    return messages


def _forward(event: Event, customer: str) -> Message:
    """An event of an anonymous person already merged: re-keyed to the customer."""
    moved = dataclasses.replace(event, person_id=customer)
    return Message(PERSONS, customer.encode(), encode_event(moved))


def _identify(
    person_id: str,
    item: Positioned,
    journey: Journey,
    state: PersonState,
    config: Config,
    snapshot: Snapshot | None,
    tombstones: dict[str, PersonState],
) -> tuple[Journey, list[Message]]:
    """Merge the anonymous journey named by an identify into this (the customer's) journey,
    once; the anonymous person is tombstoned (`merged_into`) so its stragglers follow."""
    anon = item.event.anonymous_id or ""
    source = tombstones.get(anon) or state.others.get(anon) or PersonState()
    if anon == person_id or source.journey.merged_into not in (None, person_id):
        return journey, []  # itself, or already merged into another customer (first wins)
    journey, outputs = journeys.merge(journey, source.journey, anon, config.rules)
    tombstones[anon] = dataclasses.replace(
        source, journey=dataclasses.replace(source.journey, merged_into=person_id), others={}, conversions={}
    )
    return journey, _messages(person_id, item, outputs, config, snapshot, state, {})


def _known(conversion_id: str | None, state: PersonState, stored: dict[str, Stored]) -> bool:
    return (conversion_id or "") in stored or (conversion_id or "") in state.conversions


def _revenue(
    person_id: str, item: Positioned, state: PersonState, stored: dict[str, Stored]
) -> list[Message]:
    """A revenue event credited over its stored conversion; the DLQ when there is none."""
    cid = item.event.conversion_id or ""
    record = stored.get(cid) or (Stored.loads(state.conversions[cid]) if cid in state.conversions else None)
    if record is None:
        error = f"no stored conversion {cid!r} for this person (unknown, or older than the retention)"
        return [_dead(person_id, item, "unknown_conversion", error)]
    doc, stored[cid] = revenue_doc(item.event, record)
    return conversion_messages(doc)


def _messages(
    person_id: str,
    item: Positioned,
    outputs: list[Output],
    config: Config,
    snapshot: Snapshot | None,
    state: PersonState,
    stored: dict[str, Stored],
) -> list[Message]:
    messages: list[Message] = []
    for out in outputs:
        if isinstance(out, TooLate):
            error = f"{out.late_by_ms} ms behind the person's last event; the grace period is smaller"
            messages.append(_dead(person_id, item, "too_late", error))
        elif isinstance(out, Corrected):
            messages += _correction(person_id, out, config, snapshot, state, stored)
        elif isinstance(out, Converted):
            doc = attribution_doc(person_id, out, config.params, config.models, config.data_driven, snapshot)
            messages += conversion_messages(doc)
            stored[doc["conversion"]["conversion_id"]] = Stored(doc)
            channels = [t.channel for t in out.attribution_input.touches]
            if channels:
                messages.append(path_message(channels, 1, out.event.value or 0.0, 0))
        elif isinstance(out, NullPath):
            messages.append(path_message(out.channels, 0, 0.0, 1))
        else:
            messages.append(session_message(person_id, out))
    return messages
