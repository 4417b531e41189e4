"""The Redis a test's settings name: a single server or a Redis Cluster, under the settings'
key prefix.

`SINGLE_AND_CLUSTER` parametrises a test (through the `redis_backend` fixture of
tests/conftest.py) to run once on the session's redis-server and once on the session's
Redis Cluster (3 primaries, 3 replicas) under another key prefix; the cluster case is
marked `cluster`, so `pytest -m cluster` runs exactly those.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
import redis
from redis.cluster import RedisCluster

from stream.adapters.redis.connection import seed_urls
from stream.adapters.redis.keys import Keys
from stream.settings import Settings

CLUSTER_PREFIX = "tsc"  # the cluster cases' keys: not the default prefix, so it is proven too

SINGLE_AND_CLUSTER = pytest.mark.parametrize(
    "redis_backend", ["single", pytest.param("cluster", marks=pytest.mark.cluster)], indirect=True
)


def client(settings: Settings) -> redis.Redis | RedisCluster:
    """A synchronous client of the settings' Redis (a cluster client for a cluster); use it
    in a `with` block."""
    if settings.redis_cluster:
        return RedisCluster.from_url(seed_urls(settings.redis_url)[0])
    return redis.Redis.from_url(settings.redis_url)


def keys(settings: Settings) -> Keys:
    """The key names the settings' workers use."""
    return Keys(settings.redis_prefix)


def get_many(settings: Settings, names: Iterable[str]) -> list[bytes | None]:
    """The values of keys `names`, in order: one GET each in a pipeline (the keys of several
    persons are on several cluster slots, where MGET cannot go)."""
    with client(settings) as c:
        pipe = c.pipeline(transaction=False)
        for name in names:
            pipe.get(name)
        return pipe.execute()
