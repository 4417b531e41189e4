"""One person's batch, applied exactly once: fence, dedup, journey update, outputs.

Pure. The Redis store loads a `PersonState` per person, `step` decides what
each event does, and the store writes the new state back with a
compare-and-set on `Fence.version` (docs/guarantees.md):

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
from itertools import islice

from msgspec.structs import replace

from stream.attribution.snapshot import Snapshot
from stream.core.apply import apply
from stream.core.codec import encode_event
from stream.core.config import Config
from stream.core.control import CONTROL
from stream.core.counters import COUNT_INTERACTION, COUNT_SPEND, withdraw_message
from stream.core.journey import Approximated, Converted, Corrected, Journey, NullPath, Output, TooLate
from stream.core.late import merge
from stream.core.output import (
    Message,
    attribution_doc,
    conversion_messages,
    dlq_message,
    path_message,
    session_message,
)
from stream.core.record_codec import Basis
from stream.core.records import AttributionInput, Event
from stream.core.revenue import Revenue, Stored, revenue_doc
from stream.core.topics import PERSONS


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
    """A person's stored state. `conversions` holds the stored records of the conversion ids
    this batch's conversion and revenue events name, where they exist, loaded on demand."""

    journey: Journey = Journey()
    fence: Fence = Fence()
    conversions: dict[str, Stored] = field(default_factory=dict)
    others: dict[str, PersonState] = field(default_factory=dict)  # anonymous ids this batch identifies


@dataclass(frozen=True, slots=True)
class Positioned:
    """An event with where it came from."""

    tp: str  # "topic:partition"
    offset: int
    event: Event
    encoded: bytes | None = None  # encode_event(event), when the caller has it (the record value)

    @property
    def position(self) -> str:
        """`topic:partition@offset`: names the event's outputs in the outbox (a person's
        events come from two topics: the raw one and the person-keyed one)."""
        return f"{self.tp}@{self.offset}"


def split_position(position: str) -> tuple[str, int]:
    """`topic:partition@offset` -> (`topic:partition`, offset): `Positioned.position` undone."""
    tp, _, offset = position.rpartition("@")
    return tp, int(offset)


@dataclass(frozen=True, slots=True)
class Attributed:
    """A conversion's stored record, written with the state (for late revenue): its
    attribution when this step attributed or revised it, its revenue when revenue came."""

    conversion_id: str
    record: Stored
    attribution_changed: bool
    revenue_changed: bool


@dataclass(frozen=True, slots=True)
class StepResult:
    state: PersonState
    outbox: dict[str, list[Message]]  # position -> what that event emitted
    conversions: list[Attributed]
    replayed: list[str]  # positions applied before: re-emit their outbox entries
    duplicates: int
    changed: bool
    # anonymous persons merged into this one: their tombstoned states, written (compare-and-
    # set on their own version) before this person's state
    tombstones: dict[str, PersonState] = field(default_factory=dict)
    lateness_ms: list[int] = field(default_factory=list)  # of each applied event behind the person's last
    approximated: int = 0  # late interactions older than the re-derive window
    # conversions this step revised without their stored record loaded: the report counters
    # of the revision they replace are unknown, so the caller loads them and steps again
    lacking: list[str] = field(default_factory=list)


def step(
    person_id: str,
    state: PersonState,
    events: Sequence[Positioned],
    config: Config,
    snapshot: Snapshot | None = None,
) -> StepResult:
    """Apply one person's events (in offset order) to its stored state; data-driven
    shares come from `snapshot`."""
    run = _Run(person_id, state, config, snapshot)
    for item in events:
        if run.admit(item):
            messages = run.apply(item)
            if messages:
                run.outbox[item.position] = messages
    return run.result()


