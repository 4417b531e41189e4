"""The Redis key layout (Redis Cluster safe: every multi-key script stays in one slot).

Every key starts with the deployment's prefix (`TOUCHSTREAM_REDIS_PREFIX`, default `ts`),
so several deployments can share one Redis or one cluster:

    ts:{p:ID}:state          string  a person's state: write version, then the compressed journey,
                                     offsets and recent event ids (stream.core.state_codec)
    ts:{p:ID}:out            hash    topic:partition@offset -> that event's outputs, until Kafka
                                     acknowledged them
                                     (re-emitted by a replay that finds the state already written)
    ts:{p:ID}:conv:<cid>     string  conversion <cid>: its latest attribution value
    ts:{p:ID}:revenue:<cid>  string  conversion <cid>: the revenue credited to it so far (total, events)
    ts:cid:<cid>             string  the person of conversion <cid> (routes revenue without a person id)
    ts:id:<anonymous_id>     string  the customer an anonymous id was identified as (first wins)
    ts:{agg:P}:open          zset    persons of partition P with an open session, by last interaction ts
    ts:{agg:P}:active        zset    persons of partition P with a journey, by last event ts (expiry)
    ts:{agg:P}:paths         hash    path counts the data-driven models learn from (paths.lua)
    ts:{agg:P}:paths-fence   string  last offset of person-keyed partition P whose path counts are applied
    ts:{agg:P}:paths-fence:raw  string  the same for raw partition P (events applied where read)
    ts:{agg:P}:report:<day>  hash    partition P's report counters of one UTC day (paths.lua)
    ts:{agg:P}:raw-watermark hash    raw partition P: ts = highest event ts ingested, at = when (wall
                                     clock) it last had events; the sweeper expires by the lowest
    ts:{models}:id / :current        the current data-driven model snapshot

Every key of a person shares the hash tag `{p:<id>}`, every aggregate of a partition the
tag `{agg:<partition>}` and the snapshot's two keys the tag `{models}`, so one Lua script
can write them atomically in a cluster. The prefix holds no brace, so the first `{…}` of
a key is always that tag (whatever braces a person id holds: the tag then ends at the
id's first `}`, the same for every key of the person). The key sets the scripts receive
come from `person_keys`, `partition_keys` and `snapshot_keys` (one slot each:
tests/unit/test_redis_slots.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

DEFAULT_PREFIX = "ts"
PREFIX_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")  # no brace: the hash tag comes after it


@dataclass(frozen=True, slots=True)
class Keys:
    """The key names of one deployment, all under `prefix`."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not PREFIX_PATTERN.fullmatch(self.prefix):
            raise ValueError(
                f"a Redis key prefix is letters, digits and _ . : - (no braces), got {self.prefix!r}"
            )

    def person(self, person_id: str, name: str) -> str:
        return f"{self.prefix}:{{p:{person_id}}}:{name}"

    def person_keys(self, person_id: str, names: Iterable[str]) -> list[str]:
        """The person's keys `names`, in that order: one slot (`apply.lua`)."""
        return [self.person(person_id, name) for name in names]

    def identity(self, anonymous_id: str) -> str:
        return f"{self.prefix}:id:{anonymous_id}"

    def conversion_index(self, conversion_id: str) -> str:
        return f"{self.prefix}:cid:{conversion_id}"

    def partition(self, partition: int, name: str) -> str:
        return f"{self.prefix}:{{agg:{partition}}}:{name}"

    def partition_keys(self, partition: int, names: Iterable[str]) -> list[str]:
        """The partition's aggregates `names`, in that order: one slot (`paths.lua`)."""
        return [self.partition(partition, name) for name in names]

    def snapshot_keys(self) -> list[str]:
        """The current snapshot's id and its values: one slot (`snapshot.lua`)."""
        return [f"{self.prefix}:{{models}}:id", f"{self.prefix}:{{models}}:current"]


DEFAULT = Keys()
# The default deployment's keys, for tools and tests that run with the default prefix.
key, identity_key = DEFAULT.person, DEFAULT.identity
conversion_index_key, partition_key = DEFAULT.conversion_index, DEFAULT.partition
SNAPSHOT_ID, SNAPSHOT = DEFAULT.snapshot_keys()


def script(name: str) -> str:
    """The text of `lua/<name>.lua`, shipped inside the package."""
    return resources.files("stream.adapters.redis").joinpath(f"lua/{name}.lua").read_text()


def scripts() -> list[str]:
    """The text of every script shipped in `lua/`."""
    folder = resources.files("stream.adapters.redis").joinpath("lua")
    return [f.read_text() for f in folder.iterdir() if f.name.endswith(".lua")]
