"""The ``ingest`` workload: a Kafka topic of JSON (and Avro) events into a queryable table.

The topic (4 partitions) is filled first, untimed, with ``--ingest-records`` events of
six columns (``id BIGINT, user_id INTEGER, kind TEXT, amount DOUBLE PRECISION, at
TIMESTAMP, note TEXT``, ``at`` in epoch milliseconds); the broker is one started for the
workload the way the tests start theirs (bench/brokers.py).

1. ``ingest_json``: the clock runs from the CREATE SOURCE until the stored offsets say
   every record is in (so every row is committed and queryable). The same job on
   sqlite3 is a loop a user would write: a consumer assigned to the partitions,
   ``json.loads`` per record, one ``executemany`` per batch of 5,000 and the batch's
   next offsets in the same sqlite3 transaction (exactly once as offsetdb's). Reported:
   records/s, and the CPU seconds the process spent (``details``), because on a shared
   machine the wall clock also measures the neighbours.
2. ``ingest_lag`` (offsetdb): a producer writes ``--ingest-rate`` records/s for
   ``--ingest-seconds``; the stored offsets are sampled every 50 ms. A record's delay is
   the first sample at which its partition's next offset is past it, minus the moment
   it was produced. Reported: p50/p99 of that delay, and the most records behind.
"""

from __future__ import annotations

import bisect
import json
import resource
import sqlite3
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.measure import Progress, Result, latency_summary
from bench.workloads import EngineRun, Sizes

PARTITIONS = 4
BATCH = 5000
NOT_APPLICABLE = "not applicable: measured on the embedded offsetdb engine and on sqlite3"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _event(i: int) -> bytes:
    return json.dumps(
        {"id": i, "user_id": i % 1000, "kind": ("click", "view", "buy")[i % 3], "amount": i / 7,
         "at": 1_700_000_000_000 + i, "note": f"event number {i}"}
    ).encode()  # fmt: skip


AVRO_SCHEMA = {
    "type": "record", "name": "Event", "fields": [
        {"name": "id", "type": "long"}, {"name": "user_id", "type": "int"},
        {"name": "kind", "type": "string"}, {"name": "amount", "type": "double"},
        {"name": "at", "type": "long"}, {"name": "note", "type": "string"},
    ],
}  # fmt: skip
# confluent-kafka's in-process registry: the source runs in this process and asks the same
# client (offsetdb.ingest.avro.registry_for), so no registry server is needed.
REGISTRY = f"mock://bench-{uuid.uuid4().hex[:8]}"


def _avro_encoder(topic: str) -> Any:
    from offsetdb.ingest.avro import registry_for
    from offsetdb.schemas.confluent import AvroEncoder, value_subject

    encoder = AvroEncoder(registry_for(REGISTRY), value_subject(topic), AVRO_SCHEMA)

    def encode(i: int) -> bytes:
        return encoder(
            {"id": i, "user_id": i % 1000, "kind": ("click", "view", "buy")[i % 3], "amount": i / 7,
             "at": 1_700_000_000_000 + i, "note": f"event number {i}"}
        )  # fmt: skip

    return encode


def _fill(bootstrap: str, settings: dict[str, str], count: int, fmt: str = "json") -> str:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"bench-ingest-{fmt}-{uuid.uuid4().hex[:8]}"
    event = _avro_encoder(topic) if fmt == "avro" else _event
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10_000,
         "queue.buffering.max.messages": 2_000_000}
    )  # fmt: skip
    progress = Progress(f"ingest: filling the {fmt} topic", count, "records")
    for i in range(count):
        producer.produce(topic, event(i), partition=i % PARTITIONS)
        if i % 10_000 == 9_999:
            producer.poll(0)
            progress.update(i + 1)
    if producer.flush(120):
        raise RuntimeError("the broker did not take every record")
    progress.close()
    return topic


def _ingested(cursor: Any) -> int:
    if ("offsetdb_source_offsets",) not in cursor.execute("SHOW TABLES").fetchall():
        return 0
    return int(cursor.execute("SELECT coalesce(sum(records), 0) FROM offsetdb_source_offsets").fetchall()[0][0])


