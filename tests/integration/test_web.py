"""The worker's own web pages: /health, /ready, /api/report (the JSON of `touchstream
report` for the same parameters), /api/live, and nothing that changes state unless enabled."""

from __future__ import annotations

import urllib.error
import urllib.request

import orjson
import pytest

from stream.core.topics import RAW
from tests.support.cli import touchstream
from tests.support.events import SCRIPT
from tests.support.kafka import publish
from tests.support.waiting import wait_drained, wait_until

pytestmark = pytest.mark.integration


def get(settings, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}{path}", timeout=30) as page:
            return page.status, orjson.loads(page.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())


def status_of(settings, path: str, method: str = "GET") -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{settings.web_port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as page:
            return page.status
    except urllib.error.HTTPError as err:
        return err.code


def test_health_readiness_and_the_live_report(make_settings, start_worker) -> None:
    settings = make_settings()
    start_worker(settings)
    assert get(settings, "/health") == (200, {"status": "ok"})
    wait_until(lambda: get(settings, "/ready")[0] == 200, 60, "the worker ready")
    assert get(settings, "/ready") == (200, {"ready": True, "reasons": []})

    publish(settings, settings.topic(RAW), SCRIPT)
    wait_drained(settings)
    status, live = get(settings, "/api/live")
    assert status == 200 and set(live) == {"worker", "now", "history", "latency", "lag"}
    wait_until(lambda: get(settings, "/api/live")[1]["lag"]["records"] == 0, 30, "the lag measured: 0")
    # read-only by default: the model refresh is not served; no file outside the dashboard's own
    assert status_of(settings, "/models/refresh") == status_of(settings, "/models/refresh", "POST") == 404
    assert status_of(settings, "/dashboard") == status_of(settings, "/dashboard/dashboard.js") == 200
    assert status_of(settings, "/dashboard/__init__.py") == 404
    params = {"from": "2026-01-01", "to": "2026-12-31", "models": "linear,first_touch", "by": "campaign"}
    query = "&".join(f"{k}={v}" for k, v in params.items())
    status, served = get(settings, f"/api/report?{query}")
    flags = [f"--{k}" for k in params]
    printed = touchstream(
        settings,
        "report",
        *[x for pair in zip(flags, params.values(), strict=True) for x in pair],
        "--format",
        "json",
        check=True,
        text=False,
    )
    assert status == 200 and served == orjson.loads(printed.stdout)
    assert served["rows"] and served["models"] == ["linear", "first_touch"]

    for bad, why in (
        ("by=colour", "unknown dimension"),
        ("models=nope", "unknown attribution model"),
        ("from=2026-02-30", "YYYY-MM-DD"),
        ("top_paths=x", "top paths"),
    ):
        status, body = get(settings, f"/api/report?{bad}")
        assert status == 400 and why in body["error"], bad
