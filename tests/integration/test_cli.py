"""The CLI as users run it: `touchstream produce`, `simulate --output`, `--help`, errors."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from stream.adapters.kafka.security import aiokafka_options
from stream.attribution import snapshot as snapshots
from stream.core.topics import CONVERSIONS, DLQ, MODELS, RAW, SESSIONS
from stream.devtools.runner import settings_env
from stream.offline.replay import EventReplay
from tests.support.cli import touchstream
from tests.support.events import SCRIPT, SCRIPT_CONVERSIONS
from tests.support.kafka import create_topics, read_all, values
from tests.support.schemas import validate
from tests.support.settings import free_port
from tests.support.waiting import wait_drained

pytestmark = pytest.mark.integration


def test_produce_a_jsonl_file_with_a_broken_line(make_settings, start_worker, tmp_path) -> None:
    settings = make_settings()
    start_worker(settings)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(e) for e in SCRIPT) + b"\n{broken\n\n")
    result = touchstream(settings, "produce", str(events))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"published {len(SCRIPT) + 1} values to {settings.topic(RAW)}"
    wait_drained(settings)
    out = values(settings, settings.topic(CONVERSIONS))
    assert sorted(d["attribution_id"] for d in out) == SCRIPT_CONVERSIONS
    dlq = values(settings, settings.topic(DLQ))
    assert [(d["reason_code"], d["raw"]) for d in dlq] == [("not_json", "{broken")]


def test_cli_errors_and_help(make_settings, tmp_path) -> None:
    settings = make_settings()
    missing = touchstream(settings, "produce", str(tmp_path / "nope.jsonl"))
    assert (missing.returncode, missing.stdout) == (2, "")
    assert (
        missing.stderr
        == f"touchstream: error: cannot read {tmp_path / 'nope.jsonl'}: No such file or directory\n"
    )
    assert "TOUCHSTREAM_SESSION_TIMEOUT_MS" in touchstream(settings, "--help").stdout
    bad = touchstream(settings, "produce", "x", env={"TOUCHSTREAM_PARTITIONS": "zero"})
    assert bad.returncode == 2 and "TOUCHSTREAM_PARTITIONS" in bad.stderr


def test_simulate_writes_realistic_journeys(make_settings, tmp_path) -> None:
    settings = make_settings()
    out = tmp_path / "sim.jsonl"
    assert touchstream(settings, "simulate", "--customers", "200", "--output", str(out)).returncode == 0
    events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    kinds = {t: sum(e["type"] == t for e in events) for t in ("interaction", "conversion")}
    customers = {e["customer_id"] for e in events}
    converted = {e["customer_id"] for e in events if e["type"] == "conversion"}
    assert len(customers) == 200
    assert kinds["interaction"] > 5 * kinds["conversion"] > 0
    assert len(converted) < len(customers) / 2  # most journeys never convert
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)


def test_report_errors_are_one_line_and_exit_2(make_settings, tmp_path) -> None:
    """A bad date, an empty period, an unknown model, a missing file, a Redis that is not
    there, a bad flag: one line on stderr, no traceback, a non-zero exit."""
    settings = make_settings()
    cases = [
        (["--from", "2026-13-01"], "expected YYYY-MM-DD"),
        (["--from", "2026-10-02", "--to", "2026-10-01"], "empty period"),
        (["--models", "linear,nope"], "unknown attribution model 'nope'"),
        (["--events", str(tmp_path / "nope.jsonl")], "no such file"),
        (["--top-paths", "-1"], "top paths must be"),
    ]
    for args, why in cases:
        done = touchstream(settings, "report", *args)
        assert (done.returncode, done.stdout) == (2, ""), args
        assert done.stderr.count("\n") == 1 and why in done.stderr and "Traceback" not in done.stderr, args
    away = touchstream(settings, "report", env={"TOUCHSTREAM_REDIS_URL": "redis://127.0.0.1:1"})
    assert away.returncode == 2 and away.stderr.startswith(
        "touchstream: error: cannot read the report counters"
    )
    assert away.stderr.count("\n") == 1
    flag = touchstream(settings, "report", "--by", "colour")
    assert flag.returncode == 2 and "invalid choice" in flag.stderr and "Traceback" not in flag.stderr


def test_report_of_an_empty_period_has_no_rows(make_settings) -> None:
    done = touchstream(
        make_settings(), "report", "--from", "2001-01-01", "--to", "2001-01-31", "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    assert (report["rows"], report["conversion_types"], report["top_paths"]) == ([], [], [])


# --- commands that compose in a shell: stdin, pipes, FIFOs; tail's flags; snapshot files ---

PATHS_CSV = b"path,total_conversions,total_conversion_value,total_null\nemail > paid_search,3,30,1\n"
PATHS_CSV += b"email,1,10,4\nsocial > email,2,5,0\n"


def cli(settings, *args: str, stdin: bytes | None = None, env=None) -> subprocess.CompletedProcess[bytes]:
    """`touchstream ARGS` with `stdin` on its standard input; output as bytes."""
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        input=stdin,
        env=settings_env(settings) | dict(env or {}),
        capture_output=True,
        timeout=120,
    )


def ok(done: subprocess.CompletedProcess[bytes]) -> bytes:
    assert (done.returncode, done.stderr) == (0, b""), done.stderr.decode()
    return done.stdout


def test_attribute_reads_stdin_a_process_substitution_and_a_fifo_as_a_file(make_settings, tmp_path) -> None:
    settings = make_settings()
    path = tmp_path / "paths.csv"
    path.write_bytes(PATHS_CSV)
    args = ("attribute", "--models", "linear,markov,shapley", "--paths")
    from_file = ok(cli(settings, *args, str(path)))
    assert sorted(orjson.loads(from_file)) == ["linear", "markov", "shapley"]
    assert ok(cli(settings, *args, "-", stdin=PATHS_CSV)) == from_file
    substituted = subprocess.run(
        ["bash", "-c", 'exec "$0" -m stream.cli "${@:2}" <(cat "$1")', sys.executable, str(path), *args],
        env=settings_env(settings),
        capture_output=True,
        timeout=120,
    )
    assert ok(substituted) == from_file
    fifo = tmp_path / "paths.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(PATHS_CSV,))
    writer.start()
    assert ok(cli(settings, *args, str(fifo))) == from_file
    writer.join()
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in SCRIPT))
    by_file = ok(cli(settings, "attribute", "--events", str(events)))
    assert len(by_file.splitlines()) == len(SCRIPT_CONVERSIONS)
    assert ok(cli(settings, "attribute", "--events", "-", stdin=events.read_bytes())) == by_file


def test_produce_from_stdin(make_settings) -> None:
    settings = make_settings()
    lines = [orjson.dumps(e) for e in SCRIPT] + [b"{broken"]
    done = cli(settings, "produce", "-", stdin=b"\n".join(lines) + b"\n\n")
    assert ok(done) == f"published {len(lines)} values to {settings.topic(RAW)}\n".encode()
    assert sorted(m.value for m in read_all(settings, settings.topic(RAW))) == sorted(lines)


# the records' Kafka timestamps: recent, or the broker's retention (7 days, checked every 5
# minutes) may delete them while the test reads them
TS = int(time.time()) * 1000
RECORDS = [  # partition, key, value, headers; partitions 1 and 3 stay empty
    (0, b"k-a", b'{"n":"a0"}', [("origin", b"test")]),
    (0, b"k-b", b"b0", []),
    (0, b"k-a", b"a1", []),
    (2, b"k-a", b"a2", []),
    (2, None, b"n0 \xff", [("bare", None)]),
]


def send(settings, topic: str) -> None:
    """RECORDS to their partitions, the i-th with timestamp TS + i."""

    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, **aiokafka_options(settings)
        )
        await producer.start()
        try:
            for i, (partition, key, value, headers) in enumerate(RECORDS):
                await producer.send_and_wait(
                    topic, value, key=key, partition=partition, timestamp_ms=TS + i, headers=headers
                )
        finally:
            await producer.stop()

    asyncio.run(run())


def expected_json(partition: int) -> list[dict]:
    """tail --format json of RECORDS' `partition`, in offset order."""
    ours = [(i, r) for i, r in enumerate(RECORDS) if r[0] == partition]
    return [
        {
            "key": None if key is None else key.decode(),
            "partition": partition,
            "offset": offset,
            "timestamp": TS + i,
            "headers": [[name, None if v is None else v.decode()] for name, v in headers],
            "value": value.decode(errors="replace"),
        }
        for offset, (i, (_, key, value, headers)) in enumerate(ours)
    ]


