"""Event-time order across partitions (stream.adapters.kafka.alignment): pure, no broker."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from stream.adapters.kafka.alignment import Positions, merged


@dataclass(frozen=True)
class Rec:
    partition: str
    offset: int
    timestamp: float  # seconds


def recs(partition: str, *stamps: float) -> list[Rec]:
    return [Rec(partition, i, ts) for i, ts in enumerate(stamps)]


def test_positions_and_their_spread() -> None:
    positions: Positions[str] = Positions()
    positions.fetched("a", recs("a", 100, 200))
    positions.fetched("b", recs("b", 105))
    positions.fetched("c", [])  # an empty fetch moves nothing
    assert positions.positions == {"a": 200, "b": 105}
    assert positions.skew_ms(["a", "b"]) == 95_000
    assert positions.skew_ms(["a"]) == 0.0  # b caught up: only partitions with records left count
    positions.forget()
    assert positions.skew_ms(["a", "b"]) == 0.0


@given(st.dictionaries(st.sampled_from("abcd"), st.lists(st.integers(0, 10_000), max_size=30)))
def test_merged_keeps_every_record_once_in_partition_order(stamps: dict[str, list[int]]) -> None:
    runs = [recs(p, *ts) for p, ts in stamps.items()]
    out = merged(runs)
    assert sorted((r.partition, r.offset) for r in out) == sorted(
        (r.partition, r.offset) for run in runs for r in run
    )
    for partition in stamps:
        offsets = [r.offset for r in out if r.partition == partition]
        assert offsets == sorted(offsets)
    if all(ts == sorted(ts) for ts in stamps.values()):
        assert [r.timestamp for r in out] == sorted(r.timestamp for r in out)
