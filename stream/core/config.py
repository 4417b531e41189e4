"""The pure core's configuration: plain frozen values, built from `Settings` at the edge.

Nothing here reads the environment or knows about `stream.settings`: the settings
loader builds a `Config` and `Limits` (`Settings.config()`, `Settings.limits()`) and
hands them in, so the core, the batch mode and the tests can build their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
# The sweeper expires a journey only once its partition's event-time watermark is this far
# past the lookback, so that an event a little behind the watermark still finds its journey
# (as it does when the journey expires inline, on the person's own next event).
EXPIRY_SLACK_MS = HOUR_MS
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class Rules:
    """Sessionisation and lookback. `lookback_ms` applies to conversion types without an
    entry in `lookback_by_type`; journeys are kept (and expire) by the longest of them.

    `rederive_ms`: how far behind the person's last event the raw interactions of a
    session are kept (at most `journey_cap` of them), so that a late interaction is put at
    its exact place — its sessions re-derived; an older one becomes a touchpoint of its own.
    """

    session_timeout_ms: int = 30 * MINUTE_MS
    lookback_ms: int = 90 * DAY_MS
    journey_cap: int = 200
    lookback_by_type: tuple[tuple[str, int], ...] = ()
    rederive_ms: int = 90 * DAY_MS
    longest: int = field(init=False, compare=False, repr=False)  # the longest lookback (asked per event)

    def __post_init__(self) -> None:
        object.__setattr__(self, "longest", max([self.lookback_ms, *(ms for _, ms in self.lookback_by_type)]))

    def window(self, conversion: str | None) -> int:
        """The lookback of a conversion type."""
        return dict(self.lookback_by_type).get(conversion or "", self.lookback_ms)


@dataclass(frozen=True, slots=True)
class ModelParams:
    """Per-deployment (settings) or per-call (CLI) model parameters."""

    position_weights: tuple[float, float, float] = (0.4, 0.2, 0.4)
    half_life_ms: int = 7 * DAY_MS


@dataclass(frozen=True, slots=True)
class Limits:
    """What validation accepts (`stream.core.validation`)."""

    max_value_bytes: int = 64 * 1024
    max_context_bytes: int = 4096
    max_future_skew_ms: int = DAY_MS


@dataclass(frozen=True, slots=True)
class Config:
    """What the per-person step needs; the worker and `touchstream attribute` share it.

    `models`: the attribution models to compute (registered names, `stream.attribution`),
    data-driven ones included; `recent_ids`: event ids remembered per person for dedup;
    `credit_models`: the models whose `attribution.credits` rows are written (None: all
    of `models`, empty: none); `currency`: that of conversions, revenue and spend that name
    none (the report counters keep money per currency)."""

    rules: Rules = Rules()
    params: ModelParams = ModelParams()
    models: tuple[str, ...] = ()
    recent_ids: int = 256
    credit_models: tuple[str, ...] | None = None
    currency: str = "EUR"


@dataclass(frozen=True, slots=True)
class ReportLimits:
    """How long a day's report counters are kept, and how many distinct ones a partition's
    day holds before new ones fold into `(other)`."""

    retention_days: int = 400
    max_counters: int = 100_000

    def expires_at(self, day: str) -> int:
        """Epoch ms when the counters of `day` go: the end of the day plus the retention."""
        return (date.fromisoformat(day).toordinal() - _EPOCH_ORDINAL + 1 + self.retention_days) * DAY_MS
