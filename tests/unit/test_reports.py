"""Report counters and the report built from them, on hand-computed journeys.

Every expected number is derived in the test's docstring or comment: money, shares and
days are counted in millionths (SCALE)."""

from __future__ import annotations

import orjson
import pytest

from stream.core.config import Config, Limits, Rules
from stream.core.counters import (
    COUNT_INTERACTION,
    COUNT_SPEND,
    DIMENSIONS,
    Count,
    attribution_counts,
    counts_of,
    day_of,
    profile,
    withdraw_message,
)
from stream.core.output import Message
from stream.core.person import PersonState, Positioned, step
from stream.core.records import Event
from stream.core.report import build_report, days_between
from stream.core.revenue import Stored, revenue_doc
from stream.core.topics import CONVERSIONS, REPORT
from stream.core.validation import validate

DAY = 86_400_000
D0 = 1_790_035_200_000  # 2026-09-22T00:00:00Z


def touch(channel: str, ts: int, **dims) -> dict:
    return {
        "channel": channel,
        "ts": ts,
        "campaign": None,
        "term": None,
        "medium_kind": None,
        "directness": None,
        "stage": None,
        **dims,
    }


def conversion_doc(
    touches: list[dict],
    shares: dict[str, list[float]],
    value: float = 100.0,
    ts: int = D0 + 3 * DAY,
    currency: str | None = "EUR",
    kind: str = "purchase",
) -> dict:
    return {
        "kind": "conversion",
        "attribution_id": "c1",
        "person_id": "P",
        "revision": 0,
        "conversion": {
            "ts": ts,
            "value": value,
            "currency": currency,
            "conversion": kind,
            "conversion_id": "o1",
            "event_id": "c1",
        },
        "touchpoints": touches,
        "unattributed": not touches,
        "model_snapshot": None,
        "models": {m: {"shares": s, "values": [x * value for x in s]} for m, s in shares.items()},
    }


NO_EVENT = Event("x", "conversion", D0, "P")  # the messages' event, where they need none


