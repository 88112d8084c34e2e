"""Kafka sources: topics into tables, exactly once, bad records kept and explained.

Every test produces to real topics on the test broker and reads the outcome through SQL:
the table, ``offsetdb_source_offsets``, ``offsetdb_ingest_errors`` and the dead-letter
topic. Crash tests kill the ingesting process with SIGKILL; exactly once means every
good record's row is in the table once, and the stored next offsets are the topic's ends.
"""

from __future__ import annotations

import json
import random
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
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka_broker import Broker

import offsetdb

WORKER = str(Path(__file__).parent / "source_worker.py")


def make_topic(broker: Broker, partitions: int = 1) -> str:
    topic = f"src{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    return topic


def producer(broker: Broker) -> Producer:
    return Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})


def produce(broker: Broker, topic: str, records: list[tuple[Any, ...]], one_by_one: bool = False) -> None:
    """``records``: (partition, key, value[, headers]) with str/dict/bytes/None keys and values.

    ``one_by_one``: a batch of one record each, for tests that read the broker's high
    watermark (Tansu's is wrong after multi-record batches, docs/kafka-compatibility.md).
    """
    p = producer(broker)
    for record in records:
        partition, key, value = record[:3]
        headers = record[3] if len(record) > 3 else None
        p.produce(topic, encode(value), encode(key), partition=partition, headers=headers)
        if one_by_one:
            assert p.flush(30) == 0
    assert p.flush(30) == 0


def encode(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value).encode()


def wait_until(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


def ingested(cursor: Any, source: str) -> int:
    """Source records the stored offsets say are done (good and bad)."""
    rows = cursor.execute(
        "SELECT coalesce(sum(records), 0) FROM offsetdb_source_offsets WHERE source = ?", (source,)
    ).fetchall()
    return int(rows[0][0])


def has_table(cursor: Any, name: str) -> bool:
    return (name,) in cursor.execute("SHOW TABLES").fetchall()


def read_dlq(broker: Broker, topic: str, idle: float = 2.0) -> list[Any]:
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": f"r{uuid.uuid4().hex}", **broker.client_settings}
    )
    metadata = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in metadata.partitions])
    out = []
    last = time.monotonic()
    while time.monotonic() - last < idle:
        message = consumer.poll(0.2)
        if message is None or message.error() is not None:
            continue
        last = time.monotonic()
        out.append(message)
    consumer.close()
    return out


