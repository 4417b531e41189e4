"""The private parts of Faust and aiokafka that the batch consumer and the emitter use.

`stream/adapters/kafka/consumer.py` replaces Faust's fetch loop and keeps Faust's own offset
and ack bookkeeping; `emitter.py` builds aiokafka record batches itself. Neither is public
API, so an upgrade may change them without notice: this test (no broker) checks that each
attribute and method is there with the shape the code relies on, so that an upgrade fails
here, in CI, and not in a worker.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from faust.transport.conductor import Conductor
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka


def probe(checks: str) -> None:
    """Run `checks` (asserts about `app`, a BatchApp never started) in a fresh interpreter:
    creating a Faust app upsets CPython 3.11's compiler in the process that does it
    ("AST constructor recursion depth mismatch" in later tests)."""
    setup = [
        "import inspect",
        "from stream.adapters.kafka.consumer import BatchApp, BatchConsumer",
        "app = BatchApp('contract', broker='kafka://127.0.0.1:1', web_enabled=False)",
    ]
    script = "\n".join(setup) + textwrap.dedent(checks)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def parameters(function: object) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]  # type: ignore[arg-type]


def test_the_consumer_is_ours_and_has_fausts_bookkeeping() -> None:
    probe("""
        from collections import defaultdict
        from weakref import WeakSet
        consumer = app.consumer
        assert type(consumer) is BatchConsumer
        for name in ("_read_offset", "_committed_offset", "_acked_index", "_acked"):
            assert isinstance(getattr(consumer, name), defaultdict), name
        assert isinstance(consumer._buffered_partitions, set)
        assert isinstance(consumer._unacked_messages, WeakSet)
        assert consumer._n_acked == 0
        assert hasattr(consumer, "_waiting_for_ack")
        assert isinstance(consumer.consumer_stopped_errors, tuple)
        for flag in ("flow_active", "should_stop"):
            assert isinstance(getattr(consumer, flag), bool), flag
        assert hasattr(consumer.can_resume_flow, "wait") and hasattr(consumer._stopped, "is_set")
        assert callable(consumer.diag.set_flag) and callable(consumer.diag.unset_flag)
        assert isinstance(app.consumer_generation_id, int)
        assert callable(app.monitor.track_tp_end_offset)
        assert app.monitor.stream_inbound_time == {}  # the batch consumer marks its partitions
        from faust.transport.drivers import aiokafka as driver
        check = inspect.getsource(driver.AIOKafkaConsumerThread.verify_event_path)
        assert "monitor.stream_inbound_time.get(tp)" in check  # what that check goes by
        assert app.topic("touchpoints.raw").acks  # what the conductor's acks_enabled_for goes by
        assert list(inspect.signature(app.producer._ensure_producer).parameters) == []
    """)


def test_the_methods_the_batch_consumer_calls_or_replaces_keep_their_shape() -> None:
    expected = {
        "_drain_messages": ["fetcher"],  # replaced: Faust's fetch loop
        "_get_active_partitions": [],
        "_getmany": ["active_partitions", "timeout"],
        "_add_gap": ["tp", "offset_from", "offset_to"],
        "perform_seek": [],
        "highwater": ["tp"],
        "assignment": [],
    }
    for name, params in expected.items():
        assert parameters(getattr(faust_aiokafka.Consumer, name)) == params, name
    assert faust_aiokafka.Transport.Consumer is faust_aiokafka.Consumer
    assert "_new_transport" in vars(faust.App)


def test_fausts_ack_keeps_the_bookkeeping_that_batch_ack_mirrors() -> None:
    """`BatchConsumer._ack` does what Faust's `ack` does for each record, once per partition:
    under `ack_lock`, for topics with acks enabled, skip offsets below the committed one, add
    new ones to `_acked_index` and `_acked`, count `_n_acked`, wake `_waiting_for_ack`; and
    what its fetch loop does after acks: commit once `_n_acked` reaches `_commit_every`."""
    source = inspect.getsource(FaustConsumer.ack)
    for part in (
        "with ack_lock",
        "acks_enabled_for(message.topic)",
        "_committed_offset[tp]",
        "_acked_index[tp]",
        "_acked[tp]",
        "_n_acked += 1",
        "_waiting_for_ack",
    ):
        assert part in source, part
    assert "_acking_topics" in inspect.getsource(Conductor.acks_enabled_for)
    loop = inspect.getsource(FaustConsumer._drain_messages)
    assert "self._n_acked >= commit_every" in loop and "await self.commit()" in loop
    assert "self._commit_every = self.app.conf.broker_commit_every" in inspect.getsource(
        FaustConsumer.__init__
    )


def test_the_producer_internals_the_emitter_uses() -> None:
    assert parameters(faust_aiokafka.Producer._ensure_producer) == []
    assert parameters(AIOKafkaProducer.create_batch) == []
    assert parameters(AIOKafkaProducer.send_batch) == ["batch", "topic", "partition"]
    assert parameters(AIOKafkaClient._wait_on_metadata) == ["topic"]


def test_the_faust_metric_the_app_unregisters_and_the_lag_it_asks_for() -> None:
    from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor

    assert "events_runtime_latency" in FaustMetrics._fields  # unregistered by create_app
    assert "_metrics" in inspect.getsource(PrometheusMonitor.__init__)  # where create_app finds it
