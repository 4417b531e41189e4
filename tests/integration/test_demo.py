"""`touchstream demo` on the session's broker and Redis: it names the dashboard first, shows
the summary (figures, credit per channel, one line per conversion), and Ctrl-C stops it
and its worker cleanly."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request

import orjson
import pytest

from stream.core.topics import CONVERSIONS
from stream.devtools.runner import settings_env
from tests.support.kafka import read_all
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

LINE = re.compile(r"^(lead|purchase) +c-\d+ +\d+\.\d\d EUR  \S.* {2}last: \S+ {2}linear: ")


def page(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as served:
        return orjson.loads(served.read())


def test_the_demo_summarises_and_stops_on_ctrl_c(make_settings) -> None:
    settings = make_settings()
    demo = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "demo", "--customers", "200", "--rate", "400"],
        env=settings_env(settings) | {"COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    try:
        first = demo.stdout.readline()
        assert first.startswith(
            f"Touchstream demo — dashboard: http://127.0.0.1:{settings.web_port}/dashboard"
        )
        while "worker ready" not in (line := demo.stdout.readline()):
            assert line, "the demo ended before its worker was ready"
        wait_until(lambda: read_all(settings, settings.topic(CONVERSIONS)), 60, "a conversion attributed")
        wait_until(lambda: page(settings.web_port, "/api/report?from=2000-01-01")["rows"], 60, "report rows")
        # the demo asks for these every 2 s: 5 rates (10 s) after the first, it has shown some
        wait_until(lambda: len(page(settings.web_port, "/api/live")["history"]) >= 6, 60, "live figures")
    finally:
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=120)
    assert demo.returncode == 0, rest
    lines = rest.splitlines()
    assert lines[-2:] == ["stopping worker …", "stopped."]
    assert re.match(r"events \d+/s · attributions \d+/s · DLQ \d+/s · lag (\d+|–) · p99 ", lines[0]), lines[0]
    assert lines[1].startswith("credit per channel, last 30 days") and "first_touch" in lines[3], rest
    assert any(LINE.match(line) for line in lines), rest
    assert "Traceback" not in rest
