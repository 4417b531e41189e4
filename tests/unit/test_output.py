"""Output values of the public topics (DESIGN.md §2, §6): exact docs, conservation, sorted keys."""

from __future__ import annotations

import base64
import math
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.attribution import HEURISTIC
from stream.core.config import ModelParams
from stream.core.journey import Converted, SessionClosed
from stream.core.output import (
    SCHEMA_VERSION,
    UNATTRIBUTED,
    Message,
    attribution_doc,
    conversion_messages,
    credit_rows,
    dlq_message,
    dumps,
    session_message,
)
from stream.core.records import AttributionInput, Event, Touchpoint
from stream.core.topics import CONVERSIONS, CREDITS, DLQ, SESSIONS
from tests.support.events import HOUR, T0

# --- builders ----------------------------------------------------------------

PARAMS = ModelParams()
CHANNELS = ["email", "paid_search", "direct", "sms", "display", "video", "push", "referral"]


def touches(n: int) -> tuple[Touchpoint, ...]:
    return tuple(
        Touchpoint(
            T0 + i * HOUR,
            CHANNELS[i % len(CHANNELS)],
            f"s{i}",
            campaign=f"camp{i}",
            context={"z": i, "a": {"y": 1, "b": 2}},
        )
        for i in range(n)
    )


def conversion(n: int, value: float = 120.0, conversion_type: str = "purchase") -> Converted:
    ts = T0 + n * HOUR
    event = Event(
        "conv-1",
        "conversion",
        ts,
        "c-7",
        customer_id="c-7",
        conversion=conversion_type,
        conversion_id="order-9",
        value=value,
        currency="EUR",
    )
    return Converted(event, AttributionInput(touches(n), ts, lead_ts=T0 + HOUR))


def doc(n: int, value: float = 120.0, models: tuple[str, ...] = HEURISTIC) -> dict[str, Any]:
    return attribution_doc("c-7", conversion(n, value), PARAMS, models)


def keys_sorted(value: Any) -> bool:
    if isinstance(value, dict):
        return list(value) == sorted(value) and all(keys_sorted(v) for v in value.values())
    if isinstance(value, list):
        return all(keys_sorted(v) for v in value)
    return True


# --- attribution value ---------------------------------------------------------


def test_attribution_doc_header_and_touchpoints():
    d = doc(2, models=("last_touch",))
    assert {
        k: d[k] for k in ("schema_version", "kind", "attribution_id", "revision", "person_id", "unattributed")
    } == {
        "schema_version": SCHEMA_VERSION,
        "kind": "conversion",
        "attribution_id": "conv-1",
        "revision": 0,
        "person_id": "c-7",
        "unattributed": False,
    }
    assert d["conversion"] == {
        "event_id": "conv-1",
        "conversion": "purchase",
        "conversion_id": "order-9",
        "ts": T0 + 2 * HOUR,
        "value": 120.0,
        "currency": "EUR",
    }
    assert [(t["index"], t["session_id"], t["channel"]) for t in d["touchpoints"]] == [
        (0, "s0", "email"),
        (1, "s1", "paid_search"),
    ]
    assert d["models"] == {"last_touch": {"shares": [0.0, 1.0], "values": [0.0, 120.0]}}


def test_unattributed_conversion_rows():
    d = doc(0, value=75.0, models=("first_touch", "linear"))
    assert d["unattributed"] is True
    assert d["touchpoints"] == []
    base = {
        "schema_version": SCHEMA_VERSION,
        "kind": "conversion",
        "attribution_id": "conv-1",
        "revision": 0,
        "person_id": "c-7",
        "conversion_id": "order-9",
        "conversion": "purchase",
        "conversion_ts": T0,
        "currency": "EUR",
        "touchpoint_index": None,
        "session_id": None,
        "channel": UNATTRIBUTED,
        "campaign": None,
        "term": None,
        "content": None,
        "ts": None,
        "share": 1.0,
        "value": 75.0,
    }
    assert list(credit_rows(d)) == [base | {"model": "first_touch"}, base | {"model": "linear"}]


def test_unattributed_channel_name():
    assert UNATTRIBUTED == "(unattributed)"


@given(st.integers(1, 8), st.floats(0, 1e9, allow_nan=False))
def test_credited_values_sum_to_the_conversion_value(n, value):
    rows = list(credit_rows(doc(n, value)))
    assert len(rows) == n * len(HEURISTIC)
    for model in HEURISTIC:
        mine = [r for r in rows if r["model"] == model]
        assert [r["touchpoint_index"] for r in mine] == list(range(n))
        assert math.fsum(r["share"] for r in mine) == pytest.approx(1.0)
        assert math.fsum(r["value"] for r in mine) == pytest.approx(value, rel=1e-9, abs=1e-9)


