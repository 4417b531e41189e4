"""Validation of raw input values (DESIGN.md §3): every reason code, exact normalised events."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.core.codec import decode_event, encode_event
from stream.core.config import Limits
from stream.core.records import Event
from stream.core.validation import MIN_TS, REASONS, TYPES, Rejection, validate
from tests.support.events import DAY

# --- builders ----------------------------------------------------------------

NOW = 1_772_359_200_000  # 2026-03-01T10:00:00Z
LIMITS = Limits()
DROP = object()  # a field value meaning "leave the field out"


def raw(**fields: Any) -> bytes:
    """A valid interaction (the DESIGN.md §3 example, trimmed), with `fields` changed or DROPped."""
    doc = {
        "event_id": "e-1",
        "type": "interaction",
        "ts": "2026-03-01T10:00:00Z",
        "anonymous_id": "a-91",
        "channel": "paid_search",
    } | fields
    return orjson.dumps({k: v for k, v in doc.items() if v is not DROP})


def check(data: bytes | None) -> Event | Rejection:
    return validate(data, LIMITS, NOW)


def reason(data: bytes | None) -> str:
    result = check(data)
    assert isinstance(result, Rejection), result
    return result.reason_code


# --- valid events ------------------------------------------------------------


def test_full_interaction_is_normalised():
    data = raw(
        customer_id=None,
        interaction="click",
        source="google",
        medium="cpc",
        campaign="brand-fr",
        medium_kind="digital",
        directness="direct",
        stage="pre_purchase",
        context={"page": "/pricing"},
        cost=1.22,
    )
    assert check(data) == Event(
        event_id="e-1",
        type="interaction",
        ts=NOW,
        person_id="a-91",
        anonymous_id="a-91",
        interaction="click",
        channel="paid_search",
        source="google",
        medium="cpc",
        campaign="brand-fr",
        medium_kind="digital",
        directness="direct",
        stage="pre_purchase",
        context={"page": "/pricing"},
        cost=1.22,
    )


@pytest.mark.parametrize(
    "ts",
    ["2026-03-01T10:00:00Z", "2026-03-01T12:00:00+02:00", "2026-03-01T05:00:00-05:00", NOW],
)
def test_timestamp_forms_give_epoch_ms(ts):
    assert check(raw(ts=ts)) == Event(
        "e-1", "interaction", NOW, "a-91", anonymous_id="a-91", channel="paid_search"
    )


def test_fractional_seconds_keep_milliseconds():
    assert check(raw(ts="2026-03-01T10:00:00.123Z")).ts == NOW + 123


def test_customer_id_is_the_person_when_both_ids_are_present():
    event = check(raw(customer_id="c-7"))
    assert (event.person_id, event.anonymous_id, event.customer_id) == ("c-7", "a-91", "c-7")


def test_conversion_id_defaults_to_event_id():
    data = raw(
        type="conversion",
        channel=DROP,
        anonymous_id=DROP,
        customer_id="c-7",
        conversion="lead",
        value=0,
        currency="EUR",
    )
    assert check(data) == Event(
        "e-1",
        "conversion",
        NOW,
        "c-7",
        customer_id="c-7",
        conversion="lead",
        conversion_id="e-1",
        value=0.0,
        currency="EUR",
    )


def test_conversion_keeps_its_conversion_id():
    data = raw(type="conversion", channel=DROP, conversion="purchase", conversion_id="o-1", value=49.9)
    event = check(data)
    assert (event.conversion_id, event.value, event.person_id) == ("o-1", 49.9, "a-91")


def test_identify_links_both_ids():
    data = raw(type="identify", channel=DROP, customer_id="c-7")
    assert check(data) == Event("e-1", "identify", NOW, "c-7", anonymous_id="a-91", customer_id="c-7")


@pytest.mark.parametrize("missing", ["anonymous_id", "customer_id"])
def test_identify_needs_both_ids(missing):
    data = raw(type="identify", channel=DROP, **{"customer_id": "c-7", missing: DROP})
    assert check(data) == Rejection("missing_field", "identify needs both anonymous_id and customer_id")


def test_revenue_needs_no_person():
    data = raw(
        type="revenue", channel=DROP, anonymous_id=DROP, conversion_id="lead-77", value=5000, currency="EUR"
    )
    assert check(data) == Event(
        "e-1", "revenue", NOW, "", conversion_id="lead-77", value=5000.0, currency="EUR"
    )


def test_revenue_needs_conversion_id():
    assert reason(raw(type="revenue", channel=DROP, value=5000)) == "missing_field"


def test_interaction_needs_a_person():
    assert reason(raw(anonymous_id=DROP)) == "missing_field"


# --- every reason code -------------------------------------------------------

MALFORMED = [
    ("not_json", b"{not json"),
    ("not_json", b'{"event_id": "\xff\xfe"}'),  # invalid UTF-8
    ("not_json", b'{"event_id": "e-1", "cost": NaN}'),  # NaN is not JSON
    ("not_json", None),
    ("not_json", b""),
    ("not_object", b'[{"event_id": "e-1"}]'),
    ("not_object", b'"interaction"'),
    ("unknown_type", raw(type="pageview")),
    ("missing_field", raw(type=DROP)),
    ("missing_field", raw(event_id=DROP)),
    ("missing_field", raw(ts=DROP)),
    ("missing_field", raw(channel=DROP)),
    ("missing_field", raw(type="conversion", channel=DROP)),  # no `conversion`
    ("wrong_type", raw(type=1)),
    ("wrong_type", raw(event_id=17)),
    ("wrong_type", raw(channel=["email"])),
    ("wrong_type", raw(cost="1.22")),
    ("wrong_type", raw(cost=True)),
    ("wrong_type", raw(ts=True)),
    ("wrong_type", raw(ts=1.7e12)),
    ("wrong_type", raw(context=["page"])),
    ("bad_value", raw(cost=-0.01)),
    ("bad_value", raw(cost=1e16)),
    ("bad_value", raw(channel="tv")),
    ("bad_value", raw(medium_kind="astral")),
    ("bad_value", raw(event_id="")),
    ("bad_value", raw(event_id="x" * 257)),
    ("bad_value", raw(campaign="x" * 513)),
    ("bad_ts", raw(ts="2026-03-01T10:00:00")),  # no time zone
    ("bad_ts", raw(ts="yesterday")),
    ("ts_out_of_range", raw(ts="1999-12-31T23:59:59.999Z")),
    ("ts_out_of_range", raw(ts=MIN_TS - 1)),
    ("ts_out_of_range", raw(ts=NOW + DAY + 1)),
    ("ts_out_of_range", raw(ts=-1)),
    ("too_large", b" " * (64 * 1024 + 1)),
    ("context_too_large", raw(context={"x": "a" * 4096})),
]


@pytest.mark.parametrize(("code", "data"), MALFORMED)
def test_malformed_input_is_rejected_with_its_reason(code, data):
    assert reason(data) == code


def test_every_reason_code_is_exercised():
    assert {code for code, _ in MALFORMED} == set(REASONS)


def test_rejections_explain_themselves():
    assert check(raw(channel="tv")).error.startswith("'channel' is 'tv'; expected one of")
    assert check(b" " * 70_000) == Rejection("too_large", "value is 70000 bytes, limit 65536")


@pytest.mark.parametrize("ts", [MIN_TS, NOW + DAY])
def test_timestamp_bounds_are_inclusive(ts):
    assert check(raw(ts=ts)).ts == ts


def test_limits_are_configurable():
    small = Limits(max_value_bytes=200, max_context_bytes=10, max_future_skew_ms=0)
    assert validate(raw(context={"k": "v" * 8}), small, NOW).reason_code == "context_too_large"
    assert validate(raw(ts=NOW + 1), small, NOW).reason_code == "ts_out_of_range"
    assert validate(raw(source="s" * 200), small, NOW).reason_code == "too_large"


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data):
    assert isinstance(check(data), Event | Rejection)


# --- internal encoding --------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)
MAYBE = st.none() | TEXT
AMOUNT = st.floats(min_value=0, max_value=1e15, allow_nan=False)
CONTEXT = st.none() | st.dictionaries(TEXT, TEXT | st.integers(-(2**53), 2**53) | st.booleans(), max_size=3)
EVENTS = st.builds(
    Event,
    event_id=TEXT,
    type=st.sampled_from(sorted(TYPES)),
    ts=st.integers(MIN_TS, NOW + DAY),
    person_id=st.just("") | TEXT,
    anonymous_id=MAYBE,
    customer_id=MAYBE,
    interaction=MAYBE,
    channel=MAYBE,
    source=MAYBE,
    medium=MAYBE,
    campaign=MAYBE,
    context=CONTEXT,
    cost=AMOUNT,
    conversion=MAYBE,
    conversion_id=MAYBE,
    value=AMOUNT,
    currency=MAYBE,
)


@given(EVENTS)
def test_encode_decode_round_trip(event):
    assert decode_event(encode_event(event)) == event
    # canonical: the journeys agent digests the record value instead of re-encoding the event
    assert encode_event(decode_event(encode_event(event))) == encode_event(event)


def test_encoding_leaves_out_missing_fields():
    event = Event("e-1", "identify", NOW, "c-7", anonymous_id="a-91", customer_id="c-7")
    assert orjson.loads(encode_event(event)) == {
        "event_id": "e-1",
        "type": "identify",
        "ts": NOW,
        "person_id": "c-7",
        "anonymous_id": "a-91",
        "customer_id": "c-7",
        "cost": 0.0,
        "value": 0.0,
    }


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KNOWN = st.sampled_from(
    [
        "event_id",
        "type",
        "ts",
        "anonymous_id",
        "customer_id",
        "channel",
        "context",
        "cost",
        "conversion",
        "value",
    ]
)


@given(st.dictionaries(KNOWN | st.text(max_size=8), JSON, max_size=12))
def test_any_json_object_is_an_event_or_a_rejection_with_a_known_reason(doc) -> None:
    result = validate(orjson.dumps(doc), Limits(), NOW)
    assert isinstance(result, Event) or result.reason_code in REASONS
