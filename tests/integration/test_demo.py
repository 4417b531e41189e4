"""`touchstream demo` on the session's broker and Redis: it names the dashboard first, shows
the summary (figures, credit per channel, one line per conversion), and Ctrl-C stops it
and its worker cleanly. With `--redis-cluster` (and no Redis named by the environment) it
starts its own Redis Cluster, keeps the journeys there, and stops it too."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Mapping

import orjson
import pytest
import redis

from stream.core.topics import CONVERSIONS
from stream.devtools.runner import settings_env
from stream.settings import Settings
from tests.support.kafka import read_all
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

LINE = re.compile(r"^(lead|purchase) +c-\d+ +\d+\.\d\d EUR  \S.* {2}last: \S+ {2}linear: ")
BROKER_LINE = re.compile(r"^broker \S+ · redis cluster (\S+) · starting worker")


def page(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as served:
        return orjson.loads(served.read())


def start_demo(settings: Settings, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    """`touchstream demo --customers 200 --rate 400 ARGS`, interruptible as in a terminal."""
    return subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "demo", "--customers", "200", "--rate", "400", *args],
        env=dict(env or settings_env(settings)) | {"COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )


def read_until_ready(demo: subprocess.Popen[str], port: int) -> list[str]:
    """The lines the demo prints up to "worker ready"; the first names the dashboard."""
    first = demo.stdout.readline()
    assert first.startswith(f"Touchstream demo — dashboard: http://127.0.0.1:{port}/dashboard"), first
    lines = [first]
    while "worker ready" not in lines[-1]:
        lines.append(demo.stdout.readline())
        assert lines[-1], f"the demo ended before its worker was ready: {lines}"
    return lines


def wait_attributing(settings: Settings) -> None:
    """Conversions attributed on Kafka, report rows and live figures on the worker's pages."""
    wait_until(lambda: read_all(settings, settings.topic(CONVERSIONS)), 60, "a conversion attributed")
    wait_until(lambda: page(settings.web_port, "/api/report?from=2000-01-01")["rows"], 60, "report rows")
    # the demo asks for these every 2 s: 5 rates (10 s) after the first, it has shown some
    wait_until(lambda: len(page(settings.web_port, "/api/live")["history"]) >= 6, 60, "live figures")


def interrupt(demo: subprocess.Popen[str]) -> str:
    """Ctrl-C; what the demo printed from then on."""
    demo.send_signal(signal.SIGINT)
    rest, _ = demo.communicate(timeout=120)
    return rest


def assert_stopped_with_summary(demo: subprocess.Popen[str], rest: str) -> None:
    """The demo exited 0 and its last lines say it stopped; before them, the last frame of the
    summary: the figures, credit per channel, the conversions."""
    assert demo.returncode == 0, rest
    assert "Traceback" not in rest
    lines = rest.splitlines()
    assert lines[-2:] == ["stopping worker …", "stopped."]
    assert re.match(r"events \d+/s · attributions \d+/s · DLQ \d+/s · lag (\d+|–) · p99 ", lines[0]), lines[0]
    assert lines[1].startswith("credit per channel, last 30 days") and "first_touch" in lines[3], rest
    assert any(LINE.match(line) for line in lines), rest


def test_the_demo_summarises_and_stops_on_ctrl_c(make_settings) -> None:
    settings = make_settings()
    demo = start_demo(settings)
    try:
        read_until_ready(demo, settings.web_port)
        wait_attributing(settings)
    finally:
        rest = interrupt(demo)
    assert_stopped_with_summary(demo, rest)


def persons_per_node(seeds: list[str], prefix: str) -> dict[str, int]:
    """Per primary among `seeds`: how many person state keys it holds."""
    counts = {}
    for url in seeds:
        with redis.Redis.from_url(url) as node:
            if node.info("replication")["role"] == "master":
                counts[url] = sum(1 for _ in node.scan_iter(match=f"{prefix}:{{p:*}}:state", count=1000))
    return counts


def refuses(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=2) as node:
            node.ping()
    except redis.ConnectionError:
        return True
    return False


def test_the_demo_runs_on_its_own_redis_cluster(make_settings) -> None:
    settings = make_settings()
    env = {k: v for k, v in settings_env(settings).items() if k not in ("TOUCHSTREAM_REDIS_URL", "REDIS_URL")}
    demo = start_demo(settings, "--redis-cluster", env=env)
    try:
        shown = read_until_ready(demo, settings.web_port)
        assert shown[1].startswith("starting Kafka and a Redis Cluster (3 primaries, 3 replicas) in "), shown
        (seeds,) = [match[1].split(",") for line in shown if (match := BROKER_LINE.match(line))]
        assert len(seeds) == 6, seeds
        wait_attributing(settings)
        # the journeys are spread over the cluster: every primary holds some persons
        spread = wait_until(
            lambda: (c := persons_per_node(seeds, settings.redis_prefix)) and all(c.values()) and c,
            60,
            "person states on every primary",
        )
        assert len(spread) == 3, spread
    finally:
        rest = interrupt(demo)
    assert_stopped_with_summary(demo, rest)
    assert all(refuses(url) for url in seeds), "the demo's Redis Cluster outlived it"
