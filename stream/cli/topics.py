"""`touchstream topics create|list`: provision Touchstream's topics, or show them.

`create` makes every missing topic (the public ones with `TOUCHSTREAM_TOPIC_PREFIX`, and
the person-keyed one of `TOUCHSTREAM_APP_ID`) with `TOUCHSTREAM_PARTITIONS` partitions and
`TOUCHSTREAM_REPLICATION_FACTOR` replicas, as a worker does at start, and leaves existing
ones as they are. Both print one line per topic.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Coroutine
from typing import Any

from stream.adapters.kafka.topics import TopicState, describe_topics, ensure_topics
from stream.cli.broker import kafka_errors, tls_error
from stream.errors import CliError, SettingsError
from stream.settings import Settings, _duration_ms


def add_parser(sub: Any) -> None:
    topics = sub.add_parser(
        "topics",
        help="create Touchstream's topics before the first worker, or list them",
        epilog="examples:\n  touchstream topics create --retention-ms 14d\n  touchstream topics list\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = topics.add_subparsers(dest="action", required=True)
    create = actions.add_parser(
        "create",
        help="create the missing topics: TOUCHSTREAM_PARTITIONS partitions, "
        "TOUCHSTREAM_REPLICATION_FACTOR replicas; existing ones are left as they are",
        epilog="""\
examples:
  touchstream topics create
  TOUCHSTREAM_REPLICATION_FACTOR=3 touchstream topics create --retention-ms 14d --min-insync-replicas 2
""",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    create.add_argument(
        "--retention-ms",
        metavar="DURATION",
        help="retention.ms of the topics created, e.g. 14d (default: the broker's log.retention)",
    )
    create.add_argument(
        "--min-insync-replicas",
        type=int,
        metavar="N",
        help="min.insync.replicas of the topics created (default: 2 with a replication factor "
        "of 3 or more, else the broker's)",
    )
    actions.add_parser(
        "list",
        help="every topic's partitions and replication factor, or that it is missing",
        epilog="examples:\n  touchstream topics list\n"
        "  TOUCHSTREAM_TOPIC_PREFIX=staging. touchstream topics list\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def topic_configs(settings: Settings, args: argparse.Namespace) -> dict[str, str]:
    """The topic configs of `create`'s flags, checked."""
    configs = {}
    if args.retention_ms is not None:
        try:
            retention = _duration_ms(args.retention_ms)
        except SettingsError as exc:
            raise CliError(f"--retention-ms: {exc}") from None
        if retention <= 0:
            raise CliError(f"--retention-ms must be positive, got {args.retention_ms!r}")
        configs["retention.ms"] = str(retention)
    if args.min_insync_replicas is not None:
        if not 1 <= args.min_insync_replicas <= settings.replication_factor:
            raise CliError(
                f"--min-insync-replicas must be between 1 and TOUCHSTREAM_REPLICATION_FACTOR "
                f"({settings.replication_factor}), got {args.min_insync_replicas}"
            )
        configs["min.insync.replicas"] = str(args.min_insync_replicas)
    return configs


def describe(states: list[TopicState], settings: Settings) -> list[str]:
    """One line per topic: status, name, partitions, replication factor, and what differs
    from the settings."""
    width = max(len(state.name) for state in states)
    lines = []
    for state in states:
        line = f"{state.status:<8} {state.name:<{width}}"
        if state.status != "missing":
            line += f"  partitions={state.partitions}  replication_factor={state.replication_factor}"
            if state.partitions != settings.partitions:
                line += f"  (TOUCHSTREAM_PARTITIONS is {settings.partitions})"
            if state.replication_factor < settings.replication_factor:
                line += f"  (TOUCHSTREAM_REPLICATION_FACTOR is {settings.replication_factor})"
        lines.append(line.rstrip())
    return lines


def _call(settings: Settings, work: Coroutine[Any, Any, list[TopicState]]) -> list[TopicState]:
    """Run `work`; a broker that cannot be reached, or that refuses, is a one-line error (and
    aiokafka's own log lines about it are not printed: the error says it)."""
    with kafka_errors(settings):
        try:
            return asyncio.run(work)
        except OSError as exc:  # TLS files: the admin client builds its context in `work`
            raise tls_error(settings, exc) from None


def create_missing(settings: Settings, configs: dict[str, str] | None = None) -> list[TopicState]:
    """Every topic, the missing ones created (`ensure_topics`); Kafka errors as one line.

    With three or more replicas, `min.insync.replicas` is 2 unless `configs` says otherwise
    (whatever the broker's default): a write (acks=all) is then acknowledged only once two
    copies hold it, and one broker down neither loses an acknowledged write nor stops any."""
    configs = dict(configs or {})
    if settings.replication_factor >= 3:
        configs.setdefault("min.insync.replicas", "2")
    return _call(settings, ensure_topics(settings, configs))


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "create":
        states = create_missing(settings, topic_configs(settings, args))
    else:
        states = _call(settings, describe_topics(settings))
    for line in describe(states, settings):
        print(line)
    return 0
