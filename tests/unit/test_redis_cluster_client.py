"""The cluster client, the key prefix and what a cluster's failures count as (no server
needed: building a client connects nothing)."""

from __future__ import annotations

import inspect

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection, SSLConnection
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MasterDownError,
    MovedError,
    RedisClusterException,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from stream.adapters.redis.connection import connect, seed_urls
from stream.adapters.redis.keys import Keys
from stream.errors import SettingsError
from stream.runtime.retry import is_transient
from stream.settings import Settings

COMMAND = ("EVALSHA", "0123abcd", 2, "ts:{p:c-7}:state", "ts:{p:c-7}:out", 0, b"\x00\xff" * 600, -1)


def test_seed_urls_are_comma_separated() -> None:
    assert seed_urls(" redis://a:7000/0, redis://b:7001/0 ,") == ["redis://a:7000/0", "redis://b:7001/0"]
    with pytest.raises(ValueError):
        seed_urls(" , ")


def test_the_cluster_client_knows_every_seed_and_packs_with_hiredis() -> None:
    client = connect("redis://u:secret@127.0.0.1:7000/0,redis://127.0.0.2:7001/0", cluster=True)
    assert isinstance(client, RedisCluster)
    seeds = client.nodes_manager.startup_nodes.values()
    assert sorted((n.host, n.port) for n in seeds) == [("127.0.0.1", 7000), ("127.0.0.2", 7001)]
    kwargs = client.connection_kwargs
    assert (kwargs["password"], kwargs["socket_timeout"]) == ("secret", None)
    for cls in [kwargs["connection_class"], *(n.connection_class for n in seeds)]:
        assert issubclass(cls, Connection) and cls is not Connection
        assert b"".join(cls().pack_command(*COMMAND)) == b"".join(Connection().pack_command(*COMMAND))


def test_a_tls_cluster_stays_tls() -> None:
    client = connect("rediss://127.0.0.1:7000", cluster=True)
    assert issubclass(client.connection_kwargs["connection_class"], SSLConnection)


def test_the_prefix_comes_first_and_holds_no_brace() -> None:
    assert Keys("prod-eu").person("c-7", "state") == "prod-eu:{p:c-7}:state"
    assert Keys("prod-eu").identity("a-1") == "prod-eu:id:a-1"
    assert Keys().partition(3, "paths") == "ts:{agg:3}:paths"
    for bad in ("", "a{b", "x}", "with space", ":lead"):
        with pytest.raises(ValueError):
            Keys(bad)
        with pytest.raises(SettingsError, match="TOUCHSTREAM_REDIS_PREFIX"):
            Settings.from_env({"TOUCHSTREAM_REDIS_PREFIX": bad})


def test_cluster_settings() -> None:
    settings = Settings.from_env(
        {"TOUCHSTREAM_REDIS_CLUSTER": "true", "TOUCHSTREAM_REDIS_URL": "redis://a:7000,redis://b:7000"}
    )
    assert settings.redis_cluster and settings.redis_prefix == "ts"
    assert not Settings().redis_cluster
    with pytest.raises(
        SettingsError, match=r"database 0 only, got redis://a:7000/0,redis://u:\*\*\*@a:7000/2$"
    ):
        Settings(redis_url="redis://a:7000/0,redis://u:secret@a:7000/2", redis_cluster=True)
    assert Settings(redis_url="redis://a:7000/2").redis_url.endswith("/2")  # one server: any database


@pytest.mark.parametrize(
    "exc",
    [
        ClusterDownError("CLUSTERDOWN The cluster is down"),
        MasterDownError("MASTERDOWN Link with MASTER is down"),
        TryAgainError("TRYAGAIN Multiple keys request during rehashing of slot"),
        MovedError("3999 127.0.0.1:6381"),
        AskError("3999 127.0.0.1:6381"),
        SlotNotCoveredError("Slot 3999 is not covered by the cluster."),
        # redis-py's own words while nodes fail over or join (no cause attached)
        RedisClusterException("All slots are not covered after query all startup_nodes. 16384 of 16384"),
        RedisClusterException("startup_nodes could not agree on a valid slots cache: a vs b on slot: 1"),
    ],
)
def test_a_cluster_in_transition_is_transient(exc: BaseException) -> None:
    assert is_transient(exc)


def test_no_reachable_node_is_transient_but_a_misuse_is_not() -> None:
    try:
        raise RedisClusterException("Redis Cluster cannot be connected") from RedisConnectionError("refused")
    except RedisClusterException as exc:
        assert is_transient(exc)
    assert not is_transient(RedisClusterException("EVALSHA - all keys must map to the same key slot"))
    assert not is_transient(ResponseError("CROSSSLOT Keys in request don't hash to the same slot"))


def test_the_private_hook_the_observed_cluster_overrides_keeps_its_shape() -> None:
    """`ObservedCluster` counts the client's own retries through redis-py's private
    `_record_error_metric`: an upgrade that renames or reshapes it fails here, not silently."""
    hook = RedisCluster._record_error_metric
    assert inspect.iscoroutinefunction(hook)
    assert list(inspect.signature(hook).parameters)[:4] == ["self", "error", "connection", "is_internal"]
    calls = inspect.getsource(RedisCluster._execute_command)
    assert calls.count("await self._record_error_metric(") >= 2  # the MOVED/ASK/TRYAGAIN paths