def test_credit_rows_carry_touch_fields():
    row = next(r for r in credit_rows(doc(3, models=("linear",))) if r["touchpoint_index"] == 2)
    assert (row["channel"], row["campaign"], row["session_id"], row["ts"]) == (
        "direct",
        "camp2",
        "s2",
        T0 + 2 * HOUR,
    )
    assert row["share"] == pytest.approx(1 / 3)
    assert row["value"] == pytest.approx(40.0)


def test_conversion_messages_topics_and_keys():
    messages = conversion_messages(doc(2, models=("first_touch",)))
    assert [(m.topic, m.key) for m in messages] == [
        (CONVERSIONS, b"c-7"),
        (CREDITS, b"email"),
        (CREDITS, b"paid_search"),
    ]


def test_values_have_sorted_keys_at_every_level():
    messages = conversion_messages(doc(3))
    messages.append(session_message("c-7", SessionClosed(touches(1)[0], T0 + 5, 2, "idle")))
    messages.append(dlq_message(b"k", b"{}", "not_object", "x", "touchpoints.raw", 0, 1))
    for message in messages:
        assert message.value.startswith(b'{"')
        assert keys_sorted(orjson.loads(message.value)), message.topic


def test_values_are_byte_identical_across_calls():
    assert conversion_messages(doc(4)) == conversion_messages(doc(4))


# --- sessions ---------------------------------------------------------------------


def test_session_message():
    touch = Touchpoint(T0, "email", "s0", cost=2.5)
    message = session_message("a-91", SessionClosed(touch, T0 + 60_000, 3, "next_session"))
    assert (message.topic, message.key) == (SESSIONS, b"a-91")
    value = orjson.loads(message.value)
    assert {k: v for k, v in value.items() if k != "touchpoint"} == {
        "schema_version": SCHEMA_VERSION,
        "person_id": "a-91",
        "session_id": "s0",
        "start_ts": T0,
        "end_ts": T0 + 60_000,
        "interactions": 3,
        "closed_by": "next_session",
    }
    assert (value["touchpoint"]["channel"], value["touchpoint"]["cost"]) == ("email", 2.5)


# --- dead letters --------------------------------------------------------------------


def dlq(key: bytes | None, raw: bytes | None) -> tuple[Message, dict[str, Any]]:
    message = dlq_message(key, raw, "not_json", "boom", "touchpoints.raw", 2, 41)
    return message, orjson.loads(message.value)


def test_dlq_keeps_utf8_raw_as_text():
    message, value = dlq(b"a-91", "{héllo".encode())
    assert (message.topic, message.key) == (DLQ, b"a-91")
    assert value == {
        "schema_version": SCHEMA_VERSION,
        "error": "boom",
        "reason_code": "not_json",
        "topic": "touchpoints.raw",
        "partition": 2,
        "offset": 41,
        "raw": "{héllo",
        "raw_encoding": "utf-8",
    }


def test_dlq_keeps_invalid_utf8_as_base64():
    _, value = dlq(b"a-91", b"\xff\xfe{")
    assert (value["raw"], value["raw_encoding"]) == ("//57", "base64")
    assert base64.b64decode(value["raw"]) == b"\xff\xfe{"


def test_dlq_keeps_the_original_key_even_when_absent():
    message, value = dlq(None, None)
    assert message.key is None  # DESIGN.md §2: the dlq key is the original key
    assert value["raw"] is None


@given(st.integers(0, 5))
def test_credit_rows_are_key_sorted_so_messages_skip_sorting(n):
    rows = list(credit_rows(doc(n)))  # n = 0: unattributed
    assert rows and all(list(row) == sorted(row) for row in rows)
    assert [m.value for m in conversion_messages(doc(n))[1:]] == [dumps(r) for r in rows]


def test_credit_rows_only_for_the_models_chosen_or_none():
    value = doc(2, models=("first_touch", "linear"))
    every = conversion_messages(value)
    linear = conversion_messages(value, ("linear",))
    assert [orjson.loads(m.value)["model"] for m in linear[1:]] == ["linear", "linear"]
    assert linear[1:] == [m for m in every[1:] if orjson.loads(m.value)["model"] == "linear"]
    assert conversion_messages(value, ()) == every[:1]  # the conversion value alone, unchanged
