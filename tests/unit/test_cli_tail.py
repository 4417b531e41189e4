"""`touchstream tail`: one line per record, as the value or as a JSON object."""

from __future__ import annotations

import argparse

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from stream.cli.tail import _at_least, record_line


def record(key: bytes | None, value: bytes | None, headers=()) -> ConsumerRecord:
    return ConsumerRecord(
        "attribution.models", 3, 17, 1767225600000, 0, key, value, None, 0, 0, tuple(headers)
    )


def test_the_value_format_is_the_value_as_one_line() -> None:
    assert record_line(record(b"k", b'{"a": 1}'), "value") == b'{"a": 1}'
    assert record_line(record(b"k", None), "value") == b""
    assert record_line(record(None, b"caf\xc3\xa9 \xff"), "value") == "café \ufffd".encode()


def test_the_json_format_has_key_partition_offset_timestamp_headers_and_value() -> None:
    line = record_line(record(b"markov", b'{"a":1}', [("origin", b"w-1"), ("empty", None)]), "json")
    assert orjson.loads(line) == {
        "key": "markov",
        "partition": 3,
        "offset": 17,
        "timestamp": 1767225600000,
        "headers": [["origin", "w-1"], ["empty", None]],
        "value": '{"a":1}',
    }
    assert b"\n" not in line
    bare = orjson.loads(record_line(record(None, None), "json"))
    assert (bare["key"], bare["value"], bare["headers"]) == (None, None, [])
    assert orjson.loads(record_line(record(b"\xff", b"x"), "json"))["key"] == "\ufffd"


def test_counts_and_partitions_are_whole_numbers_from_a_minimum() -> None:
    assert _at_least(1)("3") == 3 and _at_least(0)("0") == 0
    for text, why in (("0", "must be 1 or more, got 0"), ("x", "expected a whole number, got 'x'")):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            _at_least(1)(text)
