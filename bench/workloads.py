"""The workloads: what is timed, on which table, and what each latency covers.

Every workload runs on one engine at a time and returns a :class:`~bench.measure.Result`.
All use the table of :data:`CREATE_TABLE` and rows made by :func:`make_rows` from a seed,
so both engines see the same data and the same operations in the same order.

- ``bulk_load``: ``executemany`` of ``rows`` rows in batches, one commit per batch;
  throughput in rows/s over the summed batch times (generating the rows is not timed);
  latency of one batch (insert and commit).
- ``autocommit_1t`` / ``autocommit_mt``: single-row INSERTs in autocommit mode from one
  thread, or from N threads (8 by default) each with its own connection to the same
  database;
  throughput in commits/s over the wall time; latency of one commit.
- ``point_select``: ``SELECT ... WHERE id = ?`` for random ids of the loaded table, one
  connection; throughput in selects/s; latency of one select (execute and fetch).
- ``filtered_scan``: ``SELECT count(*), avg(score) FROM t WHERE k < 100`` over the
  loaded table, repeated; throughput in table rows scanned per second; latency of one
  query.
- ``join_aggregate``: the loaded table joined to a 1,000-row dimension table on ``k``,
  filtered to a tenth, grouped and sorted (:data:`JOIN_AGGREGATE`), repeated; throughput
  in table rows scanned per second; latency of one query.
- ``visibility`` (engines with several nodes: ``offsetdb-kafka``): node A commits
  single-row INSERTs, node B in another process notes when each becomes visible there,
  then times strong reads (``sync()``); see :mod:`bench.visibility`.
- ``contention``: N threads run 2-row read-modify-write transactions (read two
  counters, update both, commit; retried from the start on 40001) over 10,000 ... 1 hot
  rows, one result per hot-key count; commits/s, aborts / attempts, latency of one
  committed transaction with its retries; see :mod:`bench.contention`.

The loaded table of ``point_select`` and ``filtered_scan`` is the one ``bulk_load`` made,
or, when ``bulk_load`` is not selected, one loaded the same way without timing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.engines import Engine
from bench.measure import Progress, Result, latency_summary, run_connected_threads

CREATE_TABLE = (
    "CREATE TABLE t (id BIGINT PRIMARY KEY, k INTEGER, name TEXT, score DOUBLE PRECISION)"
)
INSERT = "INSERT INTO t (id, k, name, score) VALUES (?, ?, ?, ?)"
POINT_SELECT = "SELECT id, k, name, score FROM t WHERE id = ?"
SCAN = "SELECT count(*), avg(score) FROM t WHERE k < 100"
CREATE_DIMENSION = "CREATE TABLE IF NOT EXISTS dim (k INTEGER PRIMARY KEY, grp TEXT NOT NULL)"
JOIN_AGGREGATE = (
    "SELECT d.grp, count(*), sum(t.score) FROM t JOIN dim d ON d.k = t.k "
    "WHERE t.k < 100 GROUP BY d.grp ORDER BY d.grp"
)
K_VALUES = 1000  # k is uniform in [0, K_VALUES): the scan's filter keeps about a tenth


@dataclass(frozen=True)
class Sizes:
    """How much work each workload does."""

    rows: int = 1_000_000
    batch: int = 10_000
    commits: int = 5_000
    threads: int = 8
    selects: int = 100_000
    scans: int = 5
    seed: int = 42
    # Small enough that the visibility log stays under ~500 records, where Tansu's
    # per-fetch cost is still flat for two nodes (bench/README.md); raise on Apache Kafka.
    visibility_commits: int = 250
    visibility_syncs: int = 250
    # One fresh database per hot-key count. On Kafka every attempt, aborted ones too, is
    # a record in the log, and at one hot key 8 threads make about four or five attempts
    # per commit, so 300 commits keep a point's log near Tansu's ~1,000-record knee
    # (bench/README.md); the other engines get enough commits for steadier figures.
    hot_keys: tuple[int, ...] = (10_000, 1_000, 100, 10, 1)
    contention_commits: int = 2_000
    contention_kafka_commits: int = 300
    # cdc: rows committed (1,000 per transaction) before the publisher drains them; and
    # single-row commits paced at cdc_rate per second for the latency.
    cdc_events: int = 100_000
    cdc_commits: int = 2_500
    cdc_rate: int = 500
    # ingest: JSON records in the topic before the source drains them (the 1 M);
    # then records/s produced at a fixed rate for the delay measurement.
    ingest_records: int = 1_000_000
    ingest_rate: int = 20_000
    ingest_seconds: float = 10.0


@dataclass
class EngineRun:
    """One engine's state during a benchmark run: its scratch directory, loaded table."""

    engine: Engine
    workdir: Path
    loaded: str | None = None  # the database holding the loaded table, once made
    notes: list[str] = field(default_factory=list)


