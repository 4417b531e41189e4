"""Kafka SASL and a Redis ACL user pass through from settings; secrets never show up."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request

import orjson
import pytest

from stream.infra import start_kafka, start_redis
from stream.kafka_io import collect, produce
from stream.runner import settings_env
from stream.security import aiokafka_options
from stream.topics import RAW
from tests.integration.test_pipeline import SCRIPT

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
        options = aiokafka_options(settings)
        lines = tmp_path / "events.jsonl"
        lines.write_bytes(b"\n".join(orjson.dumps(e) for e in SCRIPT))
        cli = subprocess.run(
            [sys.executable, "-m", "stream.cli", "produce", str(lines)],
            env=settings_env(settings),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == 0, cli.stderr
        out = asyncio.run(
            collect(
                broker.sasl_bootstrap, settings.topic("attribution.conversions"), count=4, options=options
            )
        )
        assert sorted(orjson.loads(m.value)["attribution_id"] for m in out) == [
            "alice-5",
            "bob-2",
            "carol-1",
            "dave-3",
        ]

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
        bad = {**options, "sasl_plain_password": "wrong"}
        with pytest.raises(Exception):  # noqa: B017 - aiokafka raises a connection error here
            asyncio.run(
                asyncio.wait_for(produce(broker.sasl_bootstrap, settings.topic(RAW), [], options=bad), 20)
            )
    finally:
        if worker is not None:
            worker.stop()  # before its broker goes away
        broker.stop()
        store.stop()
