"""Kafka from a one-shot command (`tail`, `produce`): its failures as one error line.

A broker that cannot be reached is `KafkaUnreachable` naming the address once aiokafka's
bounded bootstrap gives up (a worker waits for one instead: `stream.cli.worker`); a
refusal, a topic or partition that does not exist, or TLS files that cannot be loaded are
one `CliError` line. aiokafka's own log lines (connection errors, retried produce errors)
are not printed: the command's error line says what failed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from aiokafka.errors import KafkaConnectionError, KafkaError

from stream.adapters.kafka.clients import UnknownTopic
from stream.adapters.kafka.security import aiokafka_options
from stream.errors import CliError
from stream.settings import Settings, env_name


class KafkaUnreachable(CliError):
    """No broker answered at the bootstrap servers (a worker waits for one; a command stops)."""


def tls_error(settings: Settings, exc: OSError) -> CliError:
    """TLS files that cannot be read, or are no certificate (ssl.SSLError), as one line."""
    files = [
        f"{env_name(name)}={getattr(settings, name)}"
        for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
        if getattr(settings, name)
    ]
    return CliError(f"cannot load the Kafka TLS files ({', '.join(files) or 'system CAs'}): {exc}")


def client_options(settings: Settings) -> dict[str, Any]:
    """aiokafka's client options of the settings; TLS files that cannot be loaded are one line."""
    try:
        return aiokafka_options(settings)
    except OSError as exc:  # a TLS file that cannot be read, or is no certificate (ssl.SSLError)
        raise tls_error(settings, exc) from None


@contextlib.contextmanager
def kafka_errors(settings: Settings) -> Iterator[None]:
    """Kafka failures as one line naming the address; aiokafka's own log lines about them
    are not printed (the error says it)."""
    where = settings.kafka_bootstrap_servers
    aiokafka_log = logging.getLogger("aiokafka")
    level = aiokafka_log.level
    aiokafka_log.setLevel(logging.CRITICAL)
    try:
        yield
    except KafkaConnectionError:
        raise KafkaUnreachable(
            f"cannot reach Kafka at {where} (TOUCHSTREAM_KAFKA_BOOTSTRAP_SERVERS)"
        ) from None
    except KafkaError as exc:
        said = str(exc) if type(exc).__name__ in str(exc) else f"{type(exc).__name__}: {exc}"
        raise CliError(f"Kafka at {where}: {said}") from None
    except UnknownTopic as exc:
        raise CliError(f"{exc} (Kafka at {where})") from None
    finally:
        aiokafka_log.setLevel(level)
