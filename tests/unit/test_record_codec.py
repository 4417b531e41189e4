"""The stored conversion record (`record_codec`): it decodes to the very value emitted, keeps
no share it can compute again, and a 10-touch conversion fits in Redis's 1 KiB."""

from __future__ import annotations

import random
import uuid

import orjson
import pytest

from stream.attribution import HEURISTIC
from stream.core.config import DAY_MS, ModelParams
from stream.core.journey import Converted
from stream.core.output import attribution_doc
from stream.core.packing import pack_dense, unpack
from stream.core.record_codec import Basis, RecordError, decode_record, encode_record
from stream.core.records import AttributionInput, Event, Touchpoint
from stream.core.revenue import Stored

T0 = 1_780_000_000_000
PARAMS = ModelParams((0.3, 0.3, 0.4), 3 * DAY_MS)
CHANNELS = ("email", "paid_search", "display", "organic_search", "referral", "video")


def touch(rng: random.Random, ts: int) -> Touchpoint:
    channel = rng.choice(CHANNELS)
    return Touchpoint(
        ts=ts,
        channel=channel,
        session_id=str(uuid.UUID(int=rng.getrandbits(128))),
        source=rng.choice(("google", "newsletter", "partner")),
        medium=channel,
        campaign=rng.choice(("spring-sale", "brand", None)),
        interaction="click",
        medium_kind="digital",
        directness="direct",
        stage="pre_purchase",
        context={"page": rng.choice(("/", "/pricing", "/demo"))},
        cost=rng.choice((0.0, 0.02, 1.2)),
        content=rng.choice((None, "banner")),
    )


def conversion(n: int, seed: int = 1, value: float = 120.5) -> tuple[dict, Basis]:
    """A conversion over `n` touches a few hours apart under every heuristic model, plus
    three data-driven models' shares (each touch ∝ a weight of its channel drawn at random, as
    a snapshot gives: they are kept, not computed again)."""
    rng = random.Random(seed)
    touches = tuple(touch(rng, T0 + i * 3_600_000 + rng.randrange(1000)) for i in range(n))
    at = T0 + n * 3_600_000
    inp = AttributionInput(touches, at, lead_ts=touches[n // 2].ts if n else None)
    event = Event(
        str(uuid.UUID(int=rng.getrandbits(128))),
        "conversion",
        at,
        "c-283",
        conversion="purchase",
        conversion_id="order-77",
        value=value,
        currency="EUR",
    )
    doc = attribution_doc("c-283", Converted(event, inp), PARAMS, HEURISTIC)
    for name in ("markov", "shapley", "shapley_ordered"):
        weight = {channel: rng.random() for channel in CHANNELS}
        raw = [weight[t.channel] for t in touches]
        shares = [w / sum(raw) for w in raw]
        doc["models"][name] = {"shares": shares, "values": [s * value for s in shares]}
    return doc, Basis(PARAMS, inp.lead_ts, inp.opportunity_ts)


def stored_models(raw: bytes) -> list[str]:
    """The models whose shares a record keeps as numbers."""
    return orjson.loads(unpack(raw).partition(b"\n")[0])[11]


def test_a_record_decodes_to_the_value_emitted_and_its_basis() -> None:
    for n in (1, 2, 5, 10, 40):
        doc, basis = conversion(n, seed=n)
        raw = encode_record(doc, basis)
        assert decode_record(raw) == (doc, basis)
        assert Stored.loads(raw) == Stored(doc, basis=basis)


def test_heuristic_shares_are_computed_again_not_kept() -> None:
    doc, basis = conversion(10)
    assert stored_models(encode_record(doc, basis)) == ["markov", "shapley", "shapley_ordered"]
    assert stored_models(encode_record(doc)) == list(doc["models"])  # no basis: every share kept


def test_shares_that_do_not_come_out_again_are_kept() -> None:
    """Shares not equal to what the basis gives (here: time decay's reversed) are kept as
    they were emitted."""
    doc, basis = conversion(10)
    doc["models"]["time_decay"]["shares"] = list(reversed(doc["models"]["time_decay"]["shares"]))
    doc["models"]["time_decay"]["values"] = [s * 120.5 for s in doc["models"]["time_decay"]["shares"]]
    raw = encode_record(doc, basis)
    assert "time_decay" in stored_models(raw)
    assert decode_record(raw) == (doc, basis)


def test_an_unattributed_conversion() -> None:
    doc, basis = conversion(0)
    assert doc["unattributed"] and doc["models"]["linear"] == {"shares": [], "values": []}
    assert decode_record(encode_record(doc, basis)) == (doc, basis)


def test_a_record_written_as_the_plain_value_still_decodes() -> None:
    doc, _ = conversion(3)
    assert decode_record(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)) == (doc, None)


def test_a_ten_touch_record_fits_in_redis_one_kib() -> None:
    """Redis (valkey 9) holds a string of up to ~950 bytes under a conversion key in
    1 KiB (`MEMORY USAGE`: 72 bytes of key and overhead); the plain value took ~5.6 KB."""
    doc, basis = conversion(10)
    assert len(orjson.dumps(doc)) > 5000
    assert len(encode_record(doc, basis)) < 950


def test_bytes_that_are_no_record_are_refused_with_a_reason() -> None:
    """Corrupt bytes, or a record of a format this version does not know (a later release's,
    read during a rollback), raise `RecordError`: the store reads such a record as none."""
    doc, basis = conversion(3)
    raw = encode_record(doc, basis)
    later = pack_dense(b"[2]\n")
    for bad, reason in (
        (raw[:20], r"^an unreadable stored conversion record \(ZstdError: "),
        (b"\x00\x01garbage", r"^an unreadable stored conversion record \("),
        (later, r"^a stored conversion record of format 2, not 1$"),
    ):
        with pytest.raises(RecordError, match=reason):
            decode_record(bad)
