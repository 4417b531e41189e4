"""Kafka SASL/SSL and Redis ACL/TLS pass-through: settings in, client options out.

Redis needs nothing here: `TOUCHSTREAM_REDIS_URL` carries the ACL user and password
(`redis://user:password@host:6379/0`) and TLS (`rediss://…?ssl_ca_certs=/path/ca.pem`),
which redis-py reads from the URL. Secrets never reach logs or `/metrics`: `Settings`
redacts them in its repr, and nothing logs the options built here.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from stream.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL / SASL_SSL (system CAs unless a CA file is set)."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)
    if settings.kafka_ssl_certfile:
        context.load_cert_chain(settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile or None)
    return context


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka producers, consumers and admin clients."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(settings)
    if protocol.startswith("SASL"):
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password,
        }
    return options


def faust_credentials(settings: Settings) -> Any:
    """`broker_credentials` for the Faust app (None for PLAINTEXT)."""
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=ssl_context(settings),
        )
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    return None
