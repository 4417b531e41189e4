"""Report counters: what each applied event adds to the live marketing reports (pure).

The reports (`touchstream report`, `stream.core.report`) are sums of integer counters,
kept per Kafka partition and UTC day in Redis and applied under the partition's offset
fence with the path counts, so a replay never counts twice (docs/reports.md). This module
says what one event's outputs add, as `Count`s:

- an attribution (`attribution.conversions` value of kind `conversion`), on the day of the
  conversion, in its currency: for every model and every distinct *touch profile* (the
  touchpoint's values of all six dimensions) its touchpoints' shares `s` add up to, `c|…`
  += s and `v|…` += s × value (an unattributed conversion: 1 and the value under
  `(unattributed)`); per conversion type the count, value, credited touchpoints and days
  to conversion; its path's conversions and value; one event of its currency. A revision
  withdraws what the previous revision added (the same counters, negated: a `withdraw`
  report message carries that revision) and adds its own;
- a revenue value (kind `revenue`), on the revenue event's day, in its currency: `r|…` +=
  s × revenue with the shares of the conversion it names, and one event of its currency;
- an interaction applied to a journey (a `COUNT_INTERACTION` marker): its cost (`k|…`, in the
  reporting currency) and one interaction of its kind, under its profile;
- a spend event (a `COUNT_SPEND` marker): its amount, in its currency, under its profile
  (channel, campaign and term; the other dimensions `(none)`).

Counters are integers: money, shares and days in millionths (`SCALE`), so sums are exact
and independent of order. Keeping one counter per profile rather than per dimension value
keeps a conversion's counters as few as its distinct touchpoints (a report sums the
profiles' counters by the dimension it is asked for). Every field ends with the one
free-text part it has (the profile, as a JSON array, the conversion type or the path) and
names its other parts first, so it splits unambiguously; `fold` is the field with that
part replaced by `(other)` (the profile `OTHER_PROFILE`), where Redis counts once a
partition's day holds the maximum number of counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from stream.core.output import Message, dumps
from stream.core.records import Event
from stream.core.topics import CONVERSIONS, REPORT

DIMENSIONS = ("channel", "campaign", "term", "medium_kind", "directness", "stage")
NONE, OTHER, UNATTRIBUTED = "(none)", "(other)", "(unattributed)"
SCALE = 1_000_000
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Count:
    day: str  # UTC calendar day, YYYY-MM-DD
    field: str
    fold: str  # the field with its free-text part folded into (other)
    amount: int


def day_of(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%d")


def tag(text: str) -> str:
    """A fixed part of a field (currency, interaction kind): no separator inside."""
    return text.replace("|", "/")


def _count(day: str, prefix: str, free: str, amount: int, other: str = OTHER) -> Count:
    """A counter `<prefix>|<free>`, folding into `<prefix>|<other>` past the cap."""
    return Count(day, f"{prefix}|{free}", f"{prefix}|{other}", amount)


def _micros(x: float) -> int:
    return round(x * SCALE)


# internal, never produced: "count the event at this position", which the caller holds
COUNT_INTERACTION = Message(REPORT, None, b"interaction")
COUNT_SPEND = Message(REPORT, None, b"spend")


def withdraw_message(previous: dict[str, Any]) -> Message:
    """A revision replaces `previous` (the attribution value it revises): its counters go."""
    return Message(REPORT, None, dumps({"withdraw": previous}))


def counts_of(event: Event, messages: Iterable[Message], currency: str) -> list[Count]:
    """The counters that `event` and the messages it emitted add; `currency`: that of
    values that name none."""
    counts: list[Count] = []
    for msg in messages:
        if msg.topic == CONVERSIONS:
            doc = msg.doc if msg.doc is not None else orjson.loads(msg.value)
            if doc["kind"] == "revenue":
                counts += revenue_counts(doc, currency)
            else:
                counts += attribution_counts(doc, currency)
        elif msg.topic != REPORT:
            continue
        elif msg.value == COUNT_INTERACTION.value:
            counts += interaction_counts(event)
        elif msg.value == COUNT_SPEND.value:
            counts += spend_counts(event, currency)
        else:
            withdrawn = attribution_counts(orjson.loads(msg.value)["withdraw"], currency)
            counts += [Count(c.day, c.field, c.fold, -c.amount) for c in withdrawn]
    return counts


def profile(fields: dict[str, Any]) -> str:
    """A touchpoint's (or interaction's, or spend's) values of the six dimensions, as the
    JSON array a counter names (null for a missing one)."""
    return _profile(fields.get(dim) for dim in DIMENSIONS)


def _profile(values: Iterable[str | None]) -> str:
    return orjson.dumps(list(values)).decode()


UNATTRIBUTED_PROFILE = orjson.dumps([UNATTRIBUTED] * len(DIMENSIONS)).decode()
OTHER_PROFILE = orjson.dumps([OTHER] * len(DIMENSIONS)).decode()


def _profiled(day: str, prefix: str, group: str, amount: int) -> Count:
    return _count(day, prefix, group, amount, OTHER_PROFILE)


def _groups(profiles: Sequence[str], shares: Sequence[float]) -> dict[str, float]:
    """Touch profile -> the summed share of the touchpoints with that profile (the
    touchpoints' `profiles`; none: an unattributed conversion)."""
    if not profiles:
        return {UNATTRIBUTED_PROFILE: 1.0}
    sums: dict[str, float] = {}
    for key, share in zip(profiles, shares, strict=True):
        sums[key] = sums.get(key, 0.0) + share
    return sums


def attribution_counts(doc: dict[str, Any], currency: str) -> list[Count]:
    """The counters an attribution value (kind `conversion`) adds."""
    conversion = doc["conversion"]
    day, cur = day_of(conversion["ts"]), tag(conversion["currency"] or currency)
    value = conversion["value"] or 0.0
    counts = [Count(day, f"x|{cur}", f"x|{cur}", 1)]
    profiles = [profile(t) for t in doc["touchpoints"]]
    for model, credit in doc["models"].items():
        for group, share in _groups(profiles, credit["shares"]).items():
            counts.append(_profiled(day, f"c|{cur}|{model}", group, _micros(share)))
            counts.append(_profiled(day, f"v|{cur}|{model}", group, _micros(share * value)))
    touches = doc["touchpoints"]
    kind = conversion["conversion"]
    counts += [
        _count(day, f"tn|{cur}", kind, 1),
        _count(day, f"tv|{cur}", kind, _micros(value)),
        _count(day, f"tp|{cur}", kind, len(touches)),
    ]
    if touches:
        days = (conversion["ts"] - touches[0]["ts"]) / DAY_MS
        counts += [_count(day, f"ta|{cur}", kind, 1), _count(day, f"td|{cur}", kind, _micros(days))]
    path = " > ".join(t["channel"] for t in touches) if touches else UNATTRIBUTED
    counts += [_count(day, f"pn|{cur}", path, 1), _count(day, f"pv|{cur}", path, _micros(value))]
    return counts


def revenue_counts(doc: dict[str, Any], currency: str) -> list[Count]:
    """The counters a revenue value adds: its amount, by the shares it was credited with."""
    revenue = doc["revenue"]
    day, cur = day_of(revenue["ts"]), tag(revenue["currency"] or currency)
    counts = [Count(day, f"x|{cur}", f"x|{cur}", 1)]
    profiles = [profile(t) for t in doc["touchpoints"]]
    for model, credit in doc["models"].items():
        for group, share in _groups(profiles, credit["shares"]).items():
            counts.append(_profiled(day, f"r|{cur}|{model}", group, _micros(share * revenue["value"])))
    return counts


def interaction_counts(event: Event) -> list[Count]:
    day, kind, group = day_of(event.ts), tag(event.interaction or NONE), _event_profile(event)
    counts = [_profiled(day, f"i|{kind}", group, 1)]
    if event.cost:
        counts.append(_profiled(day, "k", group, _micros(event.cost)))
    return counts


def spend_counts(event: Event, currency: str) -> list[Count]:
    day, cur = day_of(event.ts), tag(event.currency or currency)
    return [
        Count(day, f"x|{cur}", f"x|{cur}", 1),
        _profiled(day, f"s|{cur}", _event_profile(event), _micros(event.value)),
    ]


def _event_profile(event: Event) -> str:
    return _profile(getattr(event, dim) for dim in DIMENSIONS)
