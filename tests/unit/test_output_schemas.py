"""Every public value, built by the pure builders, is valid under its JSON Schema
(`stream/schemas/*.schema.json`, checked with the draft each declares).

The values go through their `Message` bytes where there is one, as the worker produces
them: attribution values (conversion with touches, unattributed, corrected revision,
revenue), credit rows of each kind, closed sessions of each `closed_by`, dead letters
(UTF-8, base64 and null raw, every reason code), identity conflicts, model snapshots.
"""

from __future__ import annotations

import base64
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.attribution import DATA_DRIVEN, MODELS
from stream.attribution.paths import PathCount
from stream.attribution.snapshot import Snapshot, build, from_published
from stream.core.config import ModelParams
from stream.core.journey import Converted, SessionClosed
from stream.core.output import (
    UNATTRIBUTED,
    Message,
    attribution_doc,
    conflict_message,
    conversion_messages,
    credit_rows,
    dlq_message,
    model_messages,
    session_message,
)
from stream.core.records import AttributionInput, Event, Touchpoint
from stream.core.revenue import Stored, revenue_doc
from stream.core.topics import CONVERSIONS, CREDITS, DLQ, IDENTITY_CONFLICTS, SESSIONS
from stream.core.topics import MODELS as MODELS_TOPIC
from stream.core.validation import CHANNELS, DIRECTNESS, MEDIUM_KINDS, REASONS, STAGES
from tests.support.events import DAY, HOUR, MIN, T0
from tests.support.schemas import SCHEMA_OF_TOPIC, schema, validate, validator
from tests.support.strategies import path_stats

ALL_MODELS = tuple(MODELS)
PARAMS = ModelParams()
# what the journeys handler sends to the DLQ besides the validation reasons
PERSON_REASONS = ("duplicate_event_id", "duplicate_conversion_id", "unknown_conversion", "too_late")

# --- builders ----------------------------------------------------------------


def checked(message: Message) -> dict[str, Any]:
    """The value of `message`, validated against the schema of its topic."""
    doc = orjson.loads(message.value)
    validate(SCHEMA_OF_TOPIC[message.topic], doc)
    return doc


def full_touch(i: int, channel: str = "paid_search") -> Touchpoint:
    """A touchpoint with every field set."""
    return Touchpoint(
        T0 + i * HOUR,
        channel,
        f"s{i}",
        source="google",
        medium="cpc",
        campaign=f"camp{i}",
        interaction="click",
        medium_kind="digital",
        directness="direct",
        stage="pre_purchase",
        context={"page": "/pricing", "n": i},
        cost=0.25 * i,
    )


JOURNEY = (full_touch(0), Touchpoint(T0 + DAY, "email", "s1"), Touchpoint(T0 + 2 * DAY, "direct", "s2"))
STATS = {
    ("paid_search", "email", "direct"): PathCount(conversions=3, value=300.0),
    ("email",): PathCount(conversions=1, value=20.0, nulls=2),
    ("paid_search",): PathCount(nulls=4),
    ("direct",): PathCount(conversions=1, value=5.0, nulls=1),
}
SNAPSHOT = build(STATS)


def converted(
    touches: tuple[Touchpoint, ...], value: float = 120.0, currency: str | None = "EUR", **milestones: int
) -> Converted:
    ts = (touches[-1].ts if touches else T0) + MIN
    event = Event(
        "conv-1",
        "conversion",
        ts,
        "c-7",
        customer_id="c-7",
        conversion="purchase",
        conversion_id="order-9",
        value=value,
        currency=currency,
    )
    return Converted(event, AttributionInput(touches, ts, **milestones))


def conversion_doc(
    touches: tuple[Touchpoint, ...] = JOURNEY,
    snapshot: Snapshot | None = SNAPSHOT,
    revision: int = 0,
) -> dict[str, Any]:
    return attribution_doc("c-7", converted(touches), PARAMS, ALL_MODELS, snapshot, revision)


def revenue(event_id: str, value: float, currency: str | None = None) -> Event:
    return Event(
        event_id, "revenue", T0 + 60 * DAY, "c-7", conversion_id="order-9", value=value, currency=currency
    )


def revenue_docs(original: dict[str, Any]) -> list[dict[str, Any]]:
    """Two revenue events over the stored conversion: 5000, then 1000 in another currency."""
    first, stored = revenue_doc(revenue("crm-1", 5000.0), Stored(original))
    second, _ = revenue_doc(revenue("crm-2", 1000.0, "USD"), stored)
    return [first, second]


# --- the schemas themselves --------------------------------------------------------


