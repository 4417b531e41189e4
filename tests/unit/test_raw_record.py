"""A fetched Kafka record as the handlers see it: its time is the `source_ms` header where
the emitter set one, and a producer's own header of that name never breaks the fetch."""

from __future__ import annotations

import pytest
from aiokafka.structs import ConsumerRecord

from stream.adapters.kafka.consumer import _raw_record


def fetched(headers: list[tuple[str, bytes | None]]) -> ConsumerRecord:
    return ConsumerRecord("t", 0, 7, 1_790_000_000_000, 1, b"k", b"v", None, 1, 1, headers)


def test_the_source_time_header_is_the_records_time() -> None:
    assert _raw_record(fetched([("source_ms", b"1700000000000")]), None).timestamp == 1_700_000_000.0


@pytest.mark.parametrize("value", [b"soon", b"", b"-5", None])
def test_a_source_time_header_that_is_no_number_is_ignored(value: bytes | None) -> None:
    assert _raw_record(fetched([("source_ms", value)]), None).timestamp == 1_790_000_000.0