def summed(counts: list[Count]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in counts:
        out[c.field] = out.get(c.field, 0) + c.amount
    return {k: v for k, v in out.items() if v}


def totals(*messages: Message, currency: str = "EUR", event: Event = NO_EVENT) -> dict[str, int]:
    return summed(counts_of(event, messages, currency))


def by(counters: dict[str, int], prefix: str, dim: str) -> dict[str, int]:
    """The counters `<prefix>|<profile>` summed by their profile's value of `dim`."""
    index = DIMENSIONS.index(dim)
    out: dict[str, int] = {}
    for name, amount in counters.items():
        head, _, profile = name.rpartition("|[")
        if head == prefix:
            group = orjson.loads("[" + profile)[index] or "(none)"
            out[group] = out.get(group, 0) + amount
    return out


def msg(doc: dict) -> Message:
    return Message(CONVERSIONS, b"P", orjson.dumps(doc))


TWO = [
    touch("email", D0 + DAY, campaign="spring"),
    touch("paid_search", D0 + 2 * DAY, campaign="brand", term="shoes"),
]


def test_day_is_the_utc_calendar_day():
    assert day_of(D0) == "2026-09-22" and day_of(D0 - 1) == "2026-09-21"
    assert days_between("2026-09-30", "2026-10-02") == ["2026-09-30", "2026-10-01", "2026-10-02"]


def test_an_attribution_counts_shares_value_type_path_and_currency():
    """linear: 0.5 each of a 100 EUR purchase on 2026-09-25, first touch 2 days before."""
    counts = totals(msg(conversion_doc(TWO, {"linear": [0.5, 0.5]})))
    assert by(counts, "c|EUR|linear", "channel") == {"email": 500_000, "paid_search": 500_000}
    assert by(counts, "v|EUR|linear", "channel") == {"email": 50_000_000, "paid_search": 50_000_000}
    assert by(counts, "c|EUR|linear", "campaign") == {"spring": 500_000, "brand": 500_000}
    assert by(counts, "c|EUR|linear", "term") == {"(none)": 500_000, "shoes": 500_000}
    assert by(counts, "c|EUR|linear", "medium_kind") == {"(none)": 1_000_000}  # both touches have none
    assert len([n for n in counts if n.startswith("c|")]) == 2  # one counter per touch profile
    assert (counts["tn|EUR|purchase"], counts["tv|EUR|purchase"]) == (1, 100_000_000)
    assert (counts["tp|EUR|purchase"], counts["ta|EUR|purchase"]) == (2, 1)
    assert counts["td|EUR|purchase"] == 2_000_000  # 25th - 23rd = 2 days
    assert (counts["pn|EUR|email > paid_search"], counts["pv|EUR|email > paid_search"]) == (1, 100_000_000)
    assert counts["x|EUR"] == 1
    assert {c.day for c in attribution_counts(conversion_doc(TWO, {"linear": [0.5, 0.5]}), "EUR")} == {
        "2026-09-25"
    }


def test_touches_with_the_same_value_add_up_before_rounding():
    """Three email touches at 1/3 each: one counter of 1.0, not 3 x 0.333333."""
    doc = conversion_doc([touch("email", D0)] * 3, {"linear": [1 / 3] * 3})
    assert by(totals(msg(doc)), "c|EUR|linear", "channel") == {"email": 1_000_000}


def test_a_conversion_without_currency_counts_in_the_default_one():
    assert "x|USD" in totals(msg(conversion_doc(TWO, {"linear": [0.5, 0.5]}, currency=None)), currency="USD")


def test_an_unattributed_conversion_counts_one_in_every_dimension_and_no_days():
    counts = totals(msg(conversion_doc([], {"linear": []}, value=40.0)))
    for dim in DIMENSIONS:
        assert by(counts, "c|EUR|linear", dim) == {"(unattributed)": 1_000_000}
        assert by(counts, "v|EUR|linear", dim) == {"(unattributed)": 40_000_000}
    assert counts["tn|EUR|purchase"] == 1 and "tp|EUR|purchase" not in counts  # 0 touchpoints
    assert "ta|EUR|purchase" not in counts and "td|EUR|purchase" not in counts  # out of the days mean
    assert counts["pn|EUR|(unattributed)"] == 1


def test_a_revision_withdraws_the_previous_one_and_adds_its_own():
    """Revision 0 credits email alone (1.0); revision 1 splits 0.5 / 0.5: the sum of both
    messages is revision 1's counters alone."""
    first = conversion_doc(TWO[:1], {"linear": [1.0]})
    second = {**conversion_doc(TWO, {"linear": [0.5, 0.5]}), "revision": 1}
    assert totals(msg(first), withdraw_message(first), msg(second)) == totals(msg(second))
    assert totals(msg(first), withdraw_message(first)) == {}


def test_late_revenue_is_dated_by_its_own_day_and_credited_by_the_conversions_shares():
    """50 of revenue on 2026-10-01 over shares 0.5 / 0.5: 25 each, on that day."""
    stored = Stored(conversion_doc(TWO, {"linear": [0.5, 0.5]}))
    revenue = Event("r1", "revenue", D0 + 9 * DAY, "P", conversion_id="o1", value=50.0)
    doc, _ = revenue_doc(revenue, stored)
    counts = counts_of(NO_EVENT, [msg(doc)], "EUR")
    assert {c.day for c in counts} == {"2026-10-01"}
    assert by(totals(msg(doc)), "r|EUR|linear", "channel") == {"email": 25_000_000, "paid_search": 25_000_000}
    assert totals(msg(doc))["x|EUR"] == 1


def test_interactions_count_cost_and_kind_per_dimension():
    click = Event(
        "i1",
        "interaction",
        D0,
        "P",
        channel="paid_search",
        campaign="brand",
        term="shoes",
        interaction="click",
        cost=0.4,
    )
    seen = Event("i2", "interaction", D0, "P", channel="paid_search", interaction="impression")
    counts = totals(COUNT_INTERACTION, event=click) | {}
    for name, n in totals(COUNT_INTERACTION, event=seen).items():
        counts[name] = counts.get(name, 0) + n
    assert by(counts, "k", "channel") == {"paid_search": 400_000}
    assert by(counts, "i|click", "channel") == {"paid_search": 1}
    assert by(counts, "i|impression", "channel") == {"paid_search": 1}
    assert by(counts, "k", "term") == {"shoes": 400_000} and by(counts, "i|impression", "term") == {
        "(none)": 1
    }


def test_spend_counts_its_amount_in_its_currency():
    spend = Event(
        "s1",
        "spend",
        D0,
        "spend:paid_search",
        channel="paid_search",
        campaign="brand",
        value=120.0,
        currency="USD",
    )
    counts = totals(COUNT_SPEND, event=spend)
    assert by(counts, "s|USD", "channel") == {"paid_search": 120_000_000}
    assert by(counts, "s|USD", "campaign") == {"brand": 120_000_000}
    assert by(counts, "s|USD", "term") == {"(none)": 120_000_000}
    assert by(counts, "s|USD", "stage") == {"(none)": 120_000_000}
    assert counts["x|USD"] == 1


def test_the_report_derives_cpa_roas_ctr_and_leaves_other_currencies_out():
    """email: 10 of cost, 2 clicks of 4 impressions; linear credits it 0.5 conversions and
    50 of value, plus 25 of revenue: CPA 10 / 0.5 = 20, ROAS (50 + 25) / 10 = 7.5, CTR 0.5.
    paid_search has no cost: CPA 0 / 0.5 = 0, ROAS null. The USD spend is left out."""
    email, paid_search = profile({"channel": "email"}), profile({"channel": "paid_search"})
    counters = totals(msg(conversion_doc(TWO, {"linear": [0.5, 0.5]})))
    counters |= {
        f"r|EUR|linear|{email}": 25_000_000,
        f"k|{email}": 10_000_000,
        f"i|click|{email}": 2,
        f"i|impression|{email}": 4,
        f"s|USD|{paid_search}": 7_000_000,
        "x|USD": 1,
    }
    report = build_report(counters, ("2026-09-22", "2026-09-28"), "channel", ["linear"], "EUR")
    email, paid = report["rows"]
    assert (email["group"], paid["group"]) == ("email", "paid_search")
    assert (email["cost"], email["interactions"], email["ctr"]) == (10.0, 6, 0.5)
    assert email["models"]["linear"] == {
        "conversions": 0.5,
        "value": 50.0,
        "revenue": 25.0,
        "cpa": 20.0,
        "roas": 7.5,
    }
    assert paid["cost"] == 0.0 and paid["ctr"] is None
    assert (paid["models"]["linear"]["cpa"], paid["models"]["linear"]["roas"]) == (0.0, None)
    assert report["other_currencies"] == {"USD": 1}
    assert report["conversion_types"] == [
        {
            "conversion": "purchase",
            "count": 1,
            "value": 100.0,
            "mean_touchpoints": 2.0,
            "mean_days_to_conversion": 2.0,
        }
    ]
    assert report["top_paths"] == [{"path": "email > paid_search", "conversions": 1, "value": 100.0}]


def test_top_paths_rank_by_conversions_then_path_text():
    counters = {"pn|EUR|b": 2, "pn|EUR|a": 2, "pn|EUR|c": 3, "pn|EUR|d": 1, "pv|EUR|c": 5}
    report = build_report(counters, ("2026-09-22", "2026-09-22"), "channel", [], "EUR", top_paths=3)
    assert [(p["path"], p["conversions"], p["value"]) for p in report["top_paths"]] == [
        ("c", 3, 0.000005),
        ("a", 2, 0.0),
        ("b", 2, 0.0),
    ]


def test_a_dimension_value_may_hold_the_separator():
    doc = conversion_doc([touch("email", D0, campaign="a|b")], {"linear": [1.0]})
    report = build_report(totals(msg(doc)), ("2026-09-25", "2026-09-25"), "campaign", ["linear"], "EUR")
    assert [r["group"] for r in report["rows"]] == ["a|b"]


def test_an_unknown_dimension_is_refused():
    with pytest.raises(ValueError, match="unknown dimension"):
        build_report({}, ("2026-09-22", "2026-09-22"), "colour", [], "EUR")


# --- the per-person step ---------------------------------------------------------


def test_a_revision_without_its_stored_record_asks_for_it_and_then_withdraws_it():
    """A late email touch before an emitted conversion revises it: without the stored
    conversion loaded, the step names it as lacking; with it, the revision withdraws it."""
    config = Config(rules=Rules(), models=("linear",))
    click = Event("i1", "interaction", D0 + 2 * DAY, "P", channel="paid_search")
    buy = Event("c1", "conversion", D0 + 3 * DAY, "P", conversion="purchase", conversion_id="o1", value=10.0)
    late = Event("i0", "interaction", D0 + DAY, "P", channel="email")
    first = step("P", PersonState(), [Positioned("t:0", 1, click), Positioned("t:0", 2, buy)], config)
    [stored] = first.conversions
    state = first.state
    without = step("P", state, [Positioned("t:0", 3, late)], config)
    assert without.lacking == ["o1"]
    loaded = PersonState(state.journey, state.fence, {"o1": stored.record})
    withdrawn = step("P", loaded, [Positioned("t:0", 3, late)], config)
    assert withdrawn.lacking == []
    reports = [m for m in withdrawn.outbox["t:0@3"] if m.topic == REPORT]
    assert orjson.loads(reports[0].value) == {"withdraw": stored.record.attribution}
    counts = totals(*first.outbox["t:0@2"], *withdrawn.outbox["t:0@3"], event=late)
    assert by(counts, "c|EUR|linear", "channel") == {"email": 500_000, "paid_search": 500_000}
    assert counts["tn|EUR|purchase"] == 1 and counts["tp|EUR|purchase"] == 2


def test_spend_is_validated_and_keyed_by_its_channel():
    ok = validate(
        b'{"event_id":"s1","type":"spend","ts":1790035200000,"channel":"paid_search",'
        b'"campaign":"brand","term":"shoes","amount":12.5,"currency":"EUR"}',
        Limits(),
        D0,
    )
    assert isinstance(ok, Event)
    assert (ok.person_id, ok.value, ok.currency, ok.term) == ("spend:paid_search", 12.5, "EUR", "shoes")
    for bad, reason in (
        (
            b'{"event_id":"s1","type":"spend","ts":1790035200000,"channel":"tv","amount":1,"currency":"EUR"}',
            "bad_value",
        ),
        (
            b'{"event_id":"s1","type":"spend","ts":1790035200000,"channel":"email","currency":"EUR"}',
            "missing_field",
        ),
        (
            b'{"event_id":"s1","type":"spend","ts":1790035200000,"channel":"email","amount":"1","currency":"EUR"}',
            "wrong_type",
        ),
        (
            b'{"event_id":"s1","type":"spend","ts":1790035200000,"channel":"email","amount":1}',
            "missing_field",
        ),
        (
            b'{"event_id":"i","type":"interaction","ts":1790035200000,"anonymous_id":"a","channel":"email","term":5}',
            "wrong_type",
        ),
        (
            b'{"event_id":"i","type":"interaction","ts":1790035200000,"anonymous_id":"a","channel":"email","content":""}',
            "bad_value",
        ),
    ):
        rejected = validate(bad, Limits(), D0)
        assert not isinstance(rejected, Event) and rejected.reason_code == reason, bad


def test_the_report_json_matches_its_schema():
    import json
    from importlib import resources

    from jsonschema import Draft202012Validator

    schema = json.loads(resources.files("stream").joinpath("schemas/report.schema.json").read_text())
    counters = totals(msg(conversion_doc(TWO, {"linear": [0.5, 0.5], "first_touch": [1.0, 0.0]})))
    email = profile({"channel": "email"})
    counters |= {f"k|{email}": 10_000_000, f"i|click|{email}": 2, "x|USD": 3}
    for by in ("channel", "term", "stage"):
        report = build_report(counters, ("2026-09-22", "2026-09-28"), by, ["linear", "first_touch"], "EUR")
        Draft202012Validator(schema).validate(report)
    assert build_report({}, ("2026-09-22", "2026-09-22"), "channel", ["linear"], "EUR")["rows"] == []


def test_a_query_defaults_to_the_last_seven_days_and_says_what_is_wrong():
    from datetime import date

    from stream.core.report import parse_query

    today = date(2026, 9, 30)
    q = parse_query(None, None, today)
    assert (q.first, q.last, q.by, q.top_paths) == ("2026-09-24", "2026-09-30", "channel", 10)
    assert len(q.days) == 7
    assert parse_query("2026-09-01", "2026-09-01", today, by="term", top_paths="3").days == ["2026-09-01"]
    for args, kwargs, why in (
        (("2026-09-31", None), {}, "YYYY-MM-DD"),
        (("2026-09-02", "2026-09-01"), {}, "empty period"),
        ((None, None), {"by": "colour"}, "unknown dimension"),
        ((None, None), {"top_paths": "-1"}, "top paths"),
        ((None, None), {"top_paths": "many"}, "top paths"),
    ):
        with pytest.raises(ValueError, match=why):
            parse_query(*args, today, **kwargs)