def test_json_append_ingests_every_record_of_a_multi_partition_topic_exactly_once(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    topic = make_topic(kafka_broker, partitions=3)
    produce(kafka_broker, topic, [(i % 3, None, {"id": i, "name": f"n{i}", "score": i / 4}) for i in range(600)])
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE events (id BIGINT, name TEXT, score DOUBLE PRECISION, p INTEGER, o BIGINT)")
    cursor.execute(
        f"CREATE SOURCE ev FROM KAFKA TOPIC '{topic}' FORMAT JSON INTO events "
        f"COLUMNS (p FROM PARTITION, o FROM OFFSET) WITH (bootstrap = '{kafka_broker.bootstrap}', batch_rows = 100)"
    )
    wait_until(lambda: has_table(cursor, "offsetdb_source_offsets") and ingested(cursor, "ev") == 600, "600 records are in")
    produce(kafka_broker, topic, [(i % 3, None, {"id": i, "name": f"n{i}", "score": i / 4}) for i in range(600, 900)])
    wait_until(lambda: ingested(cursor, "ev") == 900, "900 records are in")
    rows = cursor.execute("SELECT id, name, score, p, o FROM events ORDER BY id").fetchall()
    assert [r[0] for r in rows] == list(range(900))
    assert all(r[1] == f"n{r[0]}" and r[2] == r[0] / 4 and r[3] == r[0] % 3 for r in rows)
    assert sorted(r[4] for r in rows if r[3] == 0) == list(range(300)), "each record once, at its offset"
    offsets = cursor.execute(
        "SELECT kafka_partition, next_offset, records, rows_written, errors FROM offsetdb_source_offsets ORDER BY 1"
    ).fetchall()
    assert offsets == [(0, 300, 300, 300, 0), (1, 300, 300, 300, 0), (2, 300, 300, 300, 0)]
    view = cursor.execute(
        "SELECT name, topic, format, mode, into_table, state, partitions, next_offsets, lag, records, rows_written, errors, runner FROM offsetdb_sources"
    ).fetchall()
    assert view == [("ev", topic, "JSON", "APPEND", "events", "RUNNING", 3, "0:300 1:300 2:300", 0, 900, 900, 0, "running")]
    conn.close()


BAD_CORPUS: list[tuple[Any, Any, str, str]] = [
    # key, value, stage, words the message must contain
    (None, b'{"id": 101, "code": "tr', "VALUE_CONVERTER", "not valid JSON"),
    (None, {"id": "one hundred", "code": "ab"}, "TASK_PUT", 'invalid input syntax for type integer: "one hundred"'),
    (None, {"id": 103, "code": None}, "TASK_PUT", 'null value in column "code"'),
    (None, {"id": 104, "code": "much too long for five"}, "TASK_PUT", "value too long for type character varying(5)"),
    (None, {"id": 105, "code": "dup"}, "TASK_PUT", 'unique constraint on "items"'),
    (None, [1, 2, 3], "VALUE_CONVERTER", "is a JSON list, not an object"),
    (None, None, "VALUE_CONVERTER", "tombstone"),
    (None, {"id": 108, "code": "ok", "at": "not a time"}, "TASK_PUT", "not a time"),
    (None, {"id": 109, "code": "ok", "blob": "***"}, "TASK_PUT", "base64"),
    (None, {"id": 2**40, "code": "big"}, "TASK_PUT", "integer out of range"),
    (None, {"id": 111, "code": "x" * 100_000}, "TASK_PUT", "value too long for type character varying(5)"),
    (None, {"id": 112, "code": "n1", "doc": "a\u0000b"}, "TASK_PUT", 'invalid byte sequence for encoding "UTF8": 0x00'),
    (None, b'{"id": 113, "code": "n2", "doc": "\\ud800"}', "TASK_PUT", "a lone surrogate"),
    (None, b'{"id": "\\ud800\\u0000", "code": "n3"}', "TASK_PUT", 'invalid input syntax for type integer: "\\ud800\\x00"'),
]


@pytest.mark.parametrize("table", ["unique", "keyless"])
def test_bad_records_land_in_the_dead_letter_topic_and_ingest_errors_naming_the_problem(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path, table: str
) -> None:
    # "keyless": no key and no UNIQUE constraint, so the batch takes the bulk APPEND path;
    # the same records fail there with the same messages (the UNIQUE case is left out).
    corpus = [c for c in BAD_CORPUS if table == "unique" or "unique" not in c[3]]
    topic = make_topic(kafka_broker)
    good = [{"id": i, "code": f"c{i}", "at": 1_700_000_000_000 + i, "blob": "AAEC", "doc": {"k": [i]}} for i in range(20)]
    records: list[tuple[Any, ...]] = [(0, None, g) for g in good[:10]]
    records.append((0, None, {"id": 50, "code": "dup"}))  # takes the code 'dup' first
    records += [(0, key, value, [("trace", b"t-%d" % n)]) for n, (key, value, _, _) in enumerate(corpus)]
    records += [(0, None, g) for g in good[10:]]
    produce(kafka_broker, topic, records)
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    cursor = conn.cursor()
    unique = "UNIQUE" if table == "unique" else ""
    cursor.execute(
        f"CREATE TABLE items (id INTEGER NOT NULL, code VARCHAR(5) NOT NULL {unique}, at TIMESTAMP, blob BYTEA, doc TEXT)"
    )
    dlq = f"{topic}.bad"
    cursor.execute(
        f"CREATE SOURCE it FROM KAFKA TOPIC '{topic}' FORMAT JSON INTO items "
        f"WITH (bootstrap = '{kafka_broker.bootstrap}', dead_letter_topic = '{dlq}', batch_rows = 7)"
    )
    wait_until(lambda: has_table(cursor, "offsetdb_source_offsets") and ingested(cursor, "it") == len(records), "every record is done")
    rows = cursor.execute("SELECT id, code, at, blob, doc FROM items ORDER BY id").fetchall()
    assert sorted(r[0] for r in rows) == [*range(20), 50], "every good record exactly once"
    first = next(r for r in rows if r[0] == 3)
    assert str(first[2]) == "2023-11-14 22:13:20.003000" and first[3] == b"\x00\x01\x02" and json.loads(first[4]) == {"k": [3]}
    errors = cursor.execute(
        "SELECT kafka_offset, topic, stage, exception_class, sqlstate, message, kafka_value FROM offsetdb_ingest_errors ORDER BY kafka_offset"
    ).fetchall()
    assert len(errors) == len(corpus)
    for (_key, value, stage, words), error in zip(corpus, errors, strict=True):
        assert error[1] == topic and error[2] == stage, error
        assert words in error[5], (words, error[5])
        assert f"offset {error[0]}" in error[5]
        raw = encode(value)
        assert error[6] == (None if raw is None else raw[: 64 * 1024]), "the first 64 KiB are kept"
    assert cursor.execute("SELECT errors FROM offsetdb_sources").fetchall() == [(len(corpus),)]

    messages = read_dlq(kafka_broker, dlq)
    assert len(messages) >= len(corpus)  # at least once; each names its origin
    by_offset = {}
    for message in messages:
        headers = {k: v.decode() for k, v in message.headers()}
        assert headers["__connect.errors.topic"] == topic and headers["__connect.errors.partition"] == "0"
        assert headers["__connect.errors.connector.name"] == "it"
        by_offset[int(headers["__connect.errors.offset"])] = (message, headers)
    assert sorted(by_offset) == [e[0] for e in errors]
    for (_key, value, stage, words), error in zip(corpus, errors, strict=True):
        message, headers = by_offset[error[0]]
        assert message.value() == encode(value), "the whole record goes to the DLQ"
        assert headers["__connect.errors.stage"] == stage
        assert words in headers["__connect.errors.exception.message"]
        assert headers["__connect.errors.exception.class.name"] == error[3]
        assert headers["trace"].startswith("t-"), "the record's own headers are kept"
    conn.close()


def test_upsert_replaces_rows_by_primary_key_and_a_null_value_deletes(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    topic = make_topic(kafka_broker, partitions=2)
    rng = random.Random(5)
    expected: dict[int, Any] = {}
    records: list[tuple[Any, ...]] = []
    for n in range(400):
        key = rng.randrange(40)
        partition = key % 2  # a key's records stay in order within its partition
        if rng.random() < 0.2:
            records.append((partition, {"id": key}, None))
            expected.pop(key, None)
        else:
            value = {"id": key, "qty": n, "label": f"v{n}"}
            records.append((partition, {"id": key}, value))
            expected[key] = (key, n, f"v{n}")
    records.append((1, "7", None))  # a bare key for a one-column primary key
    expected.pop(7, None)
    produce(kafka_broker, topic, records)
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE stock (id INTEGER PRIMARY KEY, qty INTEGER, label TEXT)")
    cursor.execute(
        f"CREATE SOURCE st FROM KAFKA TOPIC '{topic}' FORMAT JSON INTO stock MODE UPSERT "
        f"WITH (bootstrap = '{kafka_broker.bootstrap}', batch_rows = 50)"
    )
    wait_until(lambda: has_table(cursor, "offsetdb_source_offsets") and ingested(cursor, "st") == len(records), "every record is done")
    assert cursor.execute("SELECT id, qty, label FROM stock ORDER BY id").fetchall() == [expected[k] for k in sorted(expected)]
    assert cursor.execute("SELECT count(*) FROM offsetdb_ingest_errors").fetchall() == [(0,)]
    cursor.execute("ALTER SOURCE st PAUSE")  # nothing more is ingested before the replay
    conn.close()
    # Apply never reads Kafka: the log alone rebuilds the source, its rows and offsets.
    from offsetdb.query.database import digest, replay

    assert replay(str(tmp_path / "db"), str(tmp_path / "replayed")) == digest(str(tmp_path / "db"))


def test_pause_resume_and_drop_source(kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path) -> None:
    topic = make_topic(kafka_broker)
    produce(kafka_broker, topic, [(0, None, {"id": i}) for i in range(10)])
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE t (id INTEGER)")
    cursor.execute(f"CREATE SOURCE s FROM KAFKA TOPIC '{topic}' FORMAT JSON INTO t WITH (bootstrap = '{kafka_broker.bootstrap}')")
    wait_until(lambda: has_table(cursor, "offsetdb_source_offsets") and ingested(cursor, "s") == 10, "10 records are in")
    cursor.execute("ALTER SOURCE s PAUSE")
    wait_until(
        lambda: cursor.execute("SELECT state, runner FROM offsetdb_sources").fetchall()[0] in (("PAUSED", "stopped"), ("PAUSED", "not run by this node")),
        "the ingester stopped",
    )
    produce(kafka_broker, topic, [(0, None, {"id": i}) for i in range(10, 20)], one_by_one=True)
    time.sleep(2)  # a paused source must not ingest what arrives meanwhile
    assert cursor.execute("SELECT count(*) FROM t").fetchall() == [(10,)]
    assert cursor.execute("SELECT lag FROM offsetdb_sources").fetchall() == [(10,)]
    cursor.execute("ALTER SOURCE s RESUME")
    wait_until(lambda: ingested(cursor, "s") == 20, "20 records are in")
    with pytest.raises(offsetdb.ProgrammingError) as refused:
        cursor.execute("DROP TABLE t")
    assert refused.value.sqlstate == "2BP01"
    cursor.execute("DROP SOURCE s")
    assert cursor.execute("SELECT count(*) FROM offsetdb_source_offsets").fetchall() == [(0,)]
    assert cursor.execute("SELECT count(*) FROM offsetdb_sources").fetchall() == [(0,)]
    cursor.execute("DROP TABLE t")
    conn.close()


def test_source_statements_are_checked_and_system_tables_are_read_only(tmp_path: Path) -> None:
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True, run_sources=False)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    cursor.execute("CREATE TABLE h (v TEXT)")
    cases = [
        ("CREATE SOURCE s FROM KAFKA TOPIC 'x' FORMAT JSON INTO nope", "42P01"),
        ("CREATE SOURCE s FROM KAFKA TOPIC 'x' FORMAT XML INTO t", "0A000"),
        ("CREATE SOURCE s FROM KAFKA TOPIC 'x' FORMAT JSON INTO h MODE UPSERT", "42P16"),
        ("CREATE SOURCE s FROM KAFKA TOPIC 'x' FORMAT JSON INTO t COLUMNS (w FROM KEY)", "42703"),
        ("CREATE SOURCE s FROM KAFKA TOPIC 'x' FORMAT JSON INTO t WITH (batch_rows = 0)", "22023"),
        ("CREATE SOURCE s FROM KAFKA TOPIC 'x' FORMAT JSON INTO t WITH (colour = 'red')", "42601"),
        ("CREATE SOURCE s FROM KAFKA TOPIC 'x' FORMAT DEBEZIUM INTO t MODE APPEND", "42601"),
        ("CREATE SOURCE s FROM KAFKA 'x' FORMAT JSON INTO t", "42601"),
        ("CREATE SOURCE s FROM KAFKA TOPIC 'x' FORMAT AVRO INTO t", "42601"),
        ("ALTER SOURCE nope PAUSE", "42704"),
        ("DROP SOURCE nope", "42704"),
        ("CREATE TABLE offsetdb_mine (a INTEGER)", "42939"),
    ]
    for sql, sqlstate in cases:
        with pytest.raises(offsetdb.Error) as caught:
            cursor.execute(sql)
        assert caught.value.sqlstate == sqlstate, (sql, caught.value)
    cursor.execute("CREATE SOURCE s FROM KAFKA TOPIC 'x' FORMAT JSON INTO t COLUMNS (v FROM HEADER 'h') WITH (start = 'latest')")
    cursor.execute("CREATE SOURCE IF NOT EXISTS s FROM KAFKA TOPIC 'y' FORMAT JSON INTO t")
    with pytest.raises(offsetdb.Error) as caught:
        cursor.execute("CREATE SOURCE s FROM KAFKA TOPIC 'y' FORMAT JSON INTO t")
    assert caught.value.sqlstate == "42710"
    for sql in (
        "INSERT INTO offsetdb_source_offsets VALUES ('s', 0, 99, 0, 0, 0)",
        "UPDATE offsetdb_source_definitions SET state = 'PAUSED'",
        "DELETE FROM offsetdb_ingest_errors",
        "DROP TABLE offsetdb_source_offsets",
        "INSERT INTO offsetdb_sources VALUES ('x')",
    ):
        with pytest.raises(offsetdb.Error) as caught:
            cursor.execute(sql)
        assert caught.value.sqlstate in ("42501", "42601"), (sql, caught.value)
    assert cursor.execute("SELECT name, topic, state FROM offsetdb_source_definitions").fetchall() == [("s", "x", "RUNNING")]
    assert cursor.execute("SELECT name, runner FROM offsetdb_sources").fetchall() == [("s", "sources are not run by this process")]
    cursor.execute("DROP SOURCE IF EXISTS s")
    cursor.execute("DROP SOURCE IF EXISTS s")
    conn.close()


# --- crashes -----------------------------------------------------------------------------


class Worker:
    """A source_worker.py process and the lines it printed (read by a thread)."""

    def __init__(self, target: str, data_dir: str | None = None) -> None:
        command = [sys.executable, WORKER, target] + ([data_dir] if data_dir else [])
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def ingested(self) -> int:
        counts = [int(line.split()[1]) for line in list(self.lines) if line.startswith("ingested ") and line.split()[1].isdigit()]
        return counts[-1] if counts else 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._reader.join(10)


def _keep_producing(
    broker: Broker, topic: str, partitions: int, total: int, stop: threading.Event, pause: float = 0.02
) -> threading.Thread:
    def run() -> None:
        p = producer(broker)
        for i in range(total):
            p.produce(topic, json.dumps({"id": i, "v": f"v{i}"}).encode(), partition=i % partitions)
            if i % 50 == 49:
                p.flush(30)
                if stop.wait(pause):
                    break
        p.flush(30)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _check_exactly_once(cursor: Any, source: str, total: int, partitions: int) -> None:
    wait_until(lambda: ingested(cursor, source) == total, f"all {total} records are in", timeout=180)
    ids = [r[0] for r in cursor.execute("SELECT id FROM events ORDER BY id").fetchall()]
    assert ids == list(range(total)), "every record exactly once"
    offsets = cursor.execute(
        "SELECT kafka_partition, next_offset, records FROM offsetdb_source_offsets WHERE source = ? ORDER BY 1", (source,)
    ).fetchall()
    per_partition = [len(range(p, total, partitions)) for p in range(partitions)]
    assert offsets == [(p, n, n) for p, n in enumerate(per_partition)]


def _kill_rounds(broker: Broker, tmp_path: Path, rounds: int) -> None:
    topic = make_topic(broker, partitions=2)
    target = str(tmp_path / "db")
    conn = offsetdb.connect(target, autocommit=True, run_sources=False)  # only the workers ingest
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    cursor.execute(
        f"CREATE SOURCE ev FROM KAFKA TOPIC '{topic}' FORMAT JSON INTO events "
        f"WITH (bootstrap = '{broker.bootstrap}', batch_rows = 40)"
    )
    conn.close()
    total = 750 * rounds  # produced over about 1.5 s per round, while the rounds run
    stop = threading.Event()
    feeding = _keep_producing(broker, topic, 2, total, stop, pause=0.1)
    rng = random.Random(rounds)
    try:
        for round_number in range(rounds):
            worker = Worker(target)
            try:
                wait_until(lambda w=worker: "ready" in w.lines, "the worker opened the database")
                if round_number == rounds - 1:
                    # At least this round is killed after a commit, so the test tests one.
                    wait_until(
                        lambda w=worker: w.ingested() > 0 or not feeding.is_alive(), "the worker ingested a batch"
                    )
                time.sleep(rng.uniform(0.0, 2.0))
            finally:
                worker.kill()
    finally:
        feeding.join()
    conn = offsetdb.connect(target, autocommit=True, run_sources=False)
    done_by_killed = ingested(conn.cursor(), "ev")
    conn.close()
    assert done_by_killed > 0, "the killed workers ingested nothing: the rounds tested nothing"
    conn = offsetdb.connect(target, autocommit=True)  # runs the source to the end
    try:
        _check_exactly_once(conn.cursor(), "ev", total, 2)
        # A primary key turns a duplicate into an error row; there must be none.
        assert conn.cursor().execute("SELECT count(*) FROM offsetdb_ingest_errors").fetchall() == [(0,)]
    finally:
        conn.close()


def test_ingesting_process_killed_at_random_moments_ingests_every_record_once(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    _kill_rounds(kafka_broker, tmp_path, rounds=4)


@pytest.mark.slow
def test_ingesting_process_killed_many_times_ingests_every_record_once(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    _kill_rounds(kafka_broker, tmp_path, rounds=40)


def test_two_nodes_running_the_same_source_ingest_each_record_once_and_one_takes_over(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    topic = make_topic(kafka_broker, partitions=2)
    url = f"kafka://{kafka_broker.bootstrap}/s{uuid.uuid4().hex[:10]}"
    conn = offsetdb.connect(url, autocommit=True, data_dir=str(tmp_path / "client"))
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE events (id INTEGER, v TEXT)")  # no key: a duplicate would show
    cursor.execute(f"CREATE SOURCE ev FROM KAFKA TOPIC '{topic}' FORMAT JSON INTO events WITH (batch_rows = 50)")
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "offsetdb.cli", "node", "--db", url, "--data-dir", str(tmp_path / f"node{n}"),
             "--run-sources", "--status-every", "1"],
            stdout=subprocess.DEVNULL, stderr=(tmp_path / f"node{n}.log").open("wb"),
        )  # fmt: skip
        for n in range(2)
    ]
    stop = threading.Event()
    total = 1500
    feeding = _keep_producing(kafka_broker, topic, 2, total, stop)
    try:
        wait_until(lambda: conn.sync() >= 0 and ingested(cursor, "ev") >= 300, "both nodes are ingesting")
        nodes[0].send_signal(signal.SIGKILL)  # the survivor goes on from the stored offsets
        nodes[0].wait()
        feeding.join()

        def done() -> bool:
            conn.sync()
            return ingested(cursor, "ev") == total

        wait_until(done, f"all {total} records are in", timeout=180)
        _check_exactly_once(cursor, "ev", total, 2)
        survivor_log = (tmp_path / "node1.log").read_text()
        assert "source ev: ingesting" in survivor_log, survivor_log[-2000:]
    finally:
        stop.set()
        feeding.join()
        for node in nodes:
            if node.poll() is None:
                node.send_signal(signal.SIGTERM)
                node.wait(60)
        conn.close()


def test_broker_paused_mid_ingest_still_ingests_exactly_once(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    if kafka_broker.process is None:
        pytest.fail("this test pauses the broker it started (SIGSTOP); KAFKA_BOOTSTRAP_SERVERS names another", pytrace=False)
    topic = make_topic(kafka_broker, partitions=2)
    url = f"kafka://{kafka_broker.bootstrap}/s{uuid.uuid4().hex[:10]}"
    conn = offsetdb.connect(url, autocommit=True, data_dir=str(tmp_path / "node"), run_sources=True, kafka_timeout=4.0)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE events (id INTEGER, v TEXT)")
    cursor.execute(f"CREATE SOURCE ev FROM KAFKA TOPIC '{topic}' FORMAT JSON INTO events WITH (batch_rows = 30)")
    stop = threading.Event()
    total = 1500
    feeding = _keep_producing(kafka_broker, topic, 2, total, stop)
    try:
        wait_until(lambda: ingested(cursor, "ev") >= 200, "ingesting")
        kafka_broker.pause()
        time.sleep(6)  # longer than kafka_timeout: commits in flight become 08007, then settled
        kafka_broker.resume()
        feeding.join()
        _check_exactly_once(cursor, "ev", total, 2)
    finally:
        kafka_broker.resume()
        stop.set()
        feeding.join()
        conn.close()


def test_a_serializable_join_of_ingested_rows_sees_one_consistent_snapshot(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    topic = make_topic(kafka_broker, partitions=2)
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, region TEXT)")
    cursor.executemany("INSERT INTO customers VALUES (?, ?)", [(c, ["north", "south"][c % 2]) for c in range(10)])
    cursor.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER, amount INTEGER)")
    cursor.execute(
        "CREATE TABLE totals (at_orders INTEGER PRIMARY KEY, north BIGINT, south BIGINT, max_even INTEGER, max_odd INTEGER)"
    )
    cursor.execute(
        f"CREATE SOURCE o FROM KAFKA TOPIC '{topic}' FORMAT JSON INTO orders "
        f"WITH (bootstrap = '{kafka_broker.bootstrap}', batch_rows = 20, batch_wait_ms = 5)"
    )
    stop = threading.Event()

    def feed() -> None:
        p = producer(kafka_broker)
        i = 0
        while not stop.is_set() and i < 4000:
            p.produce(topic, json.dumps({"id": i, "customer": i % 10, "amount": i % 7}).encode(), partition=i % 2)
            i += 1
            if i % 20 == 0:
                p.flush(30)
                time.sleep(0.01)
        p.flush(30)

    feeder = threading.Thread(target=feed)
    feeder.start()
    client = offsetdb.connect(str(tmp_path / "db"), isolation_level="SERIALIZABLE")
    reader = client.cursor()
    commits = aborts = 0
    try:
        wait_until(lambda: has_table(cursor, "offsetdb_source_offsets"), "the source runs")
        while commits < 8:
            try:
                totals = dict(
                    reader.execute(
                        "SELECT c.region, sum(o.amount) FROM orders o JOIN customers c ON o.customer = c.id GROUP BY c.region"
                    ).fetchall()
                )
                count, max_even, max_odd = reader.execute(
                    "SELECT count(*), max(CASE WHEN id % 2 = 0 THEN id END), max(CASE WHEN id % 2 = 1 THEN id END) FROM orders"
                ).fetchall()[0]
                written = reader.execute(
                    "SELECT coalesce(sum(rows_written), 0) FROM offsetdb_source_offsets WHERE source = 'o'"
                ).fetchall()[0][0]
                assert count == written, "rows and offsets come from the same transactions"
                reader.execute(
                    "INSERT INTO totals VALUES (?, ?, ?, ?, ?) ON CONFLICT (at_orders) DO NOTHING",
                    (count, totals.get("north", 0), totals.get("south", 0), max_even, max_odd),
                )
                client.commit()
                commits += 1
            except offsetdb.SerializationFailure:
                client.rollback()
                aborts += 1
            time.sleep(0.05)
    finally:
        stop.set()
        feeder.join()
    # Each partition is ingested in order, so a snapshot holds the records of each up to
    # its newest id: every committed summary must be exactly what those orders give.
    summaries = cursor.execute("SELECT at_orders, north, south, max_even, max_odd FROM totals").fetchall()
    assert summaries, "no summary committed"
    for at, north, south, max_even, max_odd in summaries:
        ids = [
            i for i in range(4000)
            if (i % 2 == 0 and max_even is not None and i <= max_even)
            or (i % 2 == 1 and max_odd is not None and i <= max_odd)
        ]
        expected = [0, 0]
        for i in ids:
            expected[(i % 10) % 2] += i % 7
        assert len(ids) == at and (north, south) == tuple(expected), (at, north, south, expected)
    client.close()
    conn.close()


# --- Debezium: a round trip through offsetdb's own CDC topics ------------------------------


def test_a_debezium_source_of_cdc_topics_reproduces_each_table_exactly(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    from offsetdb.query.cdc import publisher_for

    tables = {
        "items": "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price NUMERIC(8,2), added DATE, "
        "seen TIMESTAMP, photo BYTEA, weight DOUBLE PRECISION, active BOOLEAN, stock BIGINT)",
        "pairs": "CREATE TABLE pairs (a INTEGER, b TEXT, v TEXT, PRIMARY KEY (a, b))",
    }
    origin = offsetdb.connect(str(tmp_path / "origin"), autocommit=True)
    cursor = origin.cursor()
    for ddl in tables.values():
        cursor.execute(ddl)
    cursor.executemany(
        "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (i, f"item {i}", f"{i}.25", f"2024-01-{1 + i % 28:02d}", f"2024-02-03 04:05:06.{i:06d}",
             bytes([i % 256, 0, 255]), i / 3, i % 2 == 0, 2**40 + i)
            for i in range(60)
        ],
    )  # fmt: skip
    cursor.execute("INSERT INTO items (id, name) VALUES (1000, 'nulls everywhere')")
    cursor.executemany("INSERT INTO pairs VALUES (?, ?, ?)", [(i % 5, f"k{i}", f"v{i}") for i in range(30)])
    prefix = f"rt{uuid.uuid4().hex[:8]}"
    publisher = publisher_for(origin, topic_prefix=prefix, bootstrap=kafka_broker.bootstrap, heartbeat_interval=0.3, partitions=2)
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,))
    thread.start()
    copy = offsetdb.connect(str(tmp_path / "copy"), autocommit=True)
    copy_cursor = copy.cursor()
    try:
        for name, ddl in tables.items():
            copy_cursor.execute(ddl)
            copy_cursor.execute(
                f"CREATE SOURCE {name}_in FROM KAFKA TOPIC '{prefix}.{name}' FORMAT DEBEZIUM INTO {name} "
                f"WITH (bootstrap = '{kafka_broker.bootstrap}', batch_rows = 25)"
            )
        # Changes after the snapshot: updates, deletes, a primary-key change, NULLs.
        cursor.execute("UPDATE items SET price = price * 2, seen = NULL WHERE id < 20")
        cursor.execute("DELETE FROM items WHERE id BETWEEN 40 AND 45")
        cursor.execute("UPDATE items SET id = 500 WHERE id = 7")
        cursor.execute("UPDATE pairs SET v = NULL WHERE a = 2")
        cursor.execute("DELETE FROM pairs WHERE a = 3")
        cursor.execute("BEGIN")
        cursor.execute("INSERT INTO items (id, name, photo) VALUES (2000, 'late', '\\x00ff')")
        cursor.execute("INSERT INTO pairs VALUES (9, 'z', 'zz')")
        cursor.execute("COMMIT")

        def same() -> bool:
            return all(copy.table_digest(name).sha256 == origin.table_digest(name).sha256 for name in tables)

        wait_until(same, "the copies equal the originals", timeout=120)
    finally:
        stop.set()
        thread.join(30)
    for name in tables:
        mine = cursor.execute(f"SELECT * FROM {name} ORDER BY 1, 2").fetchall()
        assert copy_cursor.execute(f"SELECT * FROM {name} ORDER BY 1, 2").fetchall() == mine
        assert copy.table_digest(name).rows == len(mine)
    assert copy_cursor.execute("SELECT count(*) FROM offsetdb_ingest_errors").fetchall() == [(0,)]
    copy.close()
    origin.close()