def test_tail_takes_n_records_stops_at_the_end_and_filters(make_settings) -> None:
    settings = make_settings()
    create_topics(settings)
    topic = settings.topic(SESSIONS)
    send(settings, topic)
    everything = [
        orjson.loads(line)
        for line in ok(cli(settings, "tail", topic, "--until-end", "--format", "json")).splitlines()
    ]
    assert [d for d in everything if d["partition"] == 0] == expected_json(0)
    assert [d for d in everything if d["partition"] == 2] == expected_json(2)
    assert len(everything) == len(RECORDS)

    def tail(*args: str) -> list[bytes]:
        return ok(cli(settings, "tail", topic, *args)).splitlines()

    assert tail("--from-beginning", "--partition", "0", "-n", "2") == [b'{"n":"a0"}', b"b0"]
    assert tail("--partition", "2", "--until-end") == [b"a2", "n0 \ufffd".encode()]
    assert tail("--key", "k-a", "--partition", "0", "--until-end") == [b'{"n":"a0"}', b"a1"]
    assert sorted(tail("--key", "k-a", "--until-end")) == sorted([b'{"n":"a0"}', b"a1", b"a2"])
    # the count ends it (the topic holds no more records with that key: following would wait)
    assert sorted(tail("--key", "k-a", "--from-beginning", "-n", "3")) == sorted(
        [b'{"n":"a0"}', b"a1", b"a2"]
    )
    assert tail("--partition", "1", "--until-end") == []  # an empty partition ends at once
    assert ok(cli(settings, "tail", settings.topic(DLQ), "--until-end")) == b""  # an empty topic too
    for args, error in [
        (["no.such.topic"], f"no topic no.such.topic (Kafka at {settings.kafka_bootstrap_servers})"),
        (
            [topic, "--partition", "9"],
            f"topic {topic} has no partition 9 (it has 0-3) (Kafka at {settings.kafka_bootstrap_servers})",
        ),
    ]:
        done = cli(settings, "tail", *args, "--until-end")
        assert (done.returncode, done.stdout, done.stderr) == (
            2,
            b"",
            f"touchstream: error: {error}\n".encode(),
        )


