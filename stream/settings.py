"""One frozen settings object, built at the edge from an environment mapping.

Every field has a documented `TOUCHSTREAM_<NAME>` variable; `Settings.from_env`
is the only place that reads the environment, and the CLI shows the variable
names in `--help`. Secrets (passwords inside URLs) never appear in `repr`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from stream.adapters.redis.keys import PREFIX_PATTERN
from stream.core.config import DAY_MS, HOUR_MS, MINUTE_MS, Config, Limits, ModelParams, ReportLimits, Rules
from stream.errors import SettingsError

PREFIX = "TOUCHSTREAM_"
KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def _setting(default: Any, help: str, parse: Callable[[str], Any] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "parse": parse})


def _duration_ms(text: str) -> int:
    """`90d`, `30m`, `10s`, `250ms` or a bare number of milliseconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", text)
    if not match:
        raise SettingsError(f"not a duration: {text!r} (use e.g. 30m, 90d, 500ms)")
    unit = {"ms": 1, "s": 1000, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS}
    return int(float(match.group(1)) * unit[match.group(2) or "ms"])


def _weights(text: str) -> tuple[float, float, float]:
    parts = tuple(float(p) for p in text.split(","))
    if len(parts) != 3 or not all(math.isfinite(p) and p >= 0 for p in parts) or sum(parts) <= 0:
        raise SettingsError(f"position weights need three non-negative numbers: {text!r}")
    return parts  # type: ignore[return-value]


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().upper()
        if value not in allowed:
            raise SettingsError(f"expected one of {', '.join(allowed)}, got {text!r}")
        return value

    return parse


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise SettingsError(f"expected true or false, got {text!r}")
    return value in ("true", "1", "yes", "on")


