"""Synthetic but realistic journeys over the channel taxonomy of docs/architecture.md.

Pure and seeded: `generate(customers, seed, end_ms)` yields raw event dicts
in global event-time order. Each customer crosses several touchpoints (with
repeated clicks inside a session), some reach a lead, some leads later
purchase; most journeys never convert.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS

# channel -> (weight, source, medium, medium_kind, directness, interactions, cost per interaction)
CHANNELS: dict[str, tuple[float, str, str, str, str, tuple[str, ...], float]] = {
    "paid_search": (20, "google", "cpc", "digital", "direct", ("click",), 1.2),
    "organic_search": (15, "google", "organic", "digital", "direct", ("visit",), 0.0),
    "paid_social": (12, "meta", "paid_social", "digital", "direct", ("click", "impression"), 0.6),
    "organic_social": (6, "linkedin", "social", "digital", "indirect", ("visit",), 0.0),
    "email": (12, "newsletter", "email", "digital", "direct", ("open", "click"), 0.02),
    "display": (8, "dv360", "display", "digital", "direct", ("impression", "click"), 0.3),
    "video": (4, "youtube", "video", "digital", "direct", ("view",), 0.4),
    "affiliate": (3, "partner-network", "affiliate", "digital", "indirect", ("click",), 2.0),
    "referral": (4, "review-site", "referral", "digital", "indirect", ("visit",), 0.0),
    "direct": (10, "direct", "none", "digital", "direct", ("visit",), 0.0),
    "ai_answer": (3, "assistant", "ai_citation", "virtual", "indirect", ("citation",), 0.0),
    "call_center": (1.5, "support", "phone", "physical", "direct", ("call",), 4.0),
    "in_store": (1.5, "store-paris", "store", "physical", "direct", ("visit",), 0.0),
}
CAMPAIGNS = ("brand", "spring-sale", "retargeting", "webinar", "launch")
# the keyword a paid search campaign bids on, the creative a display / social campaign shows
KEYWORDS = {
    "brand": "touchstream",
    "spring-sale": "attribution sale",
    "retargeting": "attribution tool",
    "webinar": "attribution webinar",
    "launch": "real-time attribution",
}
CREATIVE_CHANNELS = ("display", "paid_social", "video")
NAMES = tuple(CHANNELS)
WEIGHTS = tuple(c[0] for c in CHANNELS.values())


@dataclass(frozen=True, slots=True)
class Mix:
    lead_rate: float = 0.3  # share of customers who become a lead
    purchase_rate: float = 0.4  # share of leads who later purchase
    touches: tuple[int, int] = (2, 10)


def customer_events(rng: random.Random, n: int, start_ms: int, mix: Mix) -> list[dict[str, Any]]:
    """One customer's raw events, in time order."""
    anon, customer = f"a-{n}", f"c-{n}"
    ts = start_ms
    events: list[dict[str, Any]] = []
    for _ in range(rng.randint(*mix.touches)):
        channel = rng.choices(NAMES, WEIGHTS)[0]
        _w, source, medium, kind, directness, verbs, cost = CHANNELS[channel]
        campaign = rng.choice(CAMPAIGNS) if cost else None
        for _click in range(1 + int(rng.random() < 0.3) * rng.randint(1, 3)):
            events.append(
                {
                    "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "type": "interaction",
                    "ts": ts,
                    "anonymous_id": anon,
                    "customer_id": customer,
                    "interaction": rng.choice(verbs),
                    "channel": channel,
                    "source": source,
                    "medium": medium,
                    "campaign": campaign,
                    "term": KEYWORDS[campaign] if campaign and channel == "paid_search" else None,
                    "content": f"{campaign}-banner" if campaign and channel in CREATIVE_CHANNELS else None,
                    "medium_kind": kind,
                    "directness": directness,
                    "stage": "pre_purchase",
                    "context": {"page": rng.choice(("/", "/pricing", "/blog", "/product", "/demo"))},
                    "cost": cost,
                }
            )
            ts += rng.randint(10_000, 5 * 60_000)
        ts += rng.randint(HOUR_MS, 4 * DAY_MS)
    if rng.random() < mix.lead_rate:
        events.append(_conversion(rng, customer, ts, "lead", 0.0))
        if rng.random() < mix.purchase_rate:
            ts += rng.randint(DAY_MS, 20 * DAY_MS)
            events.append(_conversion(rng, customer, ts, "purchase", float(rng.randint(50, 5000))))
    return events


def _conversion(rng: random.Random, customer: str, ts: int, kind: str, value: float) -> dict[str, Any]:
    event_id = str(uuid.UUID(int=rng.getrandbits(128)))
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


def generate(
    customers: int,
    seed: int,
    end_ms: int,
    span_ms: int = 120 * DAY_MS,
    mix: Mix | None = None,
    first_id: int = 0,
) -> Iterator[dict[str, Any]]:
    """Every customer's events merged in global event-time order, none after `end_ms`;
    customers are numbered from `first_id`. Journeys start over the first half of the span,
    so the older ones are idle past a 90-day lookback by the end: null paths."""
    rng = random.Random(seed)
    mix = mix or Mix()
    streams = []
    for n in range(first_id, first_id + customers):
        start = end_ms - span_ms + rng.randint(0, span_ms // 2)
        events = [e for e in customer_events(rng, n, start, mix) if e["ts"] <= end_ms]
        streams.append(iter(events))
    yield from heapq.merge(*streams, key=lambda e: e["ts"])


def endless(customers: int, seed: int, span_ms: int = 30 * DAY_MS) -> Iterator[dict[str, Any]]:
    """Round after round of `customers` new customers, each round's journeys over the `span_ms`
    before the wall-clock time (30 days: the dashboard's longest period shows all of them)."""
    for round_ in itertools.count():
        now_ms = int(time.time() * 1000)
        yield from generate(customers, seed + round_, now_ms, span_ms, first_id=round_ * customers)
