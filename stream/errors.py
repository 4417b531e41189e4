"""Every exception Touchstream raises on purpose, under one root.

`retriable` says whether trying the same thing again can help: the runtime's retry
policy (`stream.runtime.retry`) retries a failure whose error is retriable — these, and
the libraries' own transient errors (aiokafka's `KafkaError.retriable`, redis-py's
`ConnectionError` / `TimeoutError`) — and lets everything else crash the worker.
"""

from __future__ import annotations


class TouchstreamError(Exception):
    """Root of Touchstream's own errors."""

    retriable = False


class TransientError(TouchstreamError):
    """A failure that goes away by itself (contention, a backend restarting)."""

    retriable = True


class SettingsError(TouchstreamError, ValueError):
    """A setting (or a CLI flag that overrides one) has a value that cannot be used."""


class UnknownModelError(SettingsError):
    """An attribution model name that is not registered."""

    def __init__(self, name: str, known: tuple[str, ...] = ()) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown attribution model {self.name!r}; known models: {', '.join(self.known)}"


class InputError(TouchstreamError, ValueError):
    """A bad row in a batch input file; the message names the line."""


class InfraError(TouchstreamError, RuntimeError):
    """A local development service (Kafka, Redis) could not be resolved, started or reached."""


class CliError(TouchstreamError):
    """A user error on the command line: printed as one line, exit status 2."""
