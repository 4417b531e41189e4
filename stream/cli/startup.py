"""A worker started before its services: Kafka and Redis are waited for, one line per attempt.

Operators start a deployment's parts in any order (a Kubernetes pod may come up before
the brokers do). Until both answer, the worker says what it waits for, where, why and
when it tries again —

    touchstream: waiting for Redis at redis://127.0.0.1:6379/0 (TOUCHSTREAM_REDIS_URL):
    connection refused (attempt 3, next in 3.6 s)

(one line) — with exponential backoff and jitter (so that a fleet restarted at once does not
knock in step), and starts when they come. Its web server is not up meanwhile, so
`/ready` does not answer: not ready. A service that answers but refuses (a wrong Redis
password, a broker refusing the topics) is one error line and exit 2, not a wait.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis
from redis.connection import parse_url
from redis.exceptions import AuthenticationError, ResponseError

from stream.adapters.redis.connection import seed_urls
from stream.cli.broker import KafkaUnreachable
from stream.errors import CliError
from stream.settings import Settings, redact_url


class Unreachable(Exception):
    """A service that did not answer (yet); its text is the reason."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays of 1, 2, 4 … up to 30 s, each drawn in [(1 − jitter) × d, d]."""

    first_s: float = 1.0
    cap_s: float = 30.0
    jitter: float = 0.2

    def delays(self, rng: random.Random) -> Iterator[float]:
        delay = self.first_s
        while True:
            yield delay * (1 - self.jitter * rng.random())
            delay = min(delay * 2, self.cap_s)


def wait_for(
    what: str,
    reach: Callable[[], None],
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> int:
    """Call `reach` until it does not raise `Unreachable`, saying so before each wait; the
    number of attempts it took."""
    delays = backoff.delays(rng or random.Random())
    attempt = 1
    while True:
        try:
            reach()
            return attempt
        except Unreachable as exc:
            delay = next(delays)
            print(
                f"touchstream: waiting for {what}: {exc} (attempt {attempt}, next in {delay:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
            sleep(delay)  # a backoff: nothing else runs in the process yet
            attempt += 1


def redis_reachable(url: str, cluster: bool = False) -> Callable[[], None]:
    """A check that Redis at `url` answers: PING, or for a cluster (`url`: comma-separated
    seeds, the first one's credentials and TLS for all, as the worker's client takes them)
    `CLUSTER INFO` of any seed saying `cluster_state:ok`. `Unreachable` with the reason while
    none does (refused, timed out, loading its data, the cluster forming or failing); a
    refusal (`AUTH`) is a `CliError`."""
    seeds = seed_urls(url)
    options = {k: v for k, v in parse_url(seeds[0]).items() if k not in ("host", "port")}

    def answer(seed: str) -> str | None:
        """None when the seed answers as it should; else why not."""
        where = parse_url(seed)
        kwargs = {**options, "host": where["host"], "port": where.get("port", 6379)}
        pool = redis.ConnectionPool(socket_connect_timeout=3, socket_timeout=3, **kwargs)
        try:
            client = redis.Redis(connection_pool=pool)
            if not cluster:
                client.ping()
                return None
            state = client.cluster("INFO").get("cluster_state")
            return None if state == "ok" else f"cluster state {state}"
        finally:
            pool.disconnect()

    def reach() -> None:
        reasons = []
        for seed in seeds:
            try:
                if (why := answer(seed)) is None:
                    return
                reasons.append(why)
            except AuthenticationError as exc:
                raise CliError(f"Redis at {redact_url(seed)} refused the credentials: {exc}") from None
            except ResponseError as exc:
                raise CliError(f"Redis at {redact_url(seed)}: {exc}") from None
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                reasons.append(_reason(exc))
        raise Unreachable(", ".join(dict.fromkeys(reasons)))

    return reach


def _reason(exc: BaseException) -> str:
    """What a connection failure comes down to, as a person says it."""
    causes = [exc, exc.__cause__, exc.__context__]
    if any(isinstance(e, ConnectionRefusedError) for e in causes) or "refused" in str(exc).lower():
        return "connection refused"
    if any(isinstance(e, TimeoutError) for e in causes) or "timeout" in str(exc).lower():
        return "timed out"
    return str(exc) or type(exc).__name__


def services(settings: Settings, provision: Callable[[], object]) -> None:
    """Wait for Kafka (`provision`: the topics, created when missing) and then Redis."""

    def kafka() -> None:
        try:
            provision()
        except KafkaUnreachable:
            raise Unreachable("no broker answers") from None

    wait_for(f"Kafka at {settings.kafka_bootstrap_servers} (TOUCHSTREAM_KAFKA_BOOTSTRAP_SERVERS)", kafka)
    url, cluster = settings.redis_url, settings.redis_cluster
    wait_for(f"Redis at {redact_url(url)} (TOUCHSTREAM_REDIS_URL)", redis_reachable(url, cluster))