@pytest.mark.parametrize("name", [*SCHEMA_OF_TOPIC.values(), "input-event"])
def test_each_schema_is_valid_under_the_draft_it_declares(name: str) -> None:
    assert schema(name)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert type(validator(name)) is jsonschema.Draft202012Validator  # check_schema passed


def test_the_schemas_are_strict_enough_to_fail() -> None:
    """The checks below can fail: a field too many, touches on an unattributed value, a
    share above 1, an unknown closed_by, a tombstone's encoding are all refused."""
    good = conversion_doc()
    unattributed = conversion_doc(touches=())
    session = orjson.loads(session_message("c-7", SessionClosed(full_touch(0), T0, 1, "idle")).value)
    dead = orjson.loads(dlq_message(None, None, "not_json", "boom", "touchpoints.raw", 0, 0).value)
    wrong = [
        ("conversion", {**good, "extra": 1}),
        ("conversion", {**unattributed, "touchpoints": good["touchpoints"]}),
        ("conversion", {**good, "touchpoints": []}),
        ("credit", {**next(iter(credit_rows(good))), "share": 1.5}),
        ("credit", {**next(iter(credit_rows(unattributed))), "share": 0.5}),
        ("session", {**session, "closed_by": "timeout"}),
        ("dlq", {**dead, "reason_code": "because"}),
        ("model", {**orjson.loads(model_messages(SNAPSHOT)[0].value), "model": "linear"}),
        ("model", {**SNAPSHOT.published()[0], "model": "shapley"}),  # a markov value named shapley
        ("model", {**SNAPSHOT.published()[1], "exact": True}),  # the old shapley fields are gone
        ("model", {k: v for k, v in SNAPSHOT.published()[2].items() if k != "value_positions"}),
        ("model", {**SNAPSHOT.published()[0], "removal_effects": {"email": 1.5}}),
    ]
    for name, value in wrong:
        with pytest.raises(jsonschema.ValidationError):
            validate(name, value)


# --- attribution values ------------------------------------------------------------


@pytest.mark.parametrize("snapshot", [SNAPSHOT, None], ids=["with snapshot", "before any snapshot"])
def test_a_conversion_with_touches_and_its_credit_rows(snapshot: Snapshot | None) -> None:
    messages = conversion_messages(conversion_doc(snapshot=snapshot))
    assert [m.topic for m in messages] == [CONVERSIONS] + [CREDITS] * (len(ALL_MODELS) * len(JOURNEY))
    doc = checked(messages[0])
    assert doc["kind"] == "conversion" and not doc["unattributed"] and len(doc["touchpoints"]) == 3
    assert doc["model_snapshot"] == (snapshot.snapshot_id if snapshot else None)
    rows = [checked(m) for m in messages[1:]]
    assert {(r["kind"], r["channel"]) for r in rows} == {
        ("conversion", "paid_search"),
        ("conversion", "email"),
        ("conversion", "direct"),
    }


def test_an_unattributed_conversion_and_its_credit_rows() -> None:
    messages = conversion_messages(conversion_doc(touches=()))
    doc = checked(messages[0])
    assert doc["unattributed"] is True and doc["touchpoints"] == []
    rows = [checked(m) for m in messages[1:]]
    assert len(rows) == len(ALL_MODELS)
    assert {(r["channel"], r["share"], r["touchpoint_index"]) for r in rows} == {(UNATTRIBUTED, 1.0, None)}


def test_a_conversion_without_currency_or_milestones() -> None:
    inp = converted(JOURNEY, value=0.0, currency=None, lead_ts=T0 + HOUR, opportunity_ts=T0 + DAY)
    doc = checked(conversion_messages(attribution_doc("c-7", inp, PARAMS, ALL_MODELS, SNAPSHOT))[0])
    assert doc["conversion"]["currency"] is None and doc["conversion"]["value"] == 0.0


def test_a_corrected_revision_and_its_credit_rows() -> None:
    """A late touch re-credits a conversion: the same attribution id as revision 1."""
    messages = conversion_messages(conversion_doc(revision=1))
    assert checked(messages[0])["revision"] == 1
    assert {checked(m)["revision"] for m in messages[1:]} == {1}


@pytest.mark.parametrize("touches", [JOURNEY, ()], ids=["attributed", "unattributed"])
def test_revenue_values_and_their_credit_rows(touches: tuple[Touchpoint, ...]) -> None:
    first, second = revenue_docs(conversion_doc(touches=touches))
    for doc in (first, second):
        messages = conversion_messages(doc)
        value = checked(messages[0])
        assert (value["kind"], value["refers_to"]) == ("revenue", "conv-1")
        rows = [checked(m) for m in messages[1:]]
        assert rows and {r["kind"] for r in rows} == {"revenue"}
    assert (second["revenue"]["events"], second["revenue"]["total_value"]) == (2, 6000.0)
    assert second["revenue"]["currency"] == "USD" and first["revenue"]["currency"] == "EUR"