def _offsetdb_throughput(
    run: EngineRun, bootstrap: str, settings: dict[str, str], topic: str, count: int, fmt: str = "json"
) -> Result:
    import offsetdb

    conn = offsetdb.connect(str(run.workdir / f"ingest-{fmt}"), autocommit=True, synchronous="normal", kafka=settings)
    try:
        cursor = conn.cursor()
        cursor.execute(
            "CREATE TABLE events (id BIGINT, user_id INTEGER, kind TEXT, amount DOUBLE PRECISION, at TIMESTAMP, note TEXT)"
        )
        progress = Progress(f"ingest_{fmt} offsetdb", count, "records")
        registry = f", schema_registry = '{REGISTRY}'" if fmt == "avro" else ""
        cpu, began = _cpu(), time.perf_counter()
        cursor.execute(
            f"CREATE SOURCE ev FROM KAFKA TOPIC '{topic}' FORMAT {fmt.upper()} INTO events "
            f"WITH (bootstrap = '{bootstrap}', batch_rows = {BATCH}{registry})"
        )
        while (done := _ingested(cursor)) < count:
            progress.update(done)
            time.sleep(0.05)
        seconds, cpu = time.perf_counter() - began, _cpu() - cpu
        progress.close()
        rows = cursor.execute("SELECT count(*) FROM events").fetchall()[0][0]
    finally:
        conn.close()
    return Result(
        workload=f"ingest_{fmt}", engine="offsetdb", unit="records/s", ops=count, seconds=seconds,
        throughput=count / seconds, latency_of="(none: a backlog drained)",
        params={"records": count, "partitions": PARTITIONS, "batch_rows": BATCH},
        check=rows, expected=count,
        details={"cpu_seconds": round(cpu, 2), "cpu_us_per_record": round(cpu / count * 1e6, 2)},
    )  # fmt: skip


def _sqlite_throughput(
    run: EngineRun, bootstrap: str, settings: dict[str, str], topic: str, count: int, fmt: str = "json"
) -> Result:
    from confluent_kafka import Consumer, TopicPartition

    if fmt == "avro":
        from offsetdb.ingest.avro import registry_for
        from offsetdb.schemas.confluent import AvroDecoder

        decode: Any = AvroDecoder(registry_for(REGISTRY))
    else:
        decode = json.loads
    db = sqlite3.connect(run.workdir / f"ingest-{fmt}.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE events (id BIGINT, user_id INTEGER, kind TEXT, amount DOUBLE PRECISION, at TIMESTAMP, note TEXT)")
    db.execute("CREATE TABLE offsets (partition INTEGER PRIMARY KEY, next_offset BIGINT)")
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "bench-sqlite", "enable.auto.commit": False,
         **{k: v for k, v in settings.items() if k.startswith("fetch.")}}
    )  # fmt: skip
    progress = Progress(f"ingest_{fmt} sqlite3", count, "records")
    cpu, began = _cpu(), time.perf_counter()
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    done = 0
    names = ("id", "user_id", "kind", "amount", "at", "note")
    while done < count:
        messages = [m for m in consumer.consume(BATCH, 0.1) if m.error() is None]
        if not messages:
            continue
        rows = []
        positions: dict[int, int] = {}
        for message in messages:
            event = decode(message.value())
            rows.append(tuple(event.get(n) for n in names))
            positions[message.partition() or 0] = (message.offset() or 0) + 1
        db.execute("BEGIN")
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
        db.executemany("INSERT OR REPLACE INTO offsets VALUES (?, ?)", list(positions.items()))
        db.execute("COMMIT")
        done += len(messages)
        progress.update(done)
    seconds, cpu = time.perf_counter() - began, _cpu() - cpu
    progress.close()
    consumer.close()
    rows_in = db.execute("SELECT count(*) FROM events").fetchone()[0]
    db.close()
    return Result(
        workload=f"ingest_{fmt}", engine="sqlite3", unit="records/s", ops=count, seconds=seconds,
        throughput=count / seconds, latency_of="(none: a backlog drained)",
        params={"records": count, "partitions": PARTITIONS, "batch_rows": BATCH},
        check=rows_in, expected=count,
        details={"cpu_seconds": round(cpu, 2), "cpu_us_per_record": round(cpu / count * 1e6, 2)},
    )  # fmt: skip


