"""The worker's web pages beside `/metrics`: health, readiness and the live report.

- `/health`: 200 while the process's event loop turns (it answers at all).
- `/ready`: 200 once the worker has joined its consumer group and holds its assignment
  (no rebalance in progress), Redis answers, the broker answered the last lag measurement,
  and no operation is stalled on an outage;
  else 503 with the reasons. Kubernetes' readiness probe, so traffic and rollouts wait.
- `/api/report?from=&to=&by=&models=&currency=&top_paths=`: the JSON of
  `touchstream report --format json` for the same parameters (400 with the reason for a
  bad one).
- `/api/live`: rates (events in by type, DLQ by reason, attributions out) and their last
  5 minutes, conversion→attribution latency p50/p99 over the last minute, consumer lag
  per partition (`stream.core.live`).
- `/dashboard`: the page that shows both, polling them (files in `stream/runtime/dashboard/`,
  no CDN, no build step).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from faust.web import Request, Response, View

from stream.core.report import parse_query, report_of
from stream.settings import Settings

READY_TIMEOUT_S = 1.0
ASSETS = {  # the dashboard's files: name -> content type
    "index.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}


def register_pages(app: Any, settings: Settings, parts: Any) -> None:
    """Add the pages to the Faust app's web server."""
    config = settings.config()
    files = resources.files("stream.runtime.dashboard")
    assets = {name: files.joinpath(name).read_bytes() for name in ASSETS}

    @app.page("/dashboard")
    async def dashboard(web: View, request: Request) -> Response:
        return web.bytes(assets["index.html"], headers={"Content-Type": ASSETS["index.html"]})

    @app.page("/dashboard/{name}")
    async def dashboard_file(web: View, request: Request, name: str) -> Response:
        if name not in assets:
            return web.json({"error": f"no such file: {name}"}, status=404)
        return web.bytes(assets[name], headers={"Content-Type": ASSETS[name]})

    @app.page("/api/live")
    async def live(web: View, request: Request) -> Response:
        return web.json(parts.live.doc(parts.lag.last) | {"worker": parts.worker_id})

    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        return web.json({"status": "ok"})

    @app.page("/ready")
    async def ready(web: View, request: Request) -> Response:
        reasons = []
        if not app.rebalancing_count or app.rebalancing:
            reasons.append("not in the consumer group yet" if not app.rebalancing_count else "rebalancing")
        try:
            async with asyncio.timeout(READY_TIMEOUT_S):
                await parts.pipeline.aggregates.redis.ping()
        except Exception as exc:  # unreachable, refused, too slow: not ready, whatever the cause
            reasons.append(f"Redis: {type(exc).__name__}: {exc}")
        if parts.lag.error:  # the broker did not answer the last lag measurement (every 5 s)
            reasons.append(f"Kafka: {parts.lag.error}")
        stalled = sorted(parts.retries.stalled)
        if stalled:
            reasons.append(f"stalled: {', '.join(stalled)}")
        return web.json({"ready": not reasons, "reasons": reasons}, status=503 if reasons else 200)

    @app.page("/api/report")
    async def report(web: View, request: Request) -> Response:
        q = request.query
        try:
            query = parse_query(
                q.get("from"),
                q.get("to"),
                datetime.now(UTC).date(),
                by=q.get("by"),
                models=q.get("models"),
                default_models=config.models,
                currency=q.get("currency") or settings.currency,
                top_paths=q.get("top_paths"),
            )
        except ValueError as exc:  # a bad date, dimension or number; an unknown model
            return web.json({"error": str(exc)}, status=400)
        counters = await parts.pipeline.aggregates.report_counters(settings.partitions, query.days)
        return web.json(report_of(counters, query))
