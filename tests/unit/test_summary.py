"""The demo's terminal summary: lines built from real conversion documents and live figures."""

from __future__ import annotations

from stream.attribution import HEURISTIC
from stream.core.config import ModelParams
from stream.core.journey import Converted
from stream.core.output import attribution_doc
from stream.core.records import AttributionInput, Event, Touchpoint
from stream.core.summary import channel_rows, conversion_line, credit_text, headline, path_text
from tests.support.events import HOUR, T0


def converted(channels: list[str], value: float = 120.0) -> dict:
    ts = T0 + len(channels) * HOUR
    event = Event(
        "e-9", "conversion", ts, "c-283", conversion="lead", conversion_id="l-1", value=value, currency="EUR"
    )
    touches = tuple(Touchpoint(T0 + i * HOUR, ch, f"s{i}") for i, ch in enumerate(channels))
    return attribution_doc("c-283", Converted(event, AttributionInput(touches, ts)), ModelParams(), HEURISTIC)


def test_a_conversion_reads_as_one_line() -> None:
    doc = converted(["referral", "email", "paid_search"])
    assert conversion_line(doc, ("last_touch", "linear")) == (
        "lead     c-283         120.00 EUR  referral > email > paid_search"
        "  last: paid_search  linear: 0.33 each"
    )


def test_a_model_with_unequal_shares_names_its_two_largest_channels() -> None:
    # position-based (40/20/40) over email, sms, email, direct: email 0.4 + 0.1, direct 0.4, sms 0.1
    doc = converted(["email", "sms", "email", "direct"])
    assert credit_text("position_based", ["email", "sms", "email", "direct"], [0.4, 0.1, 0.1, 0.4]) == (
        "position_based: email 0.50, direct 0.40"
    )
    assert conversion_line(doc, ("first_touch",)).endswith("email > sms > email > direct  first: email")


def test_a_conversion_without_touchpoints() -> None:
    doc = converted([])
    assert conversion_line(doc, ("linear",)).endswith("120.00 EUR  (no touchpoint in the lookback)")


def test_a_long_path_keeps_its_ends() -> None:
    channels = [f"c{i}" for i in range(10)]
    assert path_text(channels) == "c0 > c1 > …5 more… > c7 > c8 > c9"
    assert path_text(channels[:6]) == "c0 > c1 > c2 > c3 > c4 > c5"


def test_headline_before_and_with_figures() -> None:
    assert headline(None) == "events – · attributions – · DLQ – · lag – · p99 –"
    assert headline({"lag": {"records": None}}) == headline(None)
    live = {
        "now": {"events_in": 301.4, "attributions_out": 12.0, "dlq": 0.0},
        "latency": {"p99_seconds": 0.0184},
        "lag": {"records": 7},
    }
    assert headline(live) == "events 301/s · attributions 12/s · DLQ 0/s · lag 7 · p99 18 ms"


def test_channel_rows_under_the_chosen_models() -> None:
    report = {
        "rows": [
            {"group": "email", "models": {"linear": {"conversions": 1.5, "value": 30.0}}},
            {"group": "sms", "models": {"linear": {"conversions": 0.5, "value": 10.0}}},
        ]
    }
    assert channel_rows(report, ("linear", "markov")) == [
        ["email", "1.50", "30.00", "0.00", "0.00"],
        ["sms", "0.50", "10.00", "0.00", "0.00"],
    ]
