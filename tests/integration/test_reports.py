"""Live reports equal the batch oracle: `touchstream report` over the worker's Redis
counters prints what `touchstream report --events` computes offline from the same raw
events, for every heuristic model, whatever the batch size.

The scripted stream has costs and keywords (the simulator's), ad spend in two currencies
(one of them sent twice), late revenue (one with no person id), a conversion in another
currency, a late interaction that revises an emitted conversion, an identify merging an
anonymous device, and hostile input that must go to the DLQ and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from stream.attribution import MODELS
from stream.core.config import DAY_MS
from stream.core.topics import DLQ, RAW
from stream.devtools.simulate import generate
from tests.support.cli import touchstream
from tests.support.events import END_MS, conversion, interaction
from tests.support.kafka import publish, values
from tests.support.oracle import write_jsonl
from tests.support.waiting import wait_drained

pytestmark = pytest.mark.integration

HEURISTIC = [name for name, model in MODELS.items() if not model.needs_snapshot]
FIRST_DAY = datetime.fromtimestamp((END_MS - 62 * DAY_MS) / 1000, UTC).date().isoformat()
LAST_DAY = datetime.fromtimestamp((END_MS + 2 * DAY_MS) / 1000, UTC).date().isoformat()


def spend(event_id: str, ts: int, channel: str, amount: float, currency: str, **fields) -> dict:
    return {
        "event_id": event_id,
        "type": "spend",
        "ts": ts,
        "channel": channel,
        "amount": amount,
        "currency": currency,
        **fields,
    }


def scripted() -> tuple[list[dict], list[dict], list[bytes]]:
    """The events (in publishing order), revenue to send once they are applied, and
    hostile values for the DLQ."""
    events = list(generate(150, seed=23, end_ms=END_MS - 10 * DAY_MS, span_ms=50 * DAY_MS))
    purchases = [e for e in events if e["type"] == "conversion" and e["conversion"] == "purchase"]
    revised = next(e for e in purchases if e["customer_id"] != purchases[0]["customer_id"])
    events += [
        spend(
            "sp-1", END_MS - 20 * DAY_MS, "paid_search", 250.0, "EUR", campaign="brand", term="touchstream"
        ),
        spend("sp-2", END_MS - 19 * DAY_MS, "display", 80.0, "USD", campaign="launch"),
        spend(
            "sp-1", END_MS - 20 * DAY_MS, "paid_search", 250.0, "EUR", campaign="brand", term="touchstream"
        ),
        # late revenue, by customer and with no person id at all
        {
            "event_id": "rev-1",
            "type": "revenue",
            "ts": END_MS - 5 * DAY_MS,
            "customer_id": purchases[0]["customer_id"],
            "conversion_id": purchases[0]["conversion_id"],
            "value": 400.0,
            "currency": "EUR",
        },
        # a late touch before an emitted purchase: its attribution is revised
        interaction(
            "late-1",
            revised["ts"] - 3600_000,
            "ai_answer",
            customer_id=revised["customer_id"],
            interaction="citation",
            medium_kind="virtual",
            directness="indirect",
        ),
        # an anonymous device, identified, then a purchase in dollars
        interaction(
            "dev-1",
            END_MS - 3 * DAY_MS,
            "paid_search",
            anonymous_id="dev-x",
            campaign="brand",
            term="touchstream",
            content="ad-a",
            interaction="click",
            cost=1.5,
        ),
        interaction(
            "dev-2",
            END_MS - 3 * DAY_MS + 60_000,
            "display",
            anonymous_id="dev-x",
            interaction="impression",
            cost=0.1,
        ),
        {
            "event_id": "idf-1",
            "type": "identify",
            "ts": END_MS - 2 * DAY_MS,
            "anonymous_id": "dev-x",
            "customer_id": "buyer-x",
        },
        conversion("buy-x", END_MS - 2 * DAY_MS + 60_000, "buyer-x", "purchase", 90.0, currency="USD"),
    ]
    hostile = [
        b'{"event_id":"bad-1","type":"spend","ts":1790000000000,"channel":"paid_search","currency":"EUR"}',
        b'{"event_id":"bad-2","type":"spend","ts":1790000000000,"channel":"billboard","amount":5,"currency":"EUR"}',
        b'{"event_id":"bad-3","type":"interaction","ts":1790000000000,"customer_id":"c-1","channel":"email","term":7}',
        b'{"event_id":"bad-4","type":"interaction","ts":1790000000000,"customer_id":"c-1","channel":"email","content":"'
        + b"x" * 600
        + b'"}',
    ]
    # revenue with no person id finds its person through the conversion index, written once
    # the conversion's batch is applied: sent after the rest is drained (in the same batch
    # as its conversion it would be refused as unknown_conversion)
    orphan = [
        {
            "event_id": "rev-2",
            "type": "revenue",
            "ts": END_MS - 4 * DAY_MS,
            "conversion_id": purchases[0]["conversion_id"],
            "value": 100.0,
        },
    ]
    return events, orphan, hostile


def report(settings, *args: str) -> dict:
    flags = ["--from", FIRST_DAY, "--to", LAST_DAY, "--models", ",".join(HEURISTIC), "--format", "json"]
    done = touchstream(settings, "report", *flags, *args, timeout=300, text=False, check=True)
    return orjson.loads(done.stdout)


@pytest.mark.parametrize(
    ("batch_size", "redis_backend"),
    [(1, "single"), (1000, "single"), pytest.param(1000, "cluster", marks=pytest.mark.cluster)],
    indirect=["redis_backend"],
)
def test_live_report_equals_the_offline_report(make_settings, start_worker, tmp_path, batch_size) -> None:
    settings = make_settings(batch_size=batch_size, model_refresh_ms=3_600_000)
    events, orphan, hostile = scripted()
    path = write_jsonl(tmp_path / "events.jsonl", events + orphan)
    start_worker(settings)
    publish(settings, settings.topic(RAW), events)
    publish(settings, settings.topic(RAW), [(b"c-1", value) for value in hostile])
    wait_drained(settings, timeout=240)
    publish(settings, settings.topic(RAW), orphan)
    wait_drained(settings)

    dead = values(settings, settings.topic(DLQ))
    reasons = sorted((orjson.loads(d["raw"])["event_id"], d["reason_code"]) for d in dead)
    assert reasons == [
        ("bad-1", "missing_field"),
        ("bad-2", "bad_value"),
        ("bad-3", "wrong_type"),
        ("bad-4", "bad_value"),
    ]

    for by in ("channel", "campaign", "term", "medium_kind"):
        live, offline = report(settings, "--by", by), report(settings, "--by", by, "--events", str(path))
        for live_row, offline_row in zip(live["rows"], offline["rows"], strict=False):  # readable failures
            assert live_row == offline_row
        assert live == offline, by
    full = report(settings, "--by", "channel")
    channel = {r["group"]: r for r in full["rows"]}
    # the EUR spend once (it was sent twice) plus the paid search interactions' own costs
    clicks = sum(
        e.get("cost", 0.0) for e in events if e["type"] == "interaction" and e["channel"] == "paid_search"
    )
    assert channel["paid_search"]["cost"] == pytest.approx(250.0 + clicks)
    # the USD spend is left out: display costs only its interactions
    shown = sum(
        e.get("cost", 0.0) for e in events if e["type"] == "interaction" and e["channel"] == "display"
    )
    assert channel["display"]["cost"] == pytest.approx(shown)
    assert full["other_currencies"] == {"USD": 2}  # the spend and the purchase in dollars
    assert sum(r["models"]["linear"]["revenue"] for r in full["rows"]) == pytest.approx(500.0)
    kinds = {t["conversion"]: t for t in full["conversion_types"]}
    assert kinds["purchase"]["count"] == sum(
        e["type"] == "conversion" and e["conversion"] == "purchase" and e.get("currency", "EUR") == "EUR"
        for e in events
    )
    terms = {r["group"] for r in report(settings, "--by", "term")["rows"]}
    assert "touchstream" in terms and "(none)" in terms
