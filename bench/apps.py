"""The comparison Faust apps of the benchmark, run as worker processes:

    python -m bench.apps floor|naive --bootstrap HOST:PORT --topic RAW --group ID [--redis URL]

- floor: an empty agent (`async for event in stream.events(): pass`): Faust's own ceiling.
- naive: the way a typical team writes it: one event at a time, with its own Redis GET and
  SET of the person's journey, and one produce per conversion. Same pure journey code.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import faust
import orjson
from faust.worker import Worker
from redis.asyncio import Redis

from stream.core.apply import apply
from stream.core.codec import decode_journey, encode_journey
from stream.core.config import Limits, Rules
from stream.core.journey import Converted
from stream.core.records import Event
from stream.core.validation import validate


def create_app(kind: str, bootstrap: str, topic: str, group: str, redis_url: str, web_port: int) -> faust.App:
    app = faust.App(
        group,
        broker=f"kafka://{bootstrap}",
        web_port=web_port,
        consumer_auto_offset_reset="earliest",
        topic_disable_leader=True,
        broker_commit_interval=0.2,
        worker_redirect_stdouts=False,
        datadir=str(Path(tempfile.gettempdir()) / f"touchstream-bench-{group}"),
    )
    raw = app.topic(topic, key_serializer="raw", value_serializer="raw")
    if kind == "floor":

        @app.agent(raw, name="floor")
        async def floor(stream: faust.StreamT) -> None:
            async for _event in stream.events():
                pass

        return app
    redis = Redis.from_url(redis_url)
    out = app.topic(f"{topic}.naive-out", key_serializer="raw", value_serializer="raw")
    rules, limits = Rules(), Limits()

    @app.agent(raw, name="naive")
    async def naive(stream: faust.StreamT) -> None:
        async for value in stream:
            event = validate(value, limits, 4_102_444_800_000)
            if not isinstance(event, Event):
                continue
            key = f"naive:{event.person_id}"
            journey = decode_journey(await redis.get(key))
            journey, outputs = apply(journey, event, rules)
            await redis.set(key, encode_journey(journey))
            for output in outputs:
                if isinstance(output, Converted):
                    await out.send(key=event.person_id.encode(), value=orjson.dumps({"id": event.event_id}))

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("floor", "naive"))
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--web-port", type=int, default=16070)
    args = parser.parse_args()
    app = create_app(args.kind, args.bootstrap, args.topic, args.group, args.redis, args.web_port)
    Worker(app, loglevel="WARNING").execute_from_commandline()


if __name__ == "__main__":
    main()
