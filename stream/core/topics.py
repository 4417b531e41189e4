"""Topic names, logical: the one list of what Touchstream reads and writes.

Public topics get the configured prefix at the Kafka edge
(`stream.adapters.kafka.topics`); `PERSONS`, `PATHS` and `REPORT` are internal
destinations of the core's `Message`s: the person-keyed topic of the app (events forwarded
to another person), and the path-count and report-counter increments applied to Redis
(never produced).
"""

from __future__ import annotations

RAW = "touchpoints.raw"
DLQ = "touchpoints.dlq"
SESSIONS = "touchpoints.sessions"
IDENTITY_CONFLICTS = "touchpoints.identity_conflicts"
CONVERSIONS = "attribution.conversions"
CREDITS = "attribution.credits"
MODELS = "attribution.models"

PUBLIC = (RAW, DLQ, SESSIONS, CONVERSIONS, CREDITS, MODELS, IDENTITY_CONFLICTS)

PERSONS = "(persons)"  # internal: the person-keyed topic of the app id
PATHS = "(paths)"  # internal: path-count increments, applied to Redis, not produced
REPORT = "(report)"  # internal: report counter inputs (stream.core.counters), applied to Redis