def test_tail_ends_quietly_on_ctrl_c(make_settings) -> None:
    settings = make_settings()
    create_topics(settings)
    topic = settings.topic(SESSIONS)
    send(settings, topic)
    tail = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "tail", topic, "--from-beginning", "--partition", "2"],
        env=settings_env(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: list[bytes] = []

    def read_two() -> None:
        lines.extend(tail.stdout.readline() for _ in range(2))

    reader = threading.Thread(target=read_two, daemon=True)
    reader.start()
    reader.join(timeout=60)  # a tail that prints nothing fails the test instead of hanging it
    if reader.is_alive():
        tail.kill()
    assert lines == [b"a2\n", "n0 \ufffd\n".encode()]
    tail.send_signal(signal.SIGINT)  # it follows the topic now
    out, err = tail.communicate(timeout=60)
    assert (tail.returncode, out, err) == (130, b"", b"")


def test_tail_against_an_unreachable_broker_is_one_line(make_settings) -> None:
    settings = make_settings()
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = {"TOUCHSTREAM_KAFKA_BOOTSTRAP_SERVERS": address, "PYTHONWARNINGS": "always::ResourceWarning"}
    for args in (["--until-end"], ["-n", "1", "--format", "json"]):
        done = cli(settings, "tail", settings.topic(CONVERSIONS), *args, env=env)
        assert (done.returncode, done.stdout) == (2, b"")
        assert done.stderr.decode() == (
            f"touchstream: error: cannot reach Kafka at {address} (TOUCHSTREAM_KAFKA_BOOTSTRAP_SERVERS)\n"
        )


def test_model_out_then_snapshot_round_trip(make_settings, tmp_path) -> None:
    """--model-out writes attribution.models values; --snapshot of that file gives the
    attributions of the snapshot they read back to, whatever form the values come in."""
    settings = make_settings()
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in SCRIPT))
    model = tmp_path / "snap.jsonl"
    ok(cli(settings, "attribute", "--events", str(events), "--model-out", str(model)))
    published = [orjson.loads(line) for line in model.read_bytes().splitlines()]
    for value in published:
        validate("model", value)
    assert [v["model"] for v in published] == ["markov", "shapley", "shapley_ordered"]
    snapshot = snapshots.from_published(published)
    replay = EventReplay(
        settings.config(), settings.limits(), int(time.time() * 1000), settings.partitions, snapshot
    )
    expected = list(replay.run(events.read_bytes().splitlines()))
    assert {orjson.loads(v)["model_snapshot"] for v in expected} == {snapshot.snapshot_id}
    as_array = tmp_path / "snap.json"
    as_array.write_bytes(orjson.dumps(published, option=orjson.OPT_INDENT_2))
    for source in (model, as_array):
        assert (
            ok(cli(settings, "attribute", "--events", str(events), "--snapshot", str(source))).splitlines()
            == expected
        )
    # one value as it is (a pretty-printed object), with the models it holds selected
    markov = tmp_path / "markov.json"
    markov.write_bytes(orjson.dumps(published[0], option=orjson.OPT_INDENT_2))
    only = ("--models", "linear,markov")
    args = ("attribute", "--events", str(events), *only)
    assert ok(cli(settings, *args, "--snapshot", str(markov))) == ok(
        cli(settings, *args, "--snapshot", str(model))
    )


