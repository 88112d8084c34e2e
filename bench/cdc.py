"""The ``cdc`` workload: the CDC publisher's throughput and commit-to-published latency.

Runs on the ``offsetdb`` engine (an embedded database publishing to a Kafka broker);
for the others it is reported as not applicable (sqlite3 has no change stream to
compare with). The broker is the run's own when ``offsetdb-kafka`` is selected, else one
started for this workload the way the tests start theirs (bench/brokers.py).

1. ``cdc_throughput`` (and ``cdc_throughput_avro``, the same in Avro through
   confluent-kafka's in-process mock schema registry): ``--cdc-events`` rows are committed first (batches of 1,000 rows
   per transaction, untimed); then a publisher starts from the beginning of the log
   (no snapshot) and the clock runs until its progress says everything is published.
   Throughput: change events published per second (each a Debezium envelope in
   Kafka Connect JSON, in Kafka transactions with the transaction topic's BEGIN/END).
2. ``cdc_latency``: a publisher runs while one connection commits ``--cdc-commits``
   single-row INSERTs paced at ``--cdc-rate`` commits/s. A commit is *published* when
   the Kafka transaction holding its event has committed (then a ``read_committed``
   consumer can read it); the latency is that moment minus the moment the INSERT
   returned. Reported: p50/p99.
"""

from __future__ import annotations

import bisect
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.measure import Progress, Result, latency_summary
from bench.workloads import EngineRun, Sizes

NOT_APPLICABLE = "not applicable: CDC publishing is offsetdb's (measured on the embedded engine)"


def _broker(run: EngineRun) -> tuple[str, dict[str, str], Any]:
    """(bootstrap, client settings, broker to stop or None)."""
    from bench.brokers import start_broker

    backend = start_broker(Path(tempfile.mkdtemp(prefix="bench-cdc-broker-", dir=run.workdir)), {})
    return backend.bootstrap, dict(backend.client_settings), backend


def cdc(run: EngineRun, sizes: Sizes) -> list[Result]:
    """Measure the publisher: events/s from a backlog, and commit-to-published latency."""
    engine: Any = run.engine
    if engine.name != "offsetdb":
        return [Result(workload="cdc", engine=engine.name, unit="", skipped=NOT_APPLICABLE)]
    import offsetdb
    from offsetdb.query.cdc import publisher_for

    bootstrap, settings, broker = _broker(run)
    results = []
    try:
        results.append(_throughput(run, sizes, engine.name, bootstrap, settings, "json"))
        results.append(_throughput(run, sizes, engine.name, bootstrap, settings, "avro"))
        # --- latency at a paced commit rate ---------------------------------------------
        target = str(run.workdir / "cdc-latency")
        conn = offsetdb.connect(target, autocommit=True, synchronous="normal", kafka=settings)
        cursor = conn.cursor()
        cursor.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, k INTEGER, name TEXT, score DOUBLE PRECISION)")
        published_at: list[tuple[int, float]] = []  # (resolved offset, time its Kafka commit returned)
        publisher = publisher_for(
            conn, topic_prefix=f"bench{uuid.uuid4().hex[:8]}", bootstrap=bootstrap, snapshot=False,
            kafka=settings, heartbeat_interval=1.0,
            on_commit=lambda stats: published_at.append((stats.resolved or -1, time.monotonic())),
        )
        stop = threading.Event()
        thread = threading.Thread(target=publisher.run, args=(stop,), name="bench-cdc")
        thread.start()
        commits: list[tuple[int, float]] = []
        try:
            while not published_at:
                time.sleep(0.01)  # the publisher is up
            interval = 1.0 / sizes.cdc_rate
            progress = Progress("cdc_latency offsetdb", sizes.cdc_commits, "commits")
            began = time.monotonic()
            for i in range(sizes.cdc_commits):
                due = began + i * interval
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                cursor.execute("INSERT INTO t VALUES (?, ?, ?, ?)", (i, i % 1000, f"n{i}", i / 7))
                commits.append((conn.last_commit_offset or -1, time.monotonic()))
                progress.update(i + 1)
            seconds = time.monotonic() - began
            progress.close()
            last = commits[-1][0]
            deadline = time.monotonic() + 60
            while (publisher.stats.resolved or -1) < last and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            stop.set()
            thread.join(60)
            conn.close()
        resolved = [offset for offset, _ in published_at]
        lags = []
        for offset, committed in commits:
            index = bisect.bisect_left(resolved, offset)
            if index == len(resolved):
                raise RuntimeError(f"offset {offset} was never published")
            lags.append(max(0.0, published_at[index][1] - committed))
        p50, p99 = latency_summary(lags)
        results.append(
            Result(
                workload="cdc_latency",
                engine=engine.name,
                unit="commits/s",
                ops=len(commits),
                seconds=seconds,
                throughput=len(commits) / seconds if seconds > 0 else 0.0,
                p50_ms=p50,
                p99_ms=p99,
                latency_of="INSERT returned -> the Kafka transaction with its event committed",
                params={"rate": sizes.cdc_rate, "commits": sizes.cdc_commits},
                details={"max_ms": max(lags) * 1000.0, "kafka_transactions": publisher.stats.kafka_transactions},
            )
        )
    finally:
        if broker is not None:
            broker.stop()
    return results


def _throughput(
    run: EngineRun, sizes: Sizes, name: str, bootstrap: str, settings: dict[str, str], envelope: str
) -> Result:
    """Events/s of a publisher draining a backlog, in one envelope format."""
    import offsetdb
    from offsetdb.query.cdc import publisher_for

    target = str(run.workdir / f"cdc-throughput-{envelope}")
    conn = offsetdb.connect(target, autocommit=False, synchronous="normal", kafka=settings)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, k INTEGER, name TEXT, score DOUBLE PRECISION)")
    conn.commit()
    events = sizes.cdc_events
    for start in range(0, events, 1000):
        cursor.executemany(
            "INSERT INTO t VALUES (?, ?, ?, ?)",
            [(i, i % 1000, f"name-{i:09d}", i / 7) for i in range(start, min(events, start + 1000))],
        )
        conn.commit()
    end = conn.last_commit_offset or 0
    workload = "cdc_throughput" if envelope == "json" else f"cdc_throughput_{envelope}"
    progress = Progress(f"{workload} offsetdb", events, "events")
    publisher = publisher_for(
        conn, topic_prefix=f"bench{uuid.uuid4().hex[:8]}", bootstrap=bootstrap,
        snapshot=False, from_offset=-1, kafka=settings, heartbeat_interval=1.0,
        on_commit=lambda stats: progress.update(stats.events),
        # Avro: confluent-kafka's in-process mock registry (schemas are registered once
        # per subject; the per-event cost is the encoding, which is what is measured).
        format=envelope, schema_registry=f"mock://bench-{uuid.uuid4().hex}" if envelope == "avro" else None,
    )
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,), name="bench-cdc")
    began = time.perf_counter()
    thread.start()
    try:
        while (publisher.stats.resolved or -1) < end:
            if not thread.is_alive():
                raise RuntimeError("the publisher stopped")
            time.sleep(0.01)
        seconds = time.perf_counter() - began
    finally:
        stop.set()
        thread.join(60)
        progress.close()
        conn.close()
    published = publisher.stats.events
    return Result(
        workload=workload,
        engine=name,
        unit="events/s",
        ops=published,
        seconds=seconds,
        throughput=published / seconds if seconds > 0 else 0.0,
        latency_of="(none: a backlog drained)",
        params={"events": events, "rows_per_transaction": 1000, "format": envelope},
        check=published,
        details={"kafka_transactions": publisher.stats.kafka_transactions},
    )
