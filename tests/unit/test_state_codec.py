"""The stored form of a person's state (store.encode_state / decode_state) loses nothing."""

from __future__ import annotations

import dataclasses
import zlib

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.config import Config, Rules
from stream.core.packing import VOCABULARY, unpack
from stream.core.person import Fence, PersonState, Positioned, step
from stream.core.records import Event
from stream.core.state_codec import VERSION_DIGITS, decode_state, encode_state
from tests.support.events import MIN, T0

CHANNELS = ("email", "paid_search", "display", "in_store")
CONFIG = Config(Rules(), models=("linear",))

EVENTS = st.lists(
    st.tuples(
        st.integers(0, 600), st.sampled_from(CHANNELS), st.booleans(), st.none() | st.just({"page": "/x"})
    ),
    min_size=1,
    max_size=30,
)


def apply(events) -> PersonState:
    """A person's state after `events` (minute, channel, conversion?, context), arriving
    shuffled, so tails and pending conversions are stored too."""
    items = []
    for i, (minute, channel, converts, context) in enumerate(events):
        if converts:
            event = Event(f"c{i}", "conversion", T0 + minute * MIN, "p", conversion="lead", value=float(i))
        else:
            event = Event(
                f"e{i}", "interaction", T0 + minute * MIN, "p", channel=channel, context=context, cost=0.5
            )
        items.append(Positioned("persons:2", i, event))
    return step("p", PersonState(), items, CONFIG).state


@settings(max_examples=200)
@given(EVENTS, st.integers(0, 10**VERSION_DIGITS - 1))
def test_decode_gives_back_what_was_encoded(events, version):
    state = apply(events)
    decoded = decode_state(encode_state(state, version))
    assert decoded == PersonState(state.journey, dataclasses.replace(state.fence, version=version))


def test_merged_ids_and_forwarding_survive():
    state = apply([(1, "email", False, None)])
    journey = msgspec.structs.replace(state.journey, merged=("a-1", "a-2"), merged_into="c-9")
    state = PersonState(journey, Fence(3, {"persons:2": 41, "persons:5": 7}, state.fence.recent))
    assert decode_state(encode_state(state, 3)) == state


def test_nothing_stored_is_a_fresh_person():
    assert decode_state(None) == PersonState()


def test_a_state_an_earlier_version_wrote_as_zlib_still_decodes():
    state = apply([(1, "email", False, None), (2 * MIN, "display", True, None)])
    written = encode_state(state, 7)
    plain = unpack(written[VERSION_DIGITS:])
    packer = zlib.compressobj(6, zdict=VOCABULARY)
    old = written[:VERSION_DIGITS] + packer.compress(plain) + packer.flush()
    assert old != written
    assert (
        decode_state(old)
        == decode_state(written)
        == PersonState(state.journey, dataclasses.replace(state.fence, version=7))
    )