_protocol = _choice(*KAFKA_PROTOCOLS)
_mechanism = _choice("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _lookbacks(text: str) -> tuple[tuple[str, int], ...]:
    pairs = []
    for item in _names(text):
        name, sep, duration = item.partition("=")
        if not sep or not name.strip():
            raise SettingsError(f"expected type=duration, got {item!r}")
        pairs.append((name.strip(), _duration_ms(duration)))
    return tuple(pairs)


def _replicas(text: str) -> int | None:
    """`auto` (None) or a count of replicas, 0 or more."""
    if text.strip().lower() == "auto":
        return None
    count = int(text)
    if count < 0:
        raise SettingsError(f"expected auto or a number of replicas (0 or more), got {text!r}")
    return count


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def redact_url(url: str) -> str:
    """`redis://user:secret@host` -> `redis://user:***@host`; each of comma-separated URLs
    (a Redis Cluster's seeds) alike."""
    urls = re.split(r"(,\s*)(?=[a-z][a-z0-9+.-]*://)", url)  # separators kept, at odd indexes
    return "".join(re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", part) for part in urls)


@dataclass(frozen=True)
class Settings:
    """Everything a worker, the CLI and the tests configure."""

    kafka_bootstrap_servers: str = _setting(
        "127.0.0.1:9092", "Kafka bootstrap servers, host:port[,host:port]"
    )
    kafka_security_protocol: str = _setting(
        "PLAINTEXT", "Kafka security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", _protocol
    )
    kafka_sasl_mechanism: str = _setting(
        "PLAIN", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", _mechanism
    )
    kafka_sasl_username: str = _setting("", "SASL username")
    kafka_sasl_password: str = _setting("", "SASL password (secret: never printed)")
    kafka_ssl_cafile: str = _setting("", "CA file for SSL/SASL_SSL (default: system CAs)")
    kafka_ssl_certfile: str = _setting("", "Client certificate for SSL (mutual TLS)")
    kafka_ssl_keyfile: str = _setting("", "Client key for SSL (mutual TLS)")
    redis_url: str = _setting(
        "redis://127.0.0.1:6379/0",
        "Redis URL: redis://user:password@host/db, rediss:// for TLS (password never printed); "
        "with REDIS_CLUSTER, one or more seed nodes' URLs, comma separated",
    )
    redis_cluster: bool = _setting(
        False, "Redis Cluster: every client is a cluster client, found from the REDIS_URL seeds", _flag
    )
    redis_prefix: str = _setting(
        "ts", "Prefix of every Redis key: deployments with their own prefixes share one Redis or cluster"
    )
    redis_replicas: int | None = _setting(
        None,
        "Replicas of every Redis primary that must acknowledge a batch's writes (WAIT) before the "
        "batch is acked to Kafka; auto = 1 with REDIS_CLUSTER, else 0",
        _replicas,
    )
    redis_replica_timeout_ms: int = _setting(
        1000, "How long a batch waits for the replicas before it is retried", _duration_ms
    )
    app_id: str = _setting("touchstream", "Faust app id: consumer group and internal topic prefix")
    topic_prefix: str = _setting("", "Prefix prepended to every public topic name")
    partitions: int = _setting(8, "Partitions of the topics Touchstream creates", int)
    replication_factor: int = _setting(
        1, "Replication factor of the topics Touchstream creates (3 in production)", int
    )
    kafka_session_timeout_ms: int = _setting(
        30_000, "Consumer group session timeout: how soon a dead worker's partitions move", _duration_ms
    )
    web_host: str = _setting("127.0.0.1", "Worker web server bind address (/metrics, /dashboard)")
    web_port: int = _setting(6066, "Worker web server port (/metrics, /dashboard)", int)
    web_actions: bool = _setting(
        False, "Serve the state-changing web endpoints (POST /models/refresh); read-only if false", _flag
    )
    batch_size: int = _setting(
        1000, "Max records per Kafka fetch; each topic's share is processed as one batch", int
    )
    align_ms: int = _setting(
        60_000,
        "Event-time alignment of the raw partitions a worker reads: records of a partition more "
        "than this ahead of another partition's (that has records to come) are held back",
        _duration_ms,
    )
    commit_interval_ms: int = _setting(
        2800, "How often consumed offsets are committed to Kafka", _duration_ms
    )
    session_timeout_ms: int = _setting(
        30 * MINUTE_MS, "Inactivity gap that starts a new session", _duration_ms
    )
    lookback_ms: int = _setting(90 * DAY_MS, "Lookback window of a conversion", _duration_ms)
    lookback_by_type: tuple[tuple[str, int], ...] = _setting(
        (), "Lookback per conversion type, e.g. lead=30d,purchase=90d (others: LOOKBACK_MS)", _lookbacks
    )
    journey_cap: int = _setting(200, "Max touchpoints kept per journey", int)
    rederive_ms: int = _setting(
        90 * DAY_MS,
        "How far back (behind the person's last event) a late interaction still re-derives its "
        "sessions exactly; an older one becomes a touchpoint of its own",
        _duration_ms,
    )
    recent_ids: int = _setting(256, "Event ids remembered per person for dedup", int)
    conversion_ttl_ms: int = _setting(
        730 * DAY_MS,
        "How long a conversion is kept for late revenue (its record and its conversion-id index)",
        _duration_ms,
    )
    identity_ttl_ms: int = _setting(
        365 * DAY_MS, "How long an anonymous id stays mapped to the customer it identified as", _duration_ms
    )
    outbox_ttl_ms: int = _setting(
        7 * DAY_MS, "How long outputs not yet acknowledged by Kafka are kept for replay", _duration_ms
    )
    sweep_interval_ms: int = _setting(10_000, "How often idle sessions are closed", _duration_ms)
    idle_partition_ms: int = _setting(
        10 * MINUTE_MS,
        "A raw partition without events this long (wall clock) no longer holds back the low "
        "watermark that journeys expire by",
        _duration_ms,
    )
    max_value_bytes: int = _setting(64 * 1024, "Largest accepted raw value", int)
    max_context_bytes: int = _setting(4096, "Largest accepted `context` (serialised)", int)
    max_future_skew_ms: int = _setting(
        DAY_MS, "How far `ts` may be ahead of the record's Kafka timestamp", _duration_ms
    )
    models: tuple[str, ...] = _setting((), "Models to compute (comma separated; empty = all)", _names)
    credit_rows: str = _setting(
        "all", "Models with attribution.credits rows: all, off, or some of the models (comma separated)"
    )
    position_weights: tuple[float, float, float] = _setting(
        (0.4, 0.2, 0.4), "position_based weights first,middle,last", _weights
    )
    half_life_ms: int = _setting(7 * DAY_MS, "time_decay half-life", _duration_ms)
    markov_order: int = _setting(1, "Order of the markov chain (states are k-tuples of channels)", int)
    model_refresh_ms: int = _setting(
        60_000, "How often data-driven model snapshots are refreshed", _duration_ms
    )
    max_paths: int = _setting(10_000, "Distinct paths counted per partition; the rest fold into (other)", int)
    currency: str = _setting(
        "EUR", "Currency of conversions, revenue and spend that name none; reports' default"
    )
    report_retention_days: int = _setting(400, "Days the report counters of a day are kept", int)
    report_max_counters: int = _setting(
        100_000, "Distinct report counters per partition and day; new ones then fold into (other)", int
    )
    state_cache: int = _setting(
        10_000, "Person states a worker keeps decoded (skips decoding when Redis holds the same bytes)", int
    )
    worker_id: str = _setting("", "Worker id put in output headers (default: host:pid)")
    data_dir: str = _setting("", "Faust's data directory (default: <tmp>/touchstream-<app id>)")
    log_level: str = _setting("info", "Log level")

    def __post_init__(self) -> None:
        positive = (
            "partitions",
            "replication_factor",
            "batch_size",
            "journey_cap",
            "recent_ids",
            "max_value_bytes",
            "session_timeout_ms",
            "lookback_ms",
            "half_life_ms",
            "sweep_interval_ms",
            "report_retention_days",
            "report_max_counters",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{env_name(name)} must be positive, got {getattr(self, name)!r}")
        if self.markov_order < 1:
            raise SettingsError(f"{env_name('markov_order')} must be 1 or more, got {self.markov_order}")
        if not PREFIX_PATTERN.fullmatch(self.redis_prefix):
            raise SettingsError(
                f"{env_name('redis_prefix')} is letters, digits and _ . : - (no braces: the keys' hash "
                f"tags come after it), got {self.redis_prefix!r}"
            )
        databases = {urlparse(url.strip()).path.strip("/") for url in self.redis_url.split(",")}
        if self.redis_cluster and databases - {"", "0"}:
            raise SettingsError(
                f"{env_name('redis_url')}: a Redis Cluster has database 0 only, "
                f"got {redact_url(self.redis_url)}"
            )
        if not 0 < self.redis_replica_timeout_ms <= 60_000:
            raise SettingsError(
                f"{env_name('redis_replica_timeout_ms')} must be more than 0 and at most 60s "
                f"(0 would make Redis WAIT block forever), got {self.redis_replica_timeout_ms}"
            )
        if not 0 <= self.web_port <= 65535:
            raise SettingsError(f"{env_name('web_port')} must be a port number, got {self.web_port}")

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        shown["redis_url"] = redact_url(self.redis_url)
        if self.kafka_sasl_password:
            shown["kafka_sasl_password"] = "***"
        return "Settings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build from `TOUCHSTREAM_*` variables; `KAFKA_BOOTSTRAP_SERVERS` and
        `REDIS_URL` are accepted too. Keyword overrides win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        aliases = {"kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS", "redis_url": "REDIS_URL"}
        for f in dataclasses.fields(cls):
            raw = env.get(env_name(f.name), env.get(aliases.get(f.name, ""), None))
            if raw is None:
                continue
            parse = f.metadata["parse"]
            try:
                values[f.name] = parse(raw) if parse else raw
            except (TypeError, ValueError) as exc:
                raise SettingsError(f"{env_name(f.name)}={raw!r}: {exc}") from exc
        values.update(overrides)
        return cls(**values)

    def topic(self, name: str) -> str:
        """Public topic name with the configured prefix."""
        return self.topic_prefix + name

    @property
    def replicas_to_wait(self) -> int:
        """`redis_replicas`, with auto resolved: a cluster's primaries have replicas to wait for."""
        if self.redis_replicas is None:
            return 1 if self.redis_cluster else 0
        return self.redis_replicas

    @property
    def model_params(self) -> ModelParams:
        return ModelParams(position_weights=self.position_weights, half_life_ms=self.half_life_ms)

    def config(self) -> Config:
        """The pure core's configuration. Raises UnknownModelError for an unknown model name."""
        from stream.attribution import MODELS, check_names  # numpy: only where models are used

        rules = Rules(
            self.session_timeout_ms,
            self.lookback_ms,
            self.journey_cap,
            self.lookback_by_type,
            self.rederive_ms,
        )
        models = check_names(self.models) if self.models else tuple(MODELS)
        return Config(
            rules, self.model_params, models, self.recent_ids, self._credit_models(models), self.currency
        )

    def _credit_models(self, models: tuple[str, ...]) -> tuple[str, ...] | None:
        rows = self.credit_rows.strip()
        if rows in ("", "all"):
            return None
        if rows == "off":
            return ()
        chosen = _names(self.credit_rows)
        missing = [name for name in chosen if name not in models]
        if missing:
            raise SettingsError(
                f"{env_name('credit_rows')}: {', '.join(missing)} not among the models computed "
                f"({', '.join(models)})"
            )
        return chosen

    def report_limits(self) -> ReportLimits:
        return ReportLimits(self.report_retention_days, self.report_max_counters)

    def limits(self) -> Limits:
        """What validation accepts."""
        return Limits(self.max_value_bytes, self.max_context_bytes, self.max_future_skew_ms)


def parse_field(name: str, text: str) -> Any:
    """Parse `text` the way the field's `TOUCHSTREAM_*` variable is parsed (for CLI flags)."""
    parse = {f.name: f.metadata["parse"] for f in dataclasses.fields(Settings)}[name]
    try:
        return parse(text) if parse else text
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"--{name.removesuffix('_ms').replace('_', '-')} {text!r}: {exc}") from exc


def env_name(field_name: str) -> str:
    return PREFIX + field_name.upper()


OTHER_VARIABLES = ("TOUCHSTREAM_CACHE_DIR",)  # read by stream/devtools (local services), not a setting


def unknown_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """`TOUCHSTREAM_*` names in `env` (default: the process environment) that are no setting:
    a typo, or a retired setting (such as `TOUCHSTREAM_BATCH_WITHIN_MS`). `from_env` ignores
    them; the CLI warns."""
    env = os.environ if env is None else env
    known = {env_name(f.name) for f in dataclasses.fields(Settings)} | set(OTHER_VARIABLES)
    return sorted(name for name in env if name.startswith(PREFIX) and name not in known)


def to_env(settings: Settings) -> dict[str, str]:
    """The `TOUCHSTREAM_*` variables that make `from_env` rebuild exactly these settings."""
    env = {}
    for f in dataclasses.fields(Settings):
        value = getattr(settings, f.name)
        if isinstance(value, tuple):
            value = ",".join(f"{v[0]}={v[1]}" if isinstance(v, tuple) else str(v) for v in value)
        env[env_name(f.name)] = "auto" if value is None else str(value)
    return env


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, help) for every setting: README table and CLI help."""
    rows = []
    for f in dataclasses.fields(Settings):
        default = f.default
        if isinstance(default, tuple):
            default = ",".join(str(d) for d in default)
        elif default is None:
            default = "auto"
        rows.append((env_name(f.name), str(default), f.metadata["help"]))
    return rows
