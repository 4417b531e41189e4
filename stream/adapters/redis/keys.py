"""The Redis key layout (Redis Cluster safe: every multi-key script stays in one slot).

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
    ts:{agg:P}:raw-watermark hash    raw partition P: ts = highest event ts ingested, at = when (wall
                                     clock) it last had events; the sweeper expires by the lowest
    ts:{models}:id / :current        the current data-driven model snapshot

Every key of a person shares the hash tag `{p:<id>}` and every aggregate of a partition
the tag `{agg:<partition>}`, so one Lua script can write them atomically in a cluster.
"""

from __future__ import annotations

from importlib import resources

SNAPSHOT_ID, SNAPSHOT = "ts:{models}:id", "ts:{models}:current"


def key(person_id: str, name: str) -> str:
    return f"ts:{{p:{person_id}}}:{name}"


def identity_key(anonymous_id: str) -> str:
    return f"ts:id:{anonymous_id}"


def conversion_index_key(conversion_id: str) -> str:
    return f"ts:cid:{conversion_id}"


def partition_key(partition: int, name: str) -> str:
    return f"ts:{{agg:{partition}}}:{name}"


def script(name: str) -> str:
    """The text of `lua/<name>.lua`, shipped inside the package."""
    return resources.files("stream.adapters.redis").joinpath(f"lua/{name}.lua").read_text()


def scripts() -> list[str]:
    """The text of every script shipped in `lua/`."""
    folder = resources.files("stream.adapters.redis").joinpath("lua")
    return [f.read_text() for f in folder.iterdir() if f.name.endswith(".lua")]