# --- sessions, dead letters, identity conflicts -----------------------------------


@pytest.mark.parametrize("closed_by", ["next_session", "idle", "expired"])
def test_a_closed_session(closed_by: str) -> None:
    for touch in (full_touch(3), Touchpoint(T0, "direct", "s9")):
        doc = checked(session_message("c-7", SessionClosed(touch, touch.ts + 5 * MIN, 4, closed_by)))
        assert (doc["closed_by"], doc["touchpoint"]["index"]) == (closed_by, 0)


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [("{héllo".encode(), "utf-8"), (b"\xff\xfe{", "base64"), (None, None)],
    ids=["utf-8", "base64", "tombstone"],
)
def test_a_dead_letter(raw: bytes | None, encoding: str | None) -> None:
    for key in (b"a-91", None):
        doc = checked(dlq_message(key, raw, "not_json", "boom", "touchpoints.raw", 2, 41))
        assert doc["raw_encoding"] == encoding


@pytest.mark.parametrize("reason", [*REASONS, *PERSON_REASONS])
def test_every_reason_code_is_a_valid_dead_letter(reason: str) -> None:
    assert (
        checked(dlq_message(b"k", b"{}", reason, "why", "t.touchpoints.raw", 0, 0))["reason_code"] == reason
    )


def test_an_identity_conflict() -> None:
    event = Event("id4", "identify", T0, "c-9", anonymous_id="a-1", customer_id="c-9")
    message = conflict_message(event, "c-1")
    assert (message.topic, message.key) == (IDENTITY_CONFLICTS, b"a-1")
    assert checked(message)["mapped_to"] == "c-1"


# --- model snapshots ---------------------------------------------------------------


def test_model_snapshot_messages() -> None:
    """One value per data-driven model, each valid, exactly `Snapshot.published()`, and read
    back by `from_published` as the same snapshot."""
    messages = model_messages(SNAPSHOT)
    assert [(m.topic, m.key) for m in messages] == [(MODELS_TOPIC, n.encode()) for n in DATA_DRIVEN]
    docs = [checked(m) for m in messages]
    assert docs == SNAPSHOT.published() == [m.doc for m in messages]
    by_model = {d["model"]: d for d in docs}
    channels = {"direct", "email", "paid_search"}
    assert (
        set(by_model["markov"]["removal_effects"])
        == set(by_model["markov"]["value_removal_effects"])
        == channels
    )
    assert set(by_model["shapley"]["values"]) == set(by_model["shapley"]["value_values"]) == channels
    assert set(by_model["shapley_ordered"]["positions"]) == channels
    assert from_published(docs) == SNAPSHOT
    assert from_published(docs).published() == docs


def test_from_published_errors_and_partial_snapshots() -> None:
    """Some of the values: a snapshot of those models. Anything else: one-line ValueErrors."""
    values = SNAPSHOT.published()
    partial = from_published(values[1:])
    assert partial.models == ("shapley", "shapley_ordered") and partial.markov is None
    assert partial.published() == values[1:]
    assert from_published(values[0]).models == ("markov",)  # a single value as is
    other = {**values[1], "snapshot_id": "0123456789abcdef"}
    wrong = [
        ([], "^no attribution.models value$"),
        ([{"model": "markov"}], '^not an attribution.models value: {"model":"markov"}$'),
        ({"snapshot_id": "x", "markov": {}}, "^not an attribution.models value: "),  # the old stored form
        ([values[0], other], f"^values of two snapshots: {SNAPSHOT.snapshot_id}, 0123456789abcdef$"),
        ([values[0], values[0]], "^two 'markov' values of snapshot "),
        ([{**values[1], "value_values": None}], "^not an attribution.models value: shapley: "),
        (
            [{**values[2], "positions": {"email": [-1.0]}}],
            "^not an attribution.models value: shapley_ordered: ",
        ),
        (
            [{k: v for k, v in values[0].items() if k != "order"}],
            "^not an attribution.models value: markov field",
        ),
    ]
    for given_values, message in wrong:
        with pytest.raises(ValueError, match=message):
            from_published(given_values)


# --- any journey ---------------------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=8)
MAYBE = st.none() | TEXT
SNAPSHOT_CHANNELS = ("email", "paid_search", "direct", "display")


