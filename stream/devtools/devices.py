"""Journeys that start anonymous and continue logged in: the multi-device scenario.

Pure and seeded. Per person: bursts of 1–3 interactions (1–24 min apart within a burst,
31 min to 6 days between bursts, so each burst is one session); about 70 % of the
bursts before the identify and 25 % after it come from the anonymous device
(`anonymous_id` only), the rest carry `customer_id`; four persons in five identify
(31–90 min after a burst); conversions (by `customer_id`) only after the identify.

`publication_order` is how producers publish them: each key's events in time order,
keys interleaved in time order, with a few events of one key under 9 minutes apart
swapped. Split it by key (`by_device`) to publish one device's events later (a lagging
producer).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

from stream.core.config import DAY_MS, MINUTE_MS
from stream.devtools.simulate import CHANNELS, NAMES, WEIGHTS

Event = dict[str, Any]


def persons(count: int, seed: int, start_ms: int) -> list[Event]:
    """Every person's events, sorted by event time."""
    rng = random.Random(seed)
    events = [e for n in range(count) for e in _person(rng, n, start_ms + rng.randint(0, 30 * DAY_MS))]
    return sorted(events, key=lambda e: (e["ts"], e["event_id"]))


def _person(rng: random.Random, n: int, ts: int) -> Iterator[Event]:
    anon, customer = f"anon-{n}", f"cust-{n}"
    bursts = rng.randint(3, 8)
    identify_after = rng.randint(0, bursts - 2) if rng.random() < 0.8 else None
    known = False
    conversions = 0
    for burst in range(bursts):
        device = anon if rng.random() < (0.25 if known else 0.7) else None
        for _ in range(rng.randint(1, 3)):
            yield _interaction(rng, ts, anon if device else None, None if device else customer)
            ts += rng.randint(MINUTE_MS, 24 * MINUTE_MS)
        if burst == identify_after:
            ts += rng.randint(31 * MINUTE_MS, 90 * MINUTE_MS)
            yield {
                "event_id": _id(rng),
                "type": "identify",
                "ts": ts,
                "anonymous_id": anon,
                "customer_id": customer,
            }
            known = True
        elif known and rng.random() < 0.75:
            ts += rng.randint(MINUTE_MS, 30 * MINUTE_MS)
            kind = "lead" if conversions == 0 else "purchase"
            yield _conversion(
                rng, ts, customer, kind, 0.0 if kind == "lead" else float(rng.randint(50, 5000))
            )
            conversions += 1
        ts += rng.randint(31 * MINUTE_MS, 6 * DAY_MS)


def _id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))


def _interaction(rng: random.Random, ts: int, anon: str | None, customer: str | None) -> Event:
    channel = rng.choices(NAMES, WEIGHTS)[0]
    _w, source, medium, kind, directness, verbs, cost = CHANNELS[channel]
    event: Event = {
        "event_id": _id(rng),
        "type": "interaction",
        "ts": ts,
        "interaction": rng.choice(verbs),
        "channel": channel,
        "source": source,
        "medium": medium,
        "campaign": rng.choice(("brand", "spring-sale", "retargeting")) if cost else None,
        "medium_kind": kind,
        "directness": directness,
        "cost": cost,
    }
    if anon:
        event["anonymous_id"] = anon
    if customer:
        event["customer_id"] = customer
    return event


def _conversion(rng: random.Random, ts: int, customer: str, kind: str, value: float) -> Event:
    event_id = _id(rng)
    return {
        "event_id": event_id,
        "type": "conversion",
        "ts": ts,
        "customer_id": customer,
        "conversion": kind,
        "conversion_id": f"{kind}-{event_id[:8]}",
        "value": value,
        "currency": "EUR",
    }


def key(event: Event) -> str:
    """The raw-topic key: customer_id, else anonymous_id."""
    return event.get("customer_id") or event["anonymous_id"]


def publication_order(events: list[Event], seed: int, swaps: float = 0.05) -> list[Event]:
    """Time order with a few events of one key under 9 minutes apart swapped."""
    rng = random.Random(seed)
    out = list(events)
    last: dict[str, int] = {}  # key -> index of its previous event in `out`
    for i, event in enumerate(list(out)):
        k = key(event)
        j = last.get(k)
        if j is not None and out[i]["ts"] - out[j]["ts"] < 9 * MINUTE_MS and rng.random() < swaps:
            out[i], out[j] = out[j], out[i]
        last[k] = i
    return out


def by_device(events: list[Event]) -> tuple[list[Event], list[Event]]:
    """(events keyed by a customer id, events keyed by an anonymous id), each in the given order."""
    known = [e for e in events if e.get("customer_id")]
    anonymous = [e for e in events if not e.get("customer_id")]
    return known, anonymous
