"""What a person's Redis keys hold, as bytes: the state value and the outbox entries.

Pure. A person's state is one value: a 12-digit write version (`apply.lua` reads it
with GETRANGE to refuse stale writers), then a Zstandard frame — compressed with a
preset dictionary of common marketing words — of the compact journey, the last offset
per `topic:partition`, and the recent (id key, content digest) pairs as one run of hex
digits (`packing`). Zstandard (level 1, dictionary prepared once) packs a state as small as
zlib at level 6 did in well under half its CPU; states written by earlier versions as zlib
streams still decode. An outbox entry is one event's outputs, kept from the state write
until Kafka acknowledged them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson

from stream.core.codec import decode_journey, encode_journey
from stream.core.output import Message, conversion_messages
from stream.core.packing import pack, unpack
from stream.core.person import DIGEST_HEX, ID_KEY_HEX, Fence, PersonState
from stream.core.topics import CONVERSIONS, CREDITS

VERSION_DIGITS = 12  # apply.lua reads the version off the value's first bytes (GETRANGE)
_ENTRY = ID_KEY_HEX + DIGEST_HEX  # one remembered event id: id_key then content digest


def encode_state(state: PersonState, version: int) -> bytes:
    """A person's journey and fence as one value, stamped with `version`: the compact
    journey, the offsets, and the recent (id key, digest) pairs as one run of hex digits."""
    fence = orjson.dumps(state.fence.offsets) + b"\n" + "".join(k + d for k, d in state.fence.recent).encode()
    payload = pack(encode_journey(state.journey) + b"\n" + fence)
    return b"%0*d" % (VERSION_DIGITS, version) + payload


def decode_state(raw: bytes | None) -> PersonState:
    if not raw:
        return PersonState()
    data = unpack(raw[VERSION_DIGITS:])
    journey, offsets, recent = data.split(b"\n")
    pairs = recent.decode()
    entries = tuple(
        (pairs[i : i + ID_KEY_HEX], pairs[i + ID_KEY_HEX : i + _ENTRY]) for i in range(0, len(pairs), _ENTRY)
    )
    version = int(raw[:VERSION_DIGITS])
    return PersonState(decode_journey(journey), Fence(version, orjson.loads(offsets), entries))


def encode_outbox_entry(messages: Iterable[Message]) -> bytes:
    """One offset's outputs as stored in the outbox. Credit rows (~70 per conversion) are
    left out: `decode_outbox_entry` derives them again from their conversion value, byte
    for byte."""
    return orjson.dumps(
        [
            (m.topic, None if m.key is None else m.key.decode(), m.value.decode())
            for m in messages
            if m.topic != CREDITS
        ]
    )


def decode_outbox_entry(entry: bytes, credit_models: Sequence[str] | None = None) -> list[Message]:
    """The outputs of an outbox entry; credit rows of every model or of `credit_models`."""
    messages: list[Message] = []
    for topic, k, v in orjson.loads(entry):
        if topic == CONVERSIONS:
            messages += conversion_messages(orjson.loads(v), credit_models)  # the value and its credit rows
        else:
            messages.append(Message(topic, None if k is None else k.encode(), v.encode()))
    return messages
