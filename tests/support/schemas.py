"""The JSON Schemas of the public values (`stream/schemas/*.schema.json`), and checking
a value against one with the draft each schema declares."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import orjson
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from stream.core.topics import CONVERSIONS, CREDITS, DLQ, IDENTITY_CONFLICTS, MODELS, SESSIONS

SCHEMA_OF_TOPIC = {
    CONVERSIONS: "conversion",
    CREDITS: "credit",
    SESSIONS: "session",
    DLQ: "dlq",
    MODELS: "model",
    IDENTITY_CONFLICTS: "identity-conflict",
}


@cache
def schema(name: str) -> dict[str, Any]:
    """`stream/schemas/<name>.schema.json`, as shipped in the package."""
    path = resources.files("stream").joinpath(f"schemas/{name}.schema.json")
    return orjson.loads(path.read_bytes())


@cache
def validator(name: str) -> Validator:
    """A validator of the draft the schema declares (its `$schema`), the schema checked first."""
    doc = schema(name)
    cls = validator_for(doc)
    cls.check_schema(doc)
    return cls(doc)


def validate(name: str, value: Any) -> None:
    """Raise `jsonschema.ValidationError` unless `value` is valid under schema `name`."""
    validator(name).validate(value)


def schema_of_topic(topic: str) -> str:
    """The schema of a public topic's values, from its (possibly prefixed) Kafka name."""
    [name] = [name for logical, name in SCHEMA_OF_TOPIC.items() if topic.endswith(logical)]
    return name
