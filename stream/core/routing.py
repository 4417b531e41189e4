"""Where an event goes: the one identity and revenue routing rule.

Pure. The stream's ingest and the batch mode both call `route`, so "streaming equals
batch" rests on one rule:

- an `identify` claims its anonymous id for its customer; the first mapping wins, and an
  identify whose anonymous id is claimed by another customer is a `Conflict` (not
  applied; the stream publishes it to `touchpoints.identity_conflicts`);
- an event that carries only an anonymous id goes to the customer that id was
  identified as, when it was;
- a revenue event with no person id goes to the person of its conversion, or is
  rejected as `unknown_conversion`.

What the rule needs to know — the claims' outcomes, the identified anonymous ids and
the conversions' persons — the caller looks up first (`needs`; one Redis round trip per
batch in the stream, dictionaries in the batch mode).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from msgspec.structs import replace

from stream.core.records import Event
from stream.core.validation import Rejection


@dataclass(frozen=True, slots=True)
class Conflict:
    """An identify for an anonymous id already mapped to another customer."""

    event: Event
    mapped_to: str

    @property
    def error(self) -> str:
        return f"anonymous id already identified as {self.mapped_to!r}"


@dataclass(frozen=True, slots=True)
class Needs:
    """The lookups that routing a batch of events needs, in the order they are asked."""

    claims: list[tuple[str, str]]  # (anonymous id, customer) of each identify, in event order
    anonymous_ids: list[str]  # anonymous ids of events with no customer id
    conversion_ids: list[str]  # conversions named by revenue events with no person id


def needs(events: Iterable[Event]) -> Needs:
    events = list(events)
    return Needs(
        [(e.anonymous_id or "", e.customer_id or "") for e in events if e.type == "identify"],
        sorted({e.anonymous_id for e in events if e.anonymous_id and not e.customer_id}),
        sorted({e.conversion_id or "" for e in events if not e.person_id}),
    )


def route(
    event: Event, claimed_as: str | None, identified: Mapping[str, str], owners: Mapping[str, str]
) -> Event | Rejection | Conflict:
    """The event as its canonical person will apply it, or why it is not applied.

    `claimed_as`: for an identify, the customer its anonymous id is mapped to after its
    claim (its own customer, unless another one was first); `identified`: anonymous id ->
    customer; `owners`: conversion id -> the person it was attributed to."""
    if event.type == "identify":
        return event if claimed_as == event.customer_id else Conflict(event, claimed_as or "")
    if event.anonymous_id in identified and not event.customer_id:
        return replace(event, person_id=identified[event.anonymous_id])
    if not event.person_id:
        owner = owners.get(event.conversion_id or "")
        if owner:
            return replace(event, person_id=owner)
        error = f"revenue for unknown conversion {event.conversion_id!r} (never seen, or past retention)"
        return Rejection("unknown_conversion", error)
    return event
