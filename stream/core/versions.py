"""The version of the public values' JSON Schemas (`stream/schemas/`), in a module of its
own so that both the output builders (`stream.core.output`) and the model snapshot
(`stream.attribution.snapshot`, which `output` imports) can name it."""

from __future__ import annotations

# 2: touchpoints and credit rows carry `term` and `content`; 3: attribution.models values
# of Zhao et al.'s Shapley (`values`, `value_values`), `shapley_ordered`, and markov's
# `value_removal_effects` (no `exact`, `error_bound`); conversions credit `shapley_ordered`
SCHEMA_VERSION = 3
