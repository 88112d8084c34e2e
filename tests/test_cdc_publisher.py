"""The CDC publisher on the test broker: Debezium consumers, kcat, fencing, kill -9.

Exactly-once is checked as Apache Kafka's ``read_committed`` defines it: the test broker
shows records of aborted transactions to every consumer, so the tests read the ABORT
markers from the batch headers (:mod:`kafka_markers`) and drop what they cover.
"""

from __future__ import annotations

import datetime
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka_broker import Broker
from kafka_markers import aborted_offsets

import offsetdb
from offsetdb.materializers.publisher import PublisherFenced
from offsetdb.query.cdc import publisher_for

EPOCH = datetime.date(1970, 1, 1)
Message = tuple[int, int, Any, Any]  # partition, offset, key payload, value payload
Decode = Callable[[str, bytes], Any]  # (topic, message bytes) -> what a test looks at


def json_key(topic: str, key: bytes) -> Any:
    """A Connect JSON key's payload (a progress record's key is the bare publisher id)."""
    return json.loads(key)["payload"] if key.startswith(b"{") else None


def json_value(topic: str, value: bytes) -> Any:
    """A Connect JSON value: ``{"schema": ..., "payload": ...}``."""
    return json.loads(value)


def read_topic(
    broker: Broker, topic: str, idle: float = 1.5, decode_key: Decode = json_key, decode_value: Decode = json_value
) -> list[Message]:
    """Every committed message of ``topic`` (ABORT markers applied), per partition in order."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    partitions = len(admin.list_topics(timeout=10).topics[topic].partitions)
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            **broker.client_settings,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    messages: list[Message] = []
    last = time.monotonic()
    while time.monotonic() - last < idle:
        message = consumer.poll(0.2)
        if message is None or message.error() is not None:
            continue
        last = time.monotonic()
        key = message.key()
        value = message.value()
        messages.append(
            (
                message.partition() or 0,
                message.offset() or 0,
                None if key is None else decode_key(topic, key),
                None if value is None else decode_value(topic, value),
            )
        )
    consumer.close()
    hidden = {p: aborted_offsets(broker.bootstrap, topic, p) for p in range(partitions)}
    return [m for m in messages if m[1] not in hidden[m[0]]]


def rebuild(messages: list[Message]) -> dict[Any, Any]:
    """What a Debezium consumer makes of a table topic: op/before/after applied to a dict."""
    table: dict[Any, Any] = {}
    for _, _, key, value in messages:
        if value is None:
            continue  # a tombstone
        payload = value["payload"]
        if payload["op"] in ("c", "r", "u"):
            table[json.dumps(key, sort_keys=True)] = payload["after"]
        elif payload["op"] == "d":
            assert table.pop(json.dumps(key, sort_keys=True)) == payload["before"]
        elif payload["op"] == "t":
            table.clear()
    return table


def expected_rows(conn: Any, table: str, key_columns: list[str]) -> dict[Any, Any]:
    cursor = conn.cursor()
    cursor.execute(f"SELECT * FROM {table}")
    names = [d[0] for d in cursor.description]
    out = {}
    for row in cursor.fetchall():
        record = dict(zip(names, row, strict=True))
        for name, value in record.items():
            if hasattr(value, "is_finite"):
                record[name] = str(value)  # NUMERIC as text (decimal.handling.mode=string)
            elif hasattr(value, "toordinal"):
                record[name] = (value - EPOCH).days  # io.debezium.time.Date: days since 1970
        key = {k: record[k] for k in key_columns}
        out[json.dumps(key, sort_keys=True)] = record
    return out


def wait_published(publisher: Any, offset: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (publisher.stats.resolved or -1) < offset:
        assert time.monotonic() < deadline, f"the publisher did not reach offset {offset}: {publisher.stats}"
        time.sleep(0.05)


def kcat_environment(tmp_path: Path) -> dict[str, str]:
    """kcat with the librdkafka of the confluent-kafka wheel (Debian's is too old for Tansu)."""
    import confluent_kafka

    libs = glob.glob(os.path.join(os.path.dirname(confluent_kafka.__file__), "..", "confluent_kafka.libs", "librdkafka*.so*"))
    assert libs, "the confluent-kafka wheel ships no librdkafka"
    lib_dir = tmp_path / "librdkafka"
    lib_dir.mkdir(exist_ok=True)
    link = lib_dir / "librdkafka.so.1"
    if not link.exists():
        link.symlink_to(os.path.realpath(libs[0]))
    return {**os.environ, "LD_LIBRARY_PATH": str(lib_dir)}


def test_topics_reproduce_each_table_for_debezium_consumers(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price NUMERIC(8,2), added DATE)")
    cursor.execute("CREATE TABLE notes (body TEXT)")
    cursor.execute("CREATE TABLE gone (id INTEGER PRIMARY KEY)")
    cursor.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", [(i, f"item {i}", i * 1.5, "2024-01-31") for i in range(20)])
    prefix = f"p{uuid.uuid4().hex[:8]}"
    publisher = publisher_for(conn, topic_prefix=prefix, bootstrap=kafka_broker.bootstrap, heartbeat_interval=0.3)
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,))
    thread.start()
    try:
        wait_published(publisher, conn.last_commit_offset or 0)  # the snapshot is out
        cursor.execute("INSERT INTO gone VALUES (1)")
        cursor.execute("UPDATE items SET price = price + 1 WHERE id < 5")
        cursor.execute("DELETE FROM items WHERE id >= 15")
        cursor.execute("UPDATE items SET id = 100 WHERE id = 7")  # a key change: d + tombstone + c
        cursor.execute("INSERT INTO notes VALUES ('a'), ('b')")
        cursor.execute("BEGIN")
        cursor.execute("INSERT INTO items VALUES (200, 'two', 2, NULL)")
        cursor.execute("INSERT INTO notes VALUES ('c')")
        cursor.execute("COMMIT")
        cursor.execute("DROP TABLE gone")
        end = conn.last_commit_offset
        assert end is not None
        wait_published(publisher, end)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()

    items = read_topic(kafka_broker, f"{prefix}.items")
    assert rebuild(items) == expected_rows(conn, "items", ["id"])
    snapshot = [m[3]["payload"]["source"]["snapshot"] for m in items if m[3] and m[3]["payload"]["op"] == "r"]
    assert snapshot[0] == "first" and snapshot[-1] == "last" and len(snapshot) == 20  # the last rows of all
    values = [m[3] for m in items]
    assert values[0]["schema"]["name"] == f"{prefix}.items.Envelope"
    key_change = [m for m in items if m[2] == {"id": 7}][-2:]
    assert key_change[0][3]["payload"]["op"] == "d" and key_change[1][3] is None
    assert rebuild(read_topic(kafka_broker, f"{prefix}.notes")) and len(rebuild(read_topic(kafka_broker, f"{prefix}.notes"))) == 3
    gone = read_topic(kafka_broker, f"{prefix}.gone")
    assert gone[-1][3]["payload"]["op"] == "t", "a DROP TABLE ends the table's stream"

    # Transaction metadata: BEGIN and END for each, END counting the events per table.
    events_by_txn: dict[str, int] = {}
    for topic in (f"{prefix}.items", f"{prefix}.notes", f"{prefix}.gone"):
        for _, _, _, value in read_topic(kafka_broker, topic):
            if value is not None and value["payload"]["transaction"] is not None:
                txn = value["payload"]["transaction"]["id"]
                events_by_txn[txn] = events_by_txn.get(txn, 0) + 1
    metadata = [m[3]["payload"] for m in read_topic(kafka_broker, f"{prefix}.transaction")]
    begins = [p["id"] for p in metadata if p["status"] == "BEGIN"]
    ends = {p["id"]: p for p in metadata if p["status"] == "END"}
    assert begins == list(ends) and set(begins) == set(events_by_txn)
    for txn, count in events_by_txn.items():
        assert ends[txn]["event_count"] == count
    two_tables = [p for p in ends.values() if len(p["data_collections"]) == 2]
    assert two_tables and {d["data_collection"] for d in two_tables[0]["data_collections"]} == {"items", "notes"}

    conn.close()