def test_a_snapshot_as_published_on_attribution_models_is_accepted(
    make_settings, start_worker, tmp_path
) -> None:
    settings = make_settings(model_refresh_ms=3_600_000, web_actions=True)
    start_worker(settings)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in SCRIPT))
    ok(cli(settings, "produce", str(events)))
    wait_drained(settings)
    refresh = urllib.request.Request(f"http://127.0.0.1:{settings.web_port}/models/refresh", method="POST")
    with urllib.request.urlopen(refresh, timeout=30) as page:
        published = orjson.loads(page.read())
    assert [v["model"] for v in published] == ["markov", "shapley", "shapley_ordered"]
    tailed = ok(cli(settings, "tail", settings.topic(MODELS), "--until-end"))
    assert sorted(tailed.splitlines()) == sorted(
        orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for v in published
    )
    from_topic = tmp_path / "models.jsonl"
    from_topic.write_bytes(tailed)
    from_refresh = tmp_path / "refresh.json"
    from_refresh.write_bytes(orjson.dumps(published))
    args = ("attribute", "--events", str(events), "--snapshot")
    offline = ok(cli(settings, *args, str(from_topic)))
    assert {orjson.loads(v)["model_snapshot"] for v in offline.splitlines()} == {published[0]["snapshot_id"]}
    assert offline == ok(cli(settings, *args, str(from_refresh)))


def test_errors_name_the_file_and_the_line(make_settings, tmp_path) -> None:
    settings = make_settings()
    bad_csv = tmp_path / "paths.csv"
    bad_csv.write_bytes(PATHS_CSV + b"x > y,1,2\n")
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in SCRIPT))
    model = tmp_path / "snap.jsonl"
    ok(cli(settings, "attribute", "--events", str(events), "--model-out", str(model)))
    lines = model.read_bytes().splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"\n".join([lines[0], lines[1], b'{"model": "markov"}']) + b"\n")
    markov_only = tmp_path / "markov.jsonl"
    markov_only.write_bytes(lines[0] + b"\n")
    cases = [
        (["--paths", str(bad_csv)], f"{bad_csv}:5: expected 4 columns (path,conversions,value,null), got 3"),
        (["--paths", "-"], "<stdin>:1: expected 4 columns (path,conversions,value,null), got 2"),
        (
            ["--paths", str(tmp_path / "nope.csv")],
            f"cannot read {tmp_path / 'nope.csv'}: No such file or directory",
        ),
        (
            ["--events", str(events), "--snapshot", str(broken)],
            f'{broken}:3: not an attribution.models value: {{"model":"markov"}}',
        ),
        (
            ["--events", str(events), "--snapshot", str(markov_only), "--models", "linear,markov,shapley"],
            f"{markov_only}: the snapshot has no shapley value (it holds markov); select the models with "
            "--models or TOUCHSTREAM_MODELS, e.g. --models linear,markov",
        ),
        (
            ["--paths", str(bad_csv), "--model-out", str(model)],
            "--snapshot and --model-out go with --events, not --paths",
        ),
        (
            ["--events", str(events), "--model-out", str(events)],
            f"--model-out {events} would overwrite the input it reads",
        ),
        (
            ["--paths", str(bad_csv), "--markov-order", "0"],
            "TOUCHSTREAM_MARKOV_ORDER must be 1 or more, got 0",
        ),
    ]
    for args, error in cases:
        done = cli(settings, "attribute", *args, stdin=b"not,a csv row\n")
        assert (done.returncode, done.stdout) == (2, b""), args
        assert done.stderr.decode() == f"touchstream: error: {error}\n", args
