"""Event-time alignment across partitions (stream.adapters.kafka.alignment): pure, no broker."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from stream.adapters.kafka.alignment import Aligner, merged

NOW = 10_000_000
BOUND = 100


@dataclass(frozen=True)
class Rec:
    partition: str
    offset: int
    ts: int | None  # event time, ms


def recs(partition: str, *stamps: int | None, start: int = 0) -> list[Rec]:
    return [Rec(partition, start + i, ts) for i, ts in enumerate(stamps)]


def aligner(cap: int = 1000) -> Aligner[str, Rec]:
    return Aligner(lambda r: r.ts, BOUND, cap)


def offsets(released: dict[str, list[Rec]]) -> dict[str, list[int]]:
    return {p: [r.offset for r in rs] for p, rs in released.items()}


def test_partitions_in_step_hand_everything_on() -> None:
    a = aligner()
    a.add("a", recs("a", 1000, 1050))
    a.add("b", recs("b", 1020, 1090))
    assert offsets(a.release(behind={"a", "b"}, now_ms=NOW)) == {"a": [0, 1], "b": [0, 1]}
    assert a.held == {}


def test_a_partition_ahead_waits_for_one_with_records_to_come() -> None:
    a = aligner()
    a.add("a", recs("a", 1000, 5000, 5050))  # runs ahead
    a.add("b", recs("b", 1010))  # behind: more on the broker
    assert offsets(a.release(behind={"a", "b"}, now_ms=NOW)) == {"a": [0], "b": [0]}
    assert a.skew_ms({"b"}, NOW) == 5000 - 1010  # a's next record against b's position
    # b fetches more, up to 4950: a may run 100 ms ahead of it
    a.add("b", recs("b", 3000, 4950, start=1))
    assert offsets(a.release(behind={"b"}, now_ms=NOW)) == {"a": [1, 2], "b": [1, 2]}


def test_a_partition_with_nothing_left_holds_nobody_back() -> None:
    a = aligner()
    a.add("a", recs("a", 9000))
    a.add("b", recs("b", 1000))
    a.release(behind={"a", "b"}, now_ms=NOW)  # b's one record goes; a waits
    assert offsets(a.release(behind={"a"}, now_ms=NOW)) == {"a": [0]}  # b is drained


def test_a_partition_not_fetched_yet_holds_the_others_back_for_a_while() -> None:
    """b has records on the broker but none fetched yet: its head is unknown, so a waits
    (else the first partition fetched would run through its whole backlog alone) — for
    `wait_ms` at most."""
    a = aligner()
    a.add("a", recs("a", 1000, 9000))
    assert a.release(behind={"a", "b"}, now_ms=NOW) == {}
    assert a.release(behind={"a", "b"}, now_ms=NOW + a.wait_ms) == {}
    assert offsets(a.release(behind={"a", "b"}, now_ms=NOW + a.wait_ms + 1)) == {"a": [0, 1]}


def test_records_without_an_event_time_never_wait() -> None:
    a = aligner()
    a.add("a", recs("a", None, None, 9000, None))
    a.add("b", recs("b", 1000))
    assert offsets(a.release(behind={"a", "b"}, now_ms=NOW)) == {"a": [0, 1], "b": [0]}


def test_a_future_event_time_counts_as_now() -> None:
    """A producer's clock a day ahead must not hold its partition back for a day."""
    a = aligner()
    a.add("a", recs("a", NOW + 86_400_000))
    a.add("b", recs("b", NOW - 50))
    assert offsets(a.release(behind={"a", "b"}, now_ms=NOW)) == {"a": [0], "b": [0]}


def test_a_full_partition_is_left_out_of_fetches_and_forget_drops_all() -> None:
    a = aligner(cap=2)
    a.add("a", recs("a", 5000, 5001, 5002))
    a.add("b", recs("b", 1000))
    a.release(behind={"a", "b"}, now_ms=NOW)
    assert a.saturated() == {"a"}
    a.forget()
    assert a.held == {} and a.positions == {} and a.saturated() == set()


streams = st.dictionaries(
    st.sampled_from("abcd"), st.lists(st.integers(0, 2000), min_size=1, max_size=25), min_size=1
)


@given(streams, st.lists(st.integers(1, 6), min_size=1, max_size=30))
def test_every_record_is_handed_on_once_in_order_and_never_far_ahead_of_one_to_come(
    stamps: dict[str, list[int]], chunks: list[int]
) -> None:
    """Partitions fetched in chunks of random sizes (event times rising within each): every
    record comes out once, each partition in offset order, and none comes out more than the
    bound ahead of a record that has not come out yet, from any partition."""
    a = aligner()
    left = {p: recs(p, *sorted(ts)) for p, ts in stamps.items()}
    out: dict[str, list[Rec]] = {p: [] for p in stamps}
    fetch = 0
    while any(left.values()) or a.held:
        for p in sorted(left):
            take = chunks[fetch % len(chunks)]
            fetch += 1
            a.add(p, left[p][:take])
            left[p] = left[p][take:]
        released = a.release({p for p, rest in left.items() if rest}, NOW)
        to_come = [r.ts for rest in left.values() for r in rest] + [r.ts for q in a.held.values() for r in q]
        for p, rs in released.items():
            out[p] += rs
            assert all(r.ts <= min(to_come) + BOUND for r in rs if to_come)
    assert {p: [r.offset for r in rs] for p, rs in out.items()} == {
        p: list(range(len(ts))) for p, ts in stamps.items()
    }


@given(st.dictionaries(st.sampled_from("abcd"), st.lists(st.integers(0, 10_000), max_size=30)))
def test_merged_keeps_every_record_once_in_partition_order(stamps: dict[str, list[int]]) -> None:
    runs = [recs(p, *ts) for p, ts in stamps.items()]
    out = merged(runs, key=lambda r: r.ts)
    assert sorted((r.partition, r.offset) for r in out) == sorted(
        (r.partition, r.offset) for run in runs for r in run
    )
    for partition in stamps:
        offsets_seen = [r.offset for r in out if r.partition == partition]
        assert offsets_seen == sorted(offsets_seen)
    if all(ts == sorted(ts) for ts in stamps.values()):
        assert [r.ts for r in out] == sorted(r.ts for r in out)