@pytest.mark.external
def test_kcat_reads_the_envelopes_an_ordinary_consumer_reads(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    # kcat is a Debian package, not a pip one: this test runs with -m external (.ci/run
    # installs kcat and runs it), so the default suite needs nothing beyond pip.
    if shutil.which("kcat") is None:
        pytest.fail("kcat is not installed: apt-get install kcat (.ci/run does)", pytrace=False)
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    cursor.executemany("INSERT INTO items VALUES (?, ?)", [(i, f"item {i}") for i in range(10)])
    prefix = f"p{uuid.uuid4().hex[:8]}"
    publisher = publisher_for(conn, topic_prefix=prefix, bootstrap=kafka_broker.bootstrap, heartbeat_interval=0.3)
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,))
    thread.start()
    try:
        cursor.execute("UPDATE items SET name = 'changed' WHERE id < 3")
        cursor.execute("DELETE FROM items WHERE id = 9")
        end = conn.last_commit_offset
        assert end is not None
        wait_published(publisher, end)
    finally:
        stop.set()
        thread.join(30)
    items = read_topic(kafka_broker, f"{prefix}.items")
    done = subprocess.run(
        ["kcat", "-b", kafka_broker.bootstrap, "-C", "-t", f"{prefix}.items", "-e", "-J",
         "-X", "isolation.level=read_committed"],
        capture_output=True, text=True, timeout=60, env=kcat_environment(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    seen = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    payloads = [json.loads(s["payload"]) if s["payload"] else None for s in seen]
    assert payloads == [m[3] for m in items]
    conn.close()


def test_a_second_publisher_with_the_same_id_fences_the_first(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    prefix = f"p{uuid.uuid4().hex[:8]}"
    first = publisher_for(conn, topic_prefix=prefix, bootstrap=kafka_broker.bootstrap, heartbeat_interval=0.2)
    second = publisher_for(conn, topic_prefix=prefix, bootstrap=kafka_broker.bootstrap, heartbeat_interval=0.2)
    failures: list[BaseException] = []

    def run(publisher: Any, stop: threading.Event) -> None:
        try:
            publisher.run(stop)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            failures.append(exc)

    stop_first, stop_second = threading.Event(), threading.Event()
    a = threading.Thread(target=run, args=(first, stop_first))
    a.start()
    cursor.execute("INSERT INTO t VALUES (1)")
    wait_published(first, conn.last_commit_offset or 0)
    b = threading.Thread(target=run, args=(second, stop_second))
    b.start()
    cursor.execute("INSERT INTO t VALUES (2)")
    a.join(30)
    assert not a.is_alive(), "the first publisher kept running after being fenced"
    assert len(failures) == 1 and isinstance(failures[0], PublisherFenced)
    wait_published(second, conn.last_commit_offset or 0)
    stop_second.set()
    b.join(30)
    keys = [m[2]["id"] for m in read_topic(kafka_broker, f"{prefix}.t")]
    assert keys == [1, 2]
    conn.close()


def _writer(target: str, data_dir: str, stop: threading.Event, committed: list[int]) -> None:
    conn = offsetdb.connect(target, autocommit=True, data_dir=data_dir)
    cursor = conn.cursor()
    rng = random.Random(7)
    n = 0
    try:
        while not stop.is_set():
            n += 1
            if n % 3 and n > 3:
                cursor.execute("UPDATE counters SET n = n + 1 WHERE id = ?", (rng.randint(1, 3),))
            else:
                cursor.execute("INSERT INTO counters VALUES (?, 0)", (n + 100,))
            committed.append(conn.last_commit_offset or -1)
            time.sleep(0.02)
    finally:
        conn.close()


def _kill_rounds(
    broker: Broker,
    tmp_path: Path,
    rounds: int,
    avro: tuple[Path, Decode, Decode] | None = None,
    window: tuple[float, float] = (0.5, 3.0),
) -> None:
    """Kill -9 the publisher (``offsetdb cdc``) ``rounds`` times under writers, then check.

    Each publisher is killed at a random moment ``window`` seconds after it started.
    ``avro``: (registry file, key decoder, value decoder): the publisher publishes Avro
    to a ``mock://`` registry shared through that file (see shared_registry.py), and the
    table and transaction topics are read with those decoders.
    """
    url = f"kafka://{broker.bootstrap}/cdc{uuid.uuid4().hex[:10]}"
    conn = offsetdb.connect(url, autocommit=True, data_dir=str(tmp_path / "writer"))
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    cursor.executemany("INSERT INTO counters VALUES (?, 0)", [(1,), (2,), (3,)])
    prefix = f"p{uuid.uuid4().hex[:8]}"
    command = [
        sys.executable, "-m", "offsetdb.cli", "cdc", url, "--data-dir", str(tmp_path / "publisher"),
        "--topic-prefix", prefix, "--heartbeat", "1",
    ]  # fmt: skip
    decoders: dict[str, Decode] = {}
    if avro is not None:
        registry_file, decoders["decode_key"], decoders["decode_value"] = avro
        command[1:3] = [str(Path(__file__).with_name("shared_registry.py")), str(registry_file)]
        command += ["--format", "avro", "--schema-registry", "mock://shared"]
    stop = threading.Event()
    committed: list[int] = []
    writer = threading.Thread(target=_writer, args=(url, str(tmp_path / "writer"), stop, committed))
    writer.start()
    rng = random.Random(rounds)
    try:
        for _ in range(rounds):
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(*window))
            process.send_signal(signal.SIGKILL)
            process.wait()
        stop.set()
        writer.join()
        end = max(committed)
        log = tmp_path / "publisher.log"
        with log.open("wb") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 120
                while True:
                    progress = read_topic(broker, f"{prefix}.progress", idle=0.5)
                    if progress and (progress[-1][3]["resolved"] or -1) >= end:
                        break
                    assert time.monotonic() < deadline, log.read_text()[-3000:]
                    time.sleep(1)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
        # Every committed transaction exactly once, in commit order, with its events.
        events = read_topic(broker, f"{prefix}.counters", **decoders)
        offsets_seen = []
        snapshot_at = -1
        for _, _, _, value in events:
            if value is None:
                continue
            payload = value["payload"]
            if payload["op"] == "r":
                snapshot_at = payload["source"]["offset"]
                continue
            if not offsets_seen or offsets_seen[-1] != payload["source"]["offset"]:
                offsets_seen.append(payload["source"]["offset"])
        assert offsets_seen == sorted(set(offsets_seen)), "a transaction published twice or out of order"
        assert snapshot_at >= 0 and all(o > snapshot_at for o in offsets_seen)
        assert {o for o in committed if o > snapshot_at} == set(offsets_seen) and max(offsets_seen) == end
        metadata = read_topic(broker, f"{prefix}.transaction", **decoders)
        begins = [m[3]["payload"]["id"] for m in metadata if m[3]["payload"]["status"] == "BEGIN"]
        assert len(begins) == len(set(begins)) == len(offsets_seen)
        assert rebuild(events) == expected_rows(conn, "counters", ["id"])
    finally:
        stop.set()
        writer.join()
        conn.close()


def test_publisher_killed_at_random_moments_publishes_exactly_once(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    _kill_rounds(kafka_broker, tmp_path, rounds=2)


@pytest.mark.slow
def test_publisher_killed_many_times_publishes_exactly_once(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    _kill_rounds(kafka_broker, tmp_path, rounds=25)
