"""What the batch consumer aligns each input topic by: the event time its decoder gives."""

from __future__ import annotations

import orjson

from stream.core.codec import encode_event
from stream.core.config import DAY_MS, Limits
from stream.core.records import Event
from stream.core.validation import Rejection
from stream.runtime.app import persons_decoder, raw_decoder
from tests.support.journeys import click, control, ts


def test_person_keyed_events_and_expiry_requests_wait_by_their_event_time() -> None:
    event = click(5)
    assert persons_decoder(encode_event(event)) == (event, ts(5))
    expire = control("expire", ts(90))
    assert persons_decoder(encode_event(expire)) == (expire, ts(90))


def test_a_close_idle_request_stamped_with_the_wall_clock_never_waits() -> None:
    close = control("close_idle", ts(10**6))
    assert persons_decoder(encode_event(close)) == (close, None)


def test_a_value_that_does_not_decode_is_left_to_the_handler() -> None:
    assert persons_decoder(b"{not json") == (None, None)
    assert persons_decoder(b'{"unknown_field": 1}') == (None, None)


def test_a_raw_ts_is_bounded_by_the_records_kafka_timestamp_not_by_the_clock() -> None:
    """A record read again after a crash is judged as it was the first time, however much
    later: a `ts` 2 days in the future is out of range for a record produced now, whenever it
    is read, and in range for one produced 2 days later."""
    produced = 1_900_000_000_000  # in 2030: the clock of this test never gets there
    doc = {"event_id": "e", "type": "interaction", "customer_id": "c", "channel": "email"}
    value = orjson.dumps({**doc, "ts": produced + 2 * DAY_MS})
    rejected, _ = raw_decoder(Limits(), value, produced)
    assert isinstance(rejected, Rejection) and rejected.reason_code == "ts_out_of_range"
    accepted, event_ms = raw_decoder(Limits(), value, produced + 2 * DAY_MS)
    assert isinstance(accepted, Event) and event_ms == produced + 2 * DAY_MS
