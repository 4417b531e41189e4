"""Which partition a key goes to: Kafka's default partitioner, as a pure function.

Kafka's Java client, aiokafka and every other client that follows it put a keyed record
on partition `murmur2(key) & 0x7fffffff` modulo the partition count. The batch mode uses
it to know which partition's watermark a person's events advance, the emitter to build
one record batch per partition; a unit test holds it equal to aiokafka's.
"""

from __future__ import annotations

_SEED, _M, _MASK = 0x9747B28C, 0x5BD1E995, 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 as `org.apache.kafka.common.utils.Utils.murmur2` computes it."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & ~3
    extra = length % 4
    if extra >= 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def key_hash(key: bytes) -> int:
    """The non-negative hash a keyed record's partition is `key_hash(key) % partitions` of."""
    return murmur2(key) & 0x7FFFFFFF


def partition_of(key: bytes, partitions: int) -> int:
    return key_hash(key) % partitions