_MASK64 = (1 << 64) - 1


def _mix(x: int) -> int:
    """SplitMix64's finalizer: a well-spread 64-bit hash of ``x``."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def make_rows(start: int, count: int, seed: int) -> list[tuple[int, int, str, float]]:
    """Rows ``start .. start+count-1``: each a function of its id and the seed only.

    >>> make_rows(5, 2, 42) == make_rows(0, 7, 42)[5:]
    True
    """
    rows = []
    base = seed * 0x9E3779B97F4A7C15
    for i in range(start, start + count):
        h = _mix((base + i) & _MASK64)
        rows.append((i, h % K_VALUES, f"name-{i:09d}", ((h >> 20) % 1_000_000) / 1000.0))
    return rows


def _create_table(run: EngineRun, label: str) -> str:
    target = run.engine.create_database(run.workdir, label)
    conn = run.engine.connect(target, autocommit=False)
    try:
        conn.cursor().execute(CREATE_TABLE)
        conn.commit()
    finally:
        conn.close()
    return target


def _load(run: EngineRun, sizes: Sizes, progress: Progress | None) -> tuple[str, list[float]]:
    """Load ``sizes.rows`` rows into a new database; return it and the batch latencies."""
    target = _create_table(run, "loaded")
    conn = run.engine.connect(target, autocommit=False)
    latencies: list[float] = []
    try:
        cursor = conn.cursor()
        for start in range(0, sizes.rows, sizes.batch):
            rows = make_rows(start, min(sizes.batch, sizes.rows - start), sizes.seed)
            began = time.perf_counter()
            cursor.executemany(INSERT, rows)
            conn.commit()
            latencies.append(time.perf_counter() - began)
            if progress is not None:
                progress.update(start + len(rows))
    finally:
        conn.close()
    run.loaded = target
    return target, latencies


def _loaded(run: EngineRun, sizes: Sizes) -> str:
    """The database with the loaded table, loading it (untimed) when not yet done."""
    if run.loaded is None:
        progress = Progress(f"{run.engine.name} loading (untimed)", sizes.rows, "rows")
        try:
            _load(run, sizes, progress)
        finally:
            progress.close()
    assert run.loaded is not None
    return run.loaded


def bulk_load(run: EngineRun, sizes: Sizes) -> Result:
    """Time ``executemany`` of every row, committing once per batch."""
    progress = Progress(f"bulk_load {run.engine.name}", sizes.rows, "rows")
    try:
        _, latencies = _load(run, sizes, progress)
    finally:
        progress.close()
    seconds = sum(latencies)
    p50, p99 = latency_summary(latencies)
    return Result(
        workload="bulk_load",
        engine=run.engine.name,
        unit="rows/s",
        ops=sizes.rows,
        seconds=seconds,
        throughput=sizes.rows / seconds if seconds > 0 else 0.0,
        p50_ms=p50,
        p99_ms=p99,
        latency_of=f"batch of {sizes.batch:,} rows + commit",
        params={"rows": sizes.rows, "batch": sizes.batch},
        check=sizes.rows,
    )


def _autocommit(run: EngineRun, sizes: Sizes, name: str, threads: int) -> Result:
    """Time single-row autocommit INSERTs from ``threads`` threads, one connection each.

    Thread ``i`` inserts ids ``i, i + threads, ...``; all start together at a barrier once
    every connection is open, and the wall time runs until the last thread finishes.
    """
    target = _create_table(run, name)
    total = sizes.commits
    rows = [
        [row for i in range(index, total, threads) for row in make_rows(i, 1, sizes.seed)]
        for index in range(threads)
    ]  # made before the clock starts
    latencies: list[list[float]] = [[] for _ in range(threads)]
    done = [0] * threads
    retries = [0] * threads

    def insert_rows(index: int, conn: Any) -> None:
        cursor = conn.cursor()
        mine = latencies[index]
        for row in rows[index]:
            began = time.perf_counter()
            while True:
                try:
                    cursor.execute(INSERT, row)
                    break
                except Exception as exc:
                    if not run.engine.is_retryable(exc):
                        raise
                    retries[index] += 1
            mine.append(time.perf_counter() - began)
            done[index] += 1

    seconds = run_connected_threads(
        threads,
        lambda: run.engine.connect(target, autocommit=True),
        insert_rows,
        f"{name} {run.engine.name}",
        total,
        lambda: sum(done),
    )
    p50, p99 = latency_summary([x for per_thread in latencies for x in per_thread])
    return Result(
        workload=name,
        engine=run.engine.name,
        unit="commits/s",
        ops=total,
        seconds=seconds,
        throughput=total / seconds if seconds > 0 else 0.0,
        p50_ms=p50,
        p99_ms=p99,
        latency_of="one INSERT commit",
        params={"commits": total, "threads": threads},
        check=sum(done),
        retries=sum(retries),
    )


def autocommit_one_thread(run: EngineRun, sizes: Sizes) -> Result:
    """Single-row autocommit INSERTs from one thread."""
    return _autocommit(run, sizes, "autocommit_1t", 1)


def autocommit_threads(run: EngineRun, sizes: Sizes) -> Result:
    """Single-row autocommit INSERTs from ``sizes.threads`` threads."""
    return _autocommit(run, sizes, "autocommit_mt", sizes.threads)


def point_select(run: EngineRun, sizes: Sizes) -> Result:
    """Time SELECTs by primary key of random ids of the loaded table."""
    target = _loaded(run, sizes)
    rng = random.Random(sizes.seed)
    ids = [rng.randrange(sizes.rows) for _ in range(sizes.selects)]
    conn = run.engine.connect(target, autocommit=True)
    latencies: list[float] = []
    found = 0
    progress = Progress(f"point_select {run.engine.name}", len(ids), "selects")
    try:
        cursor = conn.cursor()
        for warm in ids[: min(1000, len(ids) // 10)]:  # untimed: caches, lazy setup
            cursor.execute(POINT_SELECT, (warm,))
            cursor.fetchone()
        began = time.perf_counter()
        for n, id_ in enumerate(ids, 1):
            start = time.perf_counter()
            cursor.execute(POINT_SELECT, (id_,))
            row = cursor.fetchone()
            latencies.append(time.perf_counter() - start)
            found += row is not None
            if n % 1000 == 0:
                progress.update(n)
        seconds = time.perf_counter() - began
    finally:
        progress.close()
        conn.close()
    p50, p99 = latency_summary(latencies)
    return Result(
        workload="point_select",
        engine=run.engine.name,
        unit="selects/s",
        ops=len(ids),
        seconds=seconds,
        throughput=len(ids) / seconds if seconds > 0 else 0.0,
        p50_ms=p50,
        p99_ms=p99,
        latency_of="one SELECT by primary key",
        params={"selects": len(ids), "table_rows": sizes.rows},
        check=found,
    )


def _repeated_query(
    run: EngineRun,
    sizes: Sizes,
    workload: str,
    query: str,
    answer: Callable[[list[Any]], Any],
    latency_of: str,
    setup: Callable[[Any], None] | None = None,
) -> Result:
    """Time ``query`` over the loaded table, ``sizes.scans`` times; rows scanned per second."""
    target = _loaded(run, sizes)
    conn = run.engine.connect(target, autocommit=True)
    latencies: list[float] = []
    check: Any = None
    progress = Progress(f"{workload} {run.engine.name}", sizes.scans, "queries")
    try:
        cursor = conn.cursor()
        if setup is not None:
            setup(cursor)
        for n in range(1, sizes.scans + 1):
            start = time.perf_counter()
            cursor.execute(query)
            rows = cursor.fetchall()
            latencies.append(time.perf_counter() - start)
            check = answer(rows)
            progress.update(n)
    finally:
        progress.close()
        conn.close()
    seconds = sum(latencies)
    p50, p99 = latency_summary(latencies)
    return Result(
        workload=workload,
        engine=run.engine.name,
        unit="rows/s",
        ops=sizes.scans,
        seconds=seconds,
        throughput=sizes.rows * sizes.scans / seconds if seconds > 0 else 0.0,
        p50_ms=p50,
        p99_ms=p99,
        latency_of=latency_of,
        params={"query": query, "repetitions": sizes.scans, "table_rows": sizes.rows},
        check=check,
    )


def filtered_scan(run: EngineRun, sizes: Sizes) -> Result:
    """Time an aggregate over a filtered full scan of the loaded table."""

    def answer(rows: list[Any]) -> Any:
        count, average = rows[0]
        return [count, None if average is None else round(float(average), 6)]

    return _repeated_query(
        run, sizes, "filtered_scan", SCAN, answer, "one query over the whole table"
    )


def join_aggregate(run: EngineRun, sizes: Sizes) -> Result:
    """Time a hash join, aggregation and sort over the loaded table."""

    def create_dimension(cursor: Any) -> None:
        cursor.execute(CREATE_DIMENSION)
        cursor.execute("SELECT count(*) FROM dim")
        if cursor.fetchone()[0] == 0:  # a database kept (--keep) may have it already
            cursor.executemany(
                "INSERT INTO dim (k, grp) VALUES (?, ?)",
                [(k, f"group{k % 10}") for k in range(K_VALUES)],
            )

    def answer(rows: list[Any]) -> Any:
        return [[grp, count, round(float(total), 3)] for grp, count, total in rows]

    return _repeated_query(
        run,
        sizes,
        "join_aggregate",
        JOIN_AGGREGATE,
        answer,
        "one join + group + sort over the whole table",
        setup=create_dimension,
    )


def visibility(run: EngineRun, sizes: Sizes) -> list[Result]:
    """Commits on one node, seen from another process; strong reads there (bench.visibility)."""
    from bench.visibility import visibility as run_visibility

    return run_visibility(run, sizes)


def contention(run: EngineRun, sizes: Sizes) -> list[Result]:
    """Read-modify-write transactions as the hot keys shrink (bench.contention)."""
    from bench.contention import contention as run_contention

    return run_contention(run, sizes)


@dataclass(frozen=True)
class Workload:
    """A named workload and the function that runs it on one engine.

    ``run`` returns one result, or several (``visibility`` reports three figures,
    ``contention`` one per hot-key count).
    """

    name: str
    summary: str
    run: Callable[[EngineRun, Sizes], Result | list[Result]]


def _cdc(run: EngineRun, sizes: Sizes) -> list[Result]:
    from bench.cdc import cdc  # imports this module: deferred

    return cdc(run, sizes)


def _ingest(run: EngineRun, sizes: Sizes) -> list[Result]:
    from bench.ingest import ingest  # imports this module: deferred

    return ingest(run, sizes)


WORKLOADS: tuple[Workload, ...] = (
    Workload("bulk_load", "executemany, one commit per batch", bulk_load),
    Workload("autocommit_1t", "single-row autocommit INSERTs, 1 thread", autocommit_one_thread),
    Workload("autocommit_mt", "single-row autocommit INSERTs, N threads", autocommit_threads),
    Workload("point_select", "SELECT by primary key, random ids", point_select),
    Workload("filtered_scan", "count/avg over a filtered full scan", filtered_scan),
    Workload("join_aggregate", "join to a dimension table, group and sort", join_aggregate),
    Workload("visibility", "commit on node A, visible on node B; sync() on B", visibility),
    Workload(
        "contention", "2-row read-modify-write transactions, hot keys 10,000 -> 1", contention
    ),
    Workload("cdc", "CDC publisher: events/s from a backlog, commit-to-published latency", _cdc),
    Workload("ingest", "Kafka source: JSON records/s into queryable rows, delay at a fixed rate", _ingest),
)