def test_debezium_envelopes_that_are_wrong_are_kept_and_explained(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    topic = make_topic(kafka_broker)
    good = {"before": None, "after": {"id": 1, "v": "a"}, "op": "c"}
    produce(
        kafka_broker,
        topic,
        [
            (0, None, good),
            (0, None, {"after": {"id": 2}}),  # no op
            (0, None, {"before": None, "after": None, "op": "c"}),
            (0, None, {"before": None, "after": {"id": 3}, "op": "x"}),
            (0, None, {"schema": {"type": "struct", "fields": []}, "payload": [1]}),
            (0, None, {"before": {"id": 1, "v": "a"}, "after": None, "op": "d"}),
            (0, None, {"before": None, "after": {"id": 4, "v": "d"}, "op": "r"}),
            (0, None, None),  # a tombstone: nothing to apply, no error
        ],
    )
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    cursor.execute(f"CREATE SOURCE s FROM KAFKA TOPIC '{topic}' FORMAT DEBEZIUM INTO t WITH (bootstrap = '{kafka_broker.bootstrap}')")
    wait_until(lambda: has_table(cursor, "offsetdb_source_offsets") and ingested(cursor, "s") == 8, "every record is done")
    assert cursor.execute("SELECT * FROM t").fetchall() == [(4, "d")]
    messages = [r[0] for r in cursor.execute("SELECT message FROM offsetdb_ingest_errors ORDER BY kafka_offset").fetchall()]
    assert len(messages) == 4
    assert "not a Debezium change envelope" in messages[0]
    assert "without an after image" in messages[1]
    assert "unknown Debezium op 'x'" in messages[2]
    assert "not a Debezium change envelope" in messages[3]
    conn.close()


def test_offsetdb_sources_prints_every_source_with_its_lag(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    topic = make_topic(kafka_broker, partitions=2)
    produce(kafka_broker, topic, [(i % 2, None, {"id": i}) for i in range(5)], one_by_one=True)
    target = str(tmp_path / "db")
    conn = offsetdb.connect(target, autocommit=True, run_sources=False)
    conn.cursor().execute("CREATE TABLE t (id INTEGER)")
    conn.cursor().execute(f"CREATE SOURCE waiting FROM KAFKA TOPIC '{topic}' FORMAT JSON INTO t WITH (bootstrap = '{kafka_broker.bootstrap}')")
    conn.close()
    done = subprocess.run(
        [sys.executable, "-m", "offsetdb.cli", "sources", target], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    header, _, row, *_ = done.stdout.splitlines()
    cells = dict(zip([h.strip() for h in header.split("|")], [c.strip() for c in row.split("|")], strict=True))
    assert cells["name"] == "waiting" and cells["topic"] == topic and cells["state"] == "RUNNING"
    assert cells["partitions"] == "2" and cells["broker_ends"] == "0:3 1:2" and cells["lag"] == "5"
    assert cells["records"] == "0" and cells["runner"] == "sources are not run by this process"
    assert "(1 row)" in done.stdout


# --- Avro (Confluent wire format; confluent-kafka's in-process mock:// registry) -----------


def test_avro_records_are_decoded_with_their_registered_schemas_and_bad_ones_kept(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    # No schema registry server can be installed here: the tests use confluent-kafka's
    # mock:// registry, which keeps schemas in the client object; the source uses the
    # process's client for the same URL (offsetdb.ingest.avro.registry_for), so it sees them.
    import decimal

    from offsetdb.ingest.avro import registry_for
    from offsetdb.schemas.confluent import AvroEncoder, frame, value_subject

    topic = make_topic(kafka_broker)
    url = f"mock://sources-{uuid.uuid4().hex[:8]}"
    registry = registry_for(url)
    v1 = {
        "type": "record", "name": "Reading", "fields": [
            {"name": "sensor", "type": "string"},
            {"name": "value", "type": {"type": "bytes", "logicalType": "decimal", "precision": 8, "scale": 2}},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "day", "type": {"type": "int", "logicalType": "date"}},
            {"name": "note", "type": ["null", "string"], "default": None},
        ],
    }  # fmt: skip
    v2 = {"type": "record", "name": "Reading", "fields": [*v1["fields"], {"name": "unit", "type": "string", "default": "C"}]}
    encode_v1 = AvroEncoder(registry, value_subject(topic), v1)
    encode_v2 = AvroEncoder(registry, value_subject(topic), v2)
    import datetime as dt

    at = dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.UTC)
    good = [
        encode_v1({"sensor": "a", "value": decimal.Decimal("12.50"), "at": at, "day": dt.date(2024, 5, 6), "note": None}),
        encode_v2({"sensor": "b", "value": decimal.Decimal("-1.25"), "at": at, "day": dt.date(2024, 5, 7), "note": "x", "unit": "F"}),
    ]
    bad = [
        (frame(987654, b"\x02a"), "schema id 987654 is not in the schema registry"),
        (b"plain text", "not in the Confluent Avro wire format"),
        (good[0][:8], "does not decode with schema id"),
        (encode_v1({"sensor": "c", "value": decimal.Decimal("1"), "at": at, "day": dt.date(2024, 1, 1), "note": None})[:5] + b"\x00", "does not decode"),
    ]
    produce(kafka_broker, topic, [(0, None, v) for v in good] + [(0, None, v) for v, _ in bad])
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE readings (sensor TEXT NOT NULL, value NUMERIC(8,2), at TIMESTAMP, day DATE, note TEXT, unit TEXT)")
    cursor.execute(
        f"CREATE SOURCE r FROM KAFKA TOPIC '{topic}' FORMAT AVRO INTO readings "
        f"WITH (bootstrap = '{kafka_broker.bootstrap}', schema_registry = '{url}')"
    )
    wait_until(lambda: has_table(cursor, "offsetdb_source_offsets") and ingested(cursor, "r") == len(good) + len(bad), "every record is done")
    rows = cursor.execute("SELECT sensor, value, at, day, note, unit FROM readings ORDER BY sensor").fetchall()
    assert rows == [
        ("a", decimal.Decimal("12.50"), dt.datetime(2024, 5, 6, 7, 8, 9, 123000), dt.date(2024, 5, 6), None, None),
        ("b", decimal.Decimal("-1.25"), dt.datetime(2024, 5, 6, 7, 8, 9, 123000), dt.date(2024, 5, 7), "x", "F"),
    ]
    errors = cursor.execute("SELECT stage, sqlstate, message FROM offsetdb_ingest_errors ORDER BY kafka_offset").fetchall()
    assert len(errors) == len(bad)
    for (stage, sqlstate, message), (_, words) in zip(errors, bad, strict=True):
        assert stage == "VALUE_CONVERTER" and sqlstate == "22P03" and words in message, message
    conn.close()


def test_start_latest_ingests_only_what_arrives_after_the_source_starts(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    topic = make_topic(kafka_broker)
    # one record per produce: Tansu's high watermark is wrong after multi-record batches
    produce(kafka_broker, topic, [(0, None, {"id": i}) for i in range(5)], one_by_one=True)
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE t (id INTEGER)")
    cursor.execute(
        f"CREATE SOURCE s FROM KAFKA TOPIC '{topic}' FORMAT JSON INTO t WITH (bootstrap = '{kafka_broker.bootstrap}', start = 'latest')"
    )
    wait_until(
        lambda: has_table(cursor, "offsetdb_source_offsets")
        and cursor.execute("SELECT next_offset, records FROM offsetdb_source_offsets").fetchall() == [(5, 0)],
        "the starting position is committed",
    )
    produce(kafka_broker, topic, [(0, None, {"id": i}) for i in range(5, 8)], one_by_one=True)
    wait_until(lambda: ingested(cursor, "s") == 3, "the 3 new records are in")
    assert cursor.execute("SELECT id FROM t ORDER BY id").fetchall() == [(5,), (6,), (7,)]
    conn.close()