@dataclass
class _Run:
    """The working state of one `step`: what the events so far did to the person."""

    person_id: str
    state: PersonState
    config: Config
    snapshot: Snapshot | None
    journey: Journey = field(init=False)
    offsets: dict[str, int] = field(init=False)
    recent: dict[str, str] = field(init=False)  # id_key -> digest, in insertion order
    outbox: dict[str, list[Message]] = field(default_factory=dict)
    stored: dict[str, Stored] = field(
        default_factory=dict
    )  # conversions attributed, revised or given revenue
    revised: set[str] = field(default_factory=set)  # conversion ids whose attribution this step wrote
    paid: set[str] = field(default_factory=set)  # conversion ids whose revenue this step wrote
    tombstones: dict[str, PersonState] = field(default_factory=dict)
    replayed: list[str] = field(default_factory=list)
    duplicates: int = 0
    lateness: list[int] = field(default_factory=list)
    approximated: int = 0
    lacking: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.journey = self.state.journey
        self.offsets = dict(self.state.fence.offsets)
        self.recent = dict(self.state.fence.recent)

    def admit(self, item: Positioned) -> bool:
        """The fence and the dedup: False for an event applied before (replayed: its
        outputs come from the outbox) or published twice (skipped, or the DLQ when its
        content differs from the first one's)."""
        if item.offset <= self.offsets.get(item.tp, -1):
            self.replayed.append(item.position)
            return False
        self.offsets[item.tp] = item.offset
        digest = content_digest(item.event, item.encoded)
        remembered_as = id_key(item.event.event_id)
        known = self.recent.get(remembered_as)
        if known is not None:
            self.duplicates += 1
            if known != digest:
                self.outbox[item.position] = [_conflict(self.person_id, item)]
            return False
        self.recent[remembered_as] = digest
        return True

    def apply(self, item: Positioned) -> list[Message]:
        """What one admitted event does to the journey, and the messages it emits."""
        event, journey = item.event, self.journey
        customer = self.forward_to(event)
        if customer is not None:
            # the customer dedups it; kept here, a later merge of this person into the customer
            # would make the forwarded copy a duplicate there before it arrives
            del self.recent[id_key(event.event_id)]
            return [_forward(event, customer)]
        if journey.merged_into and event.type in CONTROL:
            return []  # a tombstone: its sessions and journey live on in the customer's
        if event.type == "identify":
            return self.identify(item)
        if event.type == "spend":
            return [COUNT_SPEND]  # the cost counters of its channel's pseudo-person
        if event.type == "revenue":
            return self.revenue(item)
        if event.type == "conversion" and self.record(event.conversion_id or "") is not None:
            error = f"conversion_id {event.conversion_id!r} was already attributed for this person"
            return [_dead(self.person_id, item, "duplicate_conversion_id", error)]
        if event.type in ("interaction", "conversion"):
            self.lateness.append(max(0, journey.last_ts - event.ts))
        self.journey, outputs = apply(journey, event, self.config.rules)
        messages = self.messages(item, outputs)
        if event.type == "interaction" and not any(isinstance(o, TooLate) for o in outputs):
            messages.append(COUNT_INTERACTION)  # counted where it joins a journey
        return messages

    def forward_to(self, event: Event) -> str | None:
        """The customer an event is passed on to: a device's event the ingest found identified
        (it names the customer: `stream.runtime.ingest.first_holder`), or one for a person
        already merged (sent before the identity map existed)."""
        if event.type in ("interaction", "conversion", "revenue") and event.person_id != self.person_id:
            return event.person_id
        if self.journey.merged_into and event.type in ("interaction", "conversion", "identify"):
            return self.journey.merged_into
        return None

    def record(self, conversion_id: str) -> Stored | None:
        """The stored conversion as this step left it, or as loaded."""
        return self.stored.get(conversion_id) or self.state.conversions.get(conversion_id)

    def identify(self, item: Positioned) -> list[Message]:
        """Merge the anonymous journey named by an identify into this (the customer's)
        journey, once; the anonymous person is tombstoned (`merged_into`) so its stragglers
        follow. Its recent event ids join this person's, so a copy of one of its events
        forwarded later is known as a duplicate."""
        anon, pid = item.event.anonymous_id or "", self.person_id
        source = self.tombstones.get(anon) or self.state.others.get(anon) or PersonState()
        if anon == pid or source.journey.merged_into not in (None, pid):
            return []  # itself, or already merged into another customer (first wins)
        self.journey, outputs = merge(self.journey, source.journey, anon, self.config.rules)
        self.recent = {**dict(source.fence.recent), **self.recent}
        tombstone = replace(source.journey, merged_into=pid)
        self.tombstones[anon] = dataclasses.replace(source, journey=tombstone, others={}, conversions={})
        return self.messages(item, outputs)

    def revenue(self, item: Positioned) -> list[Message]:
        """A revenue event credited over its stored conversion; the DLQ when there is none."""
        cid = item.event.conversion_id or ""
        record = self.record(cid)
        if record is None:
            error = f"no stored conversion {cid!r} for this person (unknown, or older than the retention)"
            return [_dead(self.person_id, item, "unknown_conversion", error)]
        doc, self.stored[cid] = revenue_doc(item.event, record)
        self.paid.add(cid)
        return conversion_messages(doc, self.config.credit_models)

    def messages(self, item: Positioned, outputs: list[Output]) -> list[Message]:
        """The messages of the journey's outputs for one event."""
        messages: list[Message] = []
        for out in outputs:
            if isinstance(out, TooLate):
                error = f"{out.late_by_ms} ms behind the person's last event, older than the lookback"
                messages.append(_dead(self.person_id, item, "too_late", error))
            elif isinstance(out, Approximated):
                self.approximated += 1
            elif isinstance(out, Corrected):
                messages += self.attributed(
                    out.event, out.attribution_input, out.revision, out.previous_channels
                )
            elif isinstance(out, Converted):
                messages += self.attributed(out.event, out.attribution_input, 0, ())
            elif isinstance(out, NullPath):
                messages.append(path_message(out.channels, 0, 0.0, 1))
            else:
                messages.append(session_message(self.person_id, out))
        return messages

    def attributed(
        self, event: Event, inp: AttributionInput, revision: int, previous: tuple[str, ...]
    ) -> list[Message]:
        """A conversion's attribution (`revision` 0, or its next revision), stored with the
        revenue it already has, and its path count added (or moved from `previous`)."""
        doc = attribution_doc(
            self.person_id,
            Converted(event, inp),
            self.config.params,
            self.config.models,
            self.snapshot,
            revision,
        )
        cid = doc["conversion"]["conversion_id"]
        before = self.record(cid)
        basis = Basis(self.config.params, inp.lead_ts, inp.opportunity_ts)
        self.stored[cid] = Stored(doc, before.revenue if before else Revenue(), basis)
        self.revised.add(cid)
        messages = conversion_messages(doc, self.config.credit_models)
        if revision:
            if before is not None:
                messages.append(withdraw_message(before.attribution))
            elif cid not in self.lacking:
                self.lacking.append(cid)
        channels = tuple(t.channel for t in inp.touches)
        if channels != previous:
            value = event.value or 0.0
            if previous:
                messages.append(path_message(previous, -1, -value, 0))
            if channels:
                messages.append(path_message(channels, 1, value, 0))
        return messages

    def result(self) -> StepResult:
        fence = self.state.fence
        changed = self.offsets != fence.offsets or self.journey != self.state.journey
        extra = len(self.recent) - self.config.recent_ids  # the oldest beyond the limit go
        kept = tuple(islice(self.recent.items(), extra, None) if extra > 0 else self.recent.items())
        new_fence = Fence(fence.version, self.offsets, kept)
        conversions = [
            Attributed(cid, record, cid in self.revised, cid in self.paid)
            for cid, record in self.stored.items()
        ]
        return StepResult(
            PersonState(self.journey, new_fence),
            self.outbox,
            conversions,
            self.replayed,
            self.duplicates,
            changed,
            self.tombstones,
            self.lateness,
            self.approximated,
            self.lacking,
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


def _forward(event: Event, customer: str) -> Message:
    """An event of an anonymous person already merged: re-keyed to the customer."""
    moved = replace(event, person_id=customer)
    return Message(PERSONS, customer.encode(), encode_event(moved))
