"""First throughput figure: one `touchstream worker` process draining a pre-loaded backlog.

    python bench/throughput.py [--customers 5000] [--batch-size 500]

Publishes the simulator's events for N customers to touchpoints.raw, then starts
one worker and times how long it takes until every event has gone through both
agents (ingest and journeys). Prints events/s. Uses KAFKA_BOOTSTRAP_SERVERS /
REDIS_URL when set, else starts Kafka and Redis locally.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from stream.adapters.kafka.clients import event_record, produce
from stream.adapters.kafka.topics import ensure_topics
from stream.core.topics import RAW
from stream.devtools.runner import WorkerProcess, metric
from stream.devtools.services import local_services
from stream.devtools.simulate import generate
from stream.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--profile", help="write a py-spy profile of the worker to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="touchstream-bench-") as tmp:  # Kafka data: gigabytes
        workdir = Path(tmp)
        with local_services(workdir) as (bootstrap, redis_url):
            settings = Settings.from_env(
                {},
                kafka_bootstrap_servers=bootstrap,
                redis_url=redis_url,
                app_id=f"bench-{int(time.time())}",
                topic_prefix=f"bench{int(time.time())}.",
                partitions=args.partitions,
                batch_size=args.batch_size,
                web_port=16099,
            )
            asyncio.run(ensure_topics(settings))
            events = [event_record(e) for e in generate(args.customers, 1, int(time.time() * 1000))]
            asyncio.run(produce(bootstrap, settings.topic(RAW), events))
            worker = WorkerProcess(settings, workdir / "worker.log").start()
            try:
                started = time.monotonic()
                if args.profile:
                    import subprocess
                    import sys

                    assert worker.proc is not None
                    spy = Path(sys.executable).with_name("py-spy")
                    subprocess.Popen(
                        [
                            str(spy),
                            "record",
                            "-o",
                            args.profile,
                            "-d",
                            "12",
                            "-f",
                            "speedscope",
                            "-p",
                            str(worker.proc.pid),
                        ]
                    )
                while metric(settings, 'touchstream_batch_size_sum{agent="journeys"}') < len(events):
                    time.sleep(0.1)
                elapsed = time.monotonic() - started
            finally:
                worker.stop()
            print(
                f"{len(events)} events through ingest + journeys in {elapsed:.2f} s: "
                f"{len(events) / elapsed:,.0f} events/s (1 worker, batch {args.batch_size}, "
                f"{args.partitions} partitions)"
            )


if __name__ == "__main__":
    main()
