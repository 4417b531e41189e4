"""Kafka's default partitioner as a pure function equals aiokafka's (the producers' choice)."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner, murmur2
from hypothesis import given
from hypothesis import strategies as st

from stream.core.partitioning import key_hash, partition_of
from stream.core.partitioning import murmur2 as ours


@given(st.binary(max_size=64))
def test_murmur2_equals_aiokafkas(data: bytes) -> None:
    assert ours(data) == murmur2(data)


@given(st.text(min_size=1, max_size=40), st.integers(1, 64))
def test_partition_equals_the_default_partitioners(person: str, partitions: int) -> None:
    key = person.encode()
    everything = list(range(partitions))
    assert partition_of(key, partitions) == DefaultPartitioner()(key, everything, everything)
    assert 0 <= key_hash(key) < 2**31


def test_known_values() -> None:
    # from the Java client's own test (org.apache.kafka.common.utils.UtilsTest.testMurmur2)
    assert ours(b"21") == -973932308 & 0xFFFFFFFF
    assert ours(b"foobar") == -790332482 & 0xFFFFFFFF
