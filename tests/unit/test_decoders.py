"""What the batch consumer aligns each input topic by: the event time its decoder gives."""

from __future__ import annotations

from stream.core.codec import encode_event
from stream.runtime.app import persons_decoder
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
