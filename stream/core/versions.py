"""The version of the public values' JSON Schemas (`stream/schemas/`), in a module of its
own so that both the output builders (`stream.core.output`) and the model snapshot
(`stream.attribution.snapshot`, which `output` imports) can name it."""

from __future__ import annotations

SCHEMA_VERSION = 2  # 2: touchpoints and credit rows carry `term` and `content`
