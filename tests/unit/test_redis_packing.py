"""The worker's Redis connections pack commands with hiredis: byte for byte what redis-py's
own (Python) packer sends, for the kinds of arguments the stores use."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from stream.adapters.redis.connection import connect

COMMANDS = [
    ("EVALSHA", "0123abcd", 2, "ts:{p:c-7}:state", "ts:{p:c-7}:out", 0, b"\x00\xff" * 600, -1, 2**40),
    ("SET", "ts:id:a-1", "c-7", "NX", "GET", "PX", 31536000000),
    ("ZRANGEBYSCORE", "ts:{agg:3}:open", "-inf", 1790000000000, "LIMIT", 0, 1000, "WITHSCORES"),
    ("HMGET", "ts:{p:é}:out", "touchpoints.raw:3@12"),
    ("CONFIG GET", "maxmemory-policy"),
]


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("redis://127.0.0.1:6379/0", Connection),
        ("rediss://h:6380", SSLConnection),
        ("unix:///tmp/r.sock", UnixDomainSocketConnection),
    ],
)
def test_hiredis_packs_what_redis_py_packs(url: str, base: type) -> None:
    cls = connect(url).connection_pool.connection_class
    assert issubclass(cls, base) and cls is not base
    ours, theirs = cls(), base()
    for command in COMMANDS:
        assert b"".join(ours.pack_command(*command)) == b"".join(theirs.pack_command(*command))


def test_an_argument_redis_cannot_take_is_refused_as_redis_py_refuses_it() -> None:
    cls = connect("redis://127.0.0.1:6379/0").connection_pool.connection_class
    with pytest.raises(DataError):
        cls().pack_command("SET", "k", True)