@st.composite
def journeys(draw: st.DrawFn) -> tuple[Converted, tuple[str, ...], ModelParams]:
    """A conversion with 0-12 touchpoints (any fields, any valid channel), some models, params."""
    n = draw(st.integers(0, 12))
    stamps = sorted(draw(st.lists(st.integers(0, 10**12), min_size=n, max_size=n)))
    touches = tuple(
        Touchpoint(
            ts,
            draw(st.sampled_from(SNAPSHOT_CHANNELS) | st.sampled_from(sorted(CHANNELS))),
            f"s{i}",
            source=draw(MAYBE),
            medium=draw(MAYBE),
            campaign=draw(MAYBE),
            interaction=draw(MAYBE),
            medium_kind=draw(st.none() | st.sampled_from(sorted(MEDIUM_KINDS))),
            directness=draw(st.none() | st.sampled_from(sorted(DIRECTNESS))),
            stage=draw(st.none() | st.sampled_from(sorted(STAGES))),
            context=draw(st.none() | st.dictionaries(TEXT, TEXT | st.integers(-(2**53), 2**53), max_size=2)),
            cost=draw(st.floats(0, 1e6)),
        )
        for i, ts in enumerate(stamps)
    )
    conversion_ts = (stamps[-1] if stamps else 0) + draw(st.integers(0, 10**10))
    milestone = st.none() | st.integers(0, conversion_ts)
    event = Event(
        draw(TEXT),
        "conversion",
        conversion_ts,
        draw(TEXT),
        conversion=draw(TEXT),
        conversion_id=draw(TEXT),
        value=draw(st.floats(0, 1e15)),
        currency=draw(MAYBE),
    )
    models = tuple(draw(st.lists(st.sampled_from(ALL_MODELS), min_size=1, unique=True)))
    params = ModelParams(draw(st.tuples(*[st.floats(0.01, 10.0)] * 3)), draw(st.integers(1, 10**11)))
    inp = AttributionInput(touches, conversion_ts, lead_ts=draw(milestone), opportunity_ts=draw(milestone))
    return Converted(event, inp), models, params


@settings(deadline=None)  # twelve models over long journeys: slow on a busy machine
@given(journeys(), st.none() | path_stats(SNAPSHOT_CHANNELS, 6), st.integers(0, 3))
def test_any_journey_gives_valid_values(journey, stats, revision) -> None:
    """Random journeys, models, parameters and snapshots (from random path counts): the
    conversion value and every credit row validate, and so do a revenue value over it and
    its rows."""
    conversion, models, params = journey
    snapshot = build(stats) if stats else None
    doc = attribution_doc(conversion.event.person_id, conversion, params, models, snapshot, revision)
    for message in conversion_messages(doc):
        checked(message)
    later, _ = revenue_doc(revenue("crm-1", 10.0), Stored(doc))
    for message in conversion_messages(later):
        checked(message)


@given(path_stats(SNAPSHOT_CHANNELS, 8), st.integers(1, 3))
def test_any_snapshot_gives_valid_model_messages(stats, order) -> None:
    """Every model's value validates, and the values round-trip through `from_published`."""
    snapshot = build(stats, order)
    docs = [checked(message) for message in model_messages(snapshot)]
    assert [d["model"] for d in docs] == list(DATA_DRIVEN)
    assert from_published(orjson.loads(orjson.dumps(docs))) == snapshot


@given(
    st.none() | st.binary(max_size=64),
    st.none() | st.binary(max_size=8),
    st.sampled_from([*REASONS, *PERSON_REASONS]),
)
def test_any_raw_bytes_give_a_valid_dead_letter(raw, key, reason) -> None:
    doc = checked(dlq_message(key, raw, reason, "why", "touchpoints.raw", 0, 0))
    if raw is None:
        assert (doc["raw"], doc["raw_encoding"]) == (None, None)
    elif doc["raw_encoding"] == "utf-8":
        assert doc["raw"].encode() == raw
    else:
        assert base64.b64decode(doc["raw"]) == raw


@given(journeys(), st.sampled_from(["next_session", "idle", "expired"]), st.integers(1, 10**6))
def test_any_closed_session_is_valid(journey, closed_by, interactions) -> None:
    conversion, _, _ = journey
    for touch in conversion.attribution_input.touches:
        checked(session_message("p", SessionClosed(touch, touch.ts, interactions, closed_by)))


def test_the_topics_checked_are_every_public_output() -> None:
    assert set(SCHEMA_OF_TOPIC) == {CONVERSIONS, CREDITS, SESSIONS, DLQ, MODELS_TOPIC, IDENTITY_CONFLICTS}
