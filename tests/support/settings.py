"""Settings of one test run against real services."""

from __future__ import annotations

from stream.devtools.process import free_ports
from stream.settings import Settings


def free_port() -> int:
    [port] = free_ports(1)
    return port


def run_settings(bootstrap: str, redis_url: str, run: str, /, **overrides: object) -> Settings:
    """Settings whose consumer group (app id) and topic prefix are the run's own, with a free
    web port and 4 partitions; log level info, since a worker's readiness is read from its
    "Worker ready" line. `overrides` win."""
    values: dict[str, object] = {
        "kafka_bootstrap_servers": bootstrap,
        "redis_url": redis_url,
        "app_id": run,
        "topic_prefix": f"{run}.",
        "partitions": 4,
        "web_port": free_port(),
        "log_level": "info",
    }
    return Settings.from_env({}, **(values | overrides))