def _offsetdb_lag(run: EngineRun, bootstrap: str, settings: dict[str, str], rate: int, duration: float) -> Result:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    import offsetdb

    topic = f"bench-lag-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: the future needs its client
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    conn = offsetdb.connect(str(run.workdir / "ingest-lag"), autocommit=True, synchronous="normal", kafka=settings)
    produced: list[list[float]] = [[] for _ in range(PARTITIONS)]
    samples: list[tuple[float, dict[int, int]]] = []
    stop = threading.Event()
    try:
        cursor = conn.cursor()
        cursor.execute(
            "CREATE TABLE events (id BIGINT, user_id INTEGER, kind TEXT, amount DOUBLE PRECISION, at TIMESTAMP, note TEXT)"
        )
        cursor.execute(
            f"CREATE SOURCE ev FROM KAFKA TOPIC '{topic}' FORMAT JSON INTO events "
            f"WITH (bootstrap = '{bootstrap}', batch_rows = {BATCH}, batch_wait_ms = 20)"
        )
        total = int(rate * duration)

        def produce() -> None:
            producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2})
            began = time.monotonic()
            for i in range(total):
                due = began + i / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                producer.produce(topic, _event(i), partition=i % PARTITIONS)
                produced[i % PARTITIONS].append(time.monotonic())
                if i % 100 == 0:
                    producer.poll(0)
            producer.flush(60)
            stop.set()

        feeder = threading.Thread(target=produce, name="bench-ingest-producer")
        progress = Progress("ingest_lag offsetdb", total, "records")
        feeder.start()
        deadline = None
        while True:
            now = time.monotonic()
            positions = {}
            if ("offsetdb_source_offsets",) in cursor.execute("SHOW TABLES").fetchall():
                positions = dict(cursor.execute("SELECT kafka_partition, next_offset FROM offsetdb_source_offsets").fetchall())
            samples.append((now, positions))
            done = sum(positions.values())
            progress.update(done)
            if stop.is_set() and done >= total:
                break
            if stop.is_set():
                deadline = deadline or now + 120
                if now > deadline:
                    raise RuntimeError(f"ingestion did not catch up: {done} of {total}")
            time.sleep(0.05)
        feeder.join()
        progress.close()
    finally:
        stop.set()
        conn.close()
    delays = []
    for p, times in enumerate(produced):
        index = 0
        for at, positions in samples:
            visible = positions.get(p, 0)
            while index < visible and index < len(times):
                delays.append(max(0.0, at - times[index]))
                index += 1
    p50, p99 = latency_summary(delays)
    behind = 0
    for at, positions in samples:
        produced_by_then = sum(bisect.bisect_right(times, at) for times in produced)
        behind = max(behind, produced_by_then - sum(positions.values()))
    return Result(
        workload="ingest_lag", engine="offsetdb", unit="records/s", ops=len(delays), seconds=duration,
        throughput=len(delays) / duration, p50_ms=p50, p99_ms=p99,
        latency_of="produced -> queryable (50 ms samples)",
        params={"rate": rate, "seconds": duration, "partitions": PARTITIONS},
        check=len(delays), expected=int(rate * duration), details={"max_records_behind": behind},
    )  # fmt: skip


def ingest(run: EngineRun, sizes: Sizes) -> list[Result]:
    """Measure JSON ingestion: records/s from a backlog, and delay at a fixed rate."""
    from bench.brokers import start_broker

    engine: Any = run.engine
    if engine.name not in ("offsetdb", "sqlite3"):
        return [Result(workload="ingest", engine=engine.name, unit="", skipped=NOT_APPLICABLE)]
    backend = start_broker(Path(tempfile.mkdtemp(prefix="bench-ingest-broker-", dir=run.workdir)), {})
    bootstrap, settings = backend.bootstrap, dict(backend.client_settings)
    try:
        results = []
        for fmt in ("json", "avro"):
            topic = _fill(bootstrap, settings, sizes.ingest_records, fmt)
            measure = _sqlite_throughput if engine.name == "sqlite3" else _offsetdb_throughput
            results.append(measure(run, bootstrap, settings, topic, sizes.ingest_records, fmt))
        if engine.name == "offsetdb":
            results.append(_offsetdb_lag(run, bootstrap, settings, sizes.ingest_rate, sizes.ingest_seconds))
        return results
    finally:
        backend.stop()
