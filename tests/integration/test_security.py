"""Kafka SASL and a Redis ACL user pass through from settings; secrets never show up."""

from __future__ import annotations

import urllib.request

import orjson
import pytest

from stream.adapters.kafka.security import aiokafka_options
from stream.core.topics import CONVERSIONS, RAW
from stream.devtools.kafka import start_kafka
from stream.devtools.redis import start_redis
from tests.support.cli import touchstream
from tests.support.events import SCRIPT, SCRIPT_CONVERSIONS
from tests.support.kafka import publish, values
from tests.support.waiting import wait_drained

pytestmark = pytest.mark.integration

KAFKA_SECRET = "kafka-Pa55-6f1c"
REDIS_SECRET = "redis-Pa55-9b2e"


def test_sasl_broker_and_acl_redis_without_leaking_secrets(make_settings, start_worker, tmp_path) -> None:
    broker = start_kafka(tmp_path / "kafka", sasl_users={"touch": KAFKA_SECRET})
    store = start_redis(tmp_path / "redis", acl_user=("touch", REDIS_SECRET))
    worker = None
    try:
        assert broker.sasl_bootstrap is not None
        settings = make_settings(
            kafka_bootstrap_servers=broker.sasl_bootstrap,
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_username="touch",
            kafka_sasl_password=KAFKA_SECRET,
            redis_url=store.url,
        )
        worker = start_worker(settings)
        lines = tmp_path / "events.jsonl"
        lines.write_bytes(b"\n".join(orjson.dumps(e) for e in SCRIPT))
        cli = touchstream(settings, "produce", str(lines))
        assert cli.returncode == 0, cli.stderr
        wait_drained(settings)  # the test's own clients speak SASL too (options from the settings)
        out = values(settings, settings.topic(CONVERSIONS))
        assert sorted(d["attribution_id"] for d in out) == SCRIPT_CONVERSIONS

        with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/metrics", timeout=5) as page:
            metrics = page.read().decode()
        for secret in (KAFKA_SECRET, REDIS_SECRET):
            assert (
                secret not in worker.output()
                and secret not in metrics
                and secret not in cli.stdout + cli.stderr
            )
            assert secret not in repr(settings)

        # the wrong password is refused: the SASL settings really are used
        bad = {**aiokafka_options(settings), "sasl_plain_password": "wrong"}
        with pytest.raises(Exception):  # noqa: B017 - aiokafka raises a connection error here
            publish(broker.sasl_bootstrap, settings.topic(RAW), [], options=bad, timeout=20)
    finally:
        if worker is not None:
            worker.stop()  # before its broker goes away
        broker.stop()
        store.stop()
