"""The ``contention`` workload: commits/s and abort rate as the hot keys shrink.

A curve, one point per hot-key count (``--hot-keys``, default 10,000, 1,000, 100, 10,
1), each on a fresh database holding the table :data:`CREATE_COUNTERS` with that many
rows, all at 0. ``--threads`` client threads (8), each with its own connection, start
together at a barrier and run read-modify-write transactions until ``--contention-commits``
of them (2,000; on ``offsetdb-kafka`` ``--contention-kafka-commits``, 300, since every
attempt is a record in its log and Tansu slows down past ~1,000) have committed in all,
taken from a shared pool, so a thread that keeps losing does not leave the others idle
at the end. One transaction is a transfer-like increment:

    BEGIN                      (sqlite3: BEGIN IMMEDIATE, below)
    SELECT n FROM counters WHERE id = a      -- a, b uniform among the hot keys, a != b
    SELECT n FROM counters WHERE id = b
    UPDATE counters SET n = <n_a + 1> WHERE id = a
    UPDATE counters SET n = <n_b + 1> WHERE id = b
    COMMIT

(with one hot key, a = b: one SELECT and one UPDATE to ``n + 2``).

The new values are computed by the client from what it read, so a lost update would
show in the outcome check: after the run the counters must sum to 2 x commits.

On a retryable error the client rolls back and runs the whole transaction again with
the same keys, counting one abort:

- offsetdb (``BEGIN``): SQLSTATE 40001, ``offsetdb.errors.SerializationFailure``, raised
  by COMMIT when certification finds that a row the transaction read or wrote was
  committed by another transaction after its snapshot. Every attempt, aborted or not,
  is one record in the log.
- sqlite3 (``BEGIN IMMEDIATE``): the write lock is taken at BEGIN, so a transaction
  never conflicts once started; a writer that finds the lock taken waits inside SQLite's
  busy handler (``busy_timeout`` 10 s), which Python cannot count. Its "aborts" are the
  SQLITE_BUSY errors ("database is locked") that reach Python after that timeout,
  normally none. How long writers queue shows instead in the ``begin_*`` figures of the
  details: the time BEGIN took (the wait for the lock).

Throughput is commits over the wall time from the barrier until the last thread ends;
the latency is of one committed transaction from its first BEGIN to its COMMIT,
retries included.
"""

from __future__ import annotations

import contextlib
import random
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from bench.measure import Result, latency_summary, run_connected_threads
from bench.workloads import EngineRun, Sizes

CREATE_COUNTERS = "CREATE TABLE counters (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)"
INSERT_COUNTER = "INSERT INTO counters (id, n) VALUES (?, ?)"
READ = "SELECT n FROM counters WHERE id = ?"
WRITE = "UPDATE counters SET n = ? WHERE id = ?"
OUTCOME = "SELECT count(*), sum(n) FROM counters"
POPULATE_BATCH = 5_000  # rows per populating transaction (one log record each)
# A transaction that loses this many times in a row is reported as starved rather than
# retried for ever.
MAX_ABORTS_IN_A_ROW = 10_000
LATENCY_OF = "one committed 2-row read-modify-write transaction, from first BEGIN, retries included"


@dataclass
class _Thread:
    """What one client thread measured."""

    latencies: list[float] = field(default_factory=list)
    begins: list[float] = field(default_factory=list)
    commits: int = 0
    aborts: int = 0
    most_aborts: int = 0  # of one committed transaction


class _Tickets:
    """The commits still to make, shared by the threads."""

    def __init__(self, total: int) -> None:
        self._left = total
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left == 0:
                return False
            self._left -= 1
            return True


def _populate(run: EngineRun, hot_keys: int) -> str:
    """A new database with ``hot_keys`` counters at 0 (untimed)."""
    engine = run.engine
    target = engine.create_database(run.workdir, f"contention_{hot_keys}")
    conn = engine.connect(target, autocommit=False)
    try:
        cursor = conn.cursor()
        cursor.execute(CREATE_COUNTERS)
        conn.commit()
        for start in range(0, hot_keys, POPULATE_BATCH):
            stop = min(start + POPULATE_BATCH, hot_keys)
            cursor.executemany(INSERT_COUNTER, [(i, 0) for i in range(start, stop)])
            conn.commit()
    finally:
        conn.close()
    return target


def _outcome(run: EngineRun, target: str) -> tuple[int, int]:
    """The number of counters and their sum, read after the run."""
    conn = run.engine.connect(target, autocommit=True)
    try:
        cursor = conn.cursor()
        cursor.execute(OUTCOME)
        count, total = cursor.fetchone()
    finally:
        conn.close()
    return int(count), int(total or 0)


def _point(run: EngineRun, sizes: Sizes, hot_keys: int) -> Result:
    """One point of the curve: the engine's number of commits, over ``hot_keys`` rows."""
    engine: Any = run.engine
    threads = sizes.threads
    kafka = getattr(engine, "is_kafka", False)
    total = sizes.contention_kafka_commits if kafka else sizes.contention_commits
    begin_sql = engine.begin_read_write
    target = _populate(run, hot_keys)
    tickets = _Tickets(total)
    stats = [_Thread() for _ in range(threads)]

    def transfer(cursor: Any, conn: Any, a: int, b: int, mine: _Thread) -> None:
        began = time.perf_counter()
        cursor.execute(begin_sql)
        mine.begins.append(time.perf_counter() - began)
        cursor.execute(READ, (a,))
        n_a = cursor.fetchone()[0]
        if a == b:
            cursor.execute(WRITE, (n_a + 2, a))
        else:
            cursor.execute(READ, (b,))
            n_b = cursor.fetchone()[0]
            cursor.execute(WRITE, (n_a + 1, a))
            cursor.execute(WRITE, (n_b + 1, b))
        conn.commit()

    def transfers(index: int, conn: Any) -> None:
        rng = random.Random(sizes.seed * 1_000_003 + hot_keys * 101 + index)
        mine = stats[index]
        cursor = conn.cursor()
        while tickets.take():
            a, b = rng.sample(range(hot_keys), 2) if hot_keys > 1 else (0, 0)
            began = time.perf_counter()
            aborts = 0
            while True:
                try:
                    transfer(cursor, conn, a, b, mine)
                    break
                except Exception as exc:
                    with contextlib.suppress(Exception):
                        conn.rollback()
                    if not engine.is_retryable(exc):
                        raise
                    aborts += 1
                    mine.aborts += 1
                    if aborts >= MAX_ABORTS_IN_A_ROW:
                        raise RuntimeError(
                            f"a transaction aborted {aborts:,} times in a row ({exc})"
                        ) from exc
            mine.latencies.append(time.perf_counter() - began)
            mine.most_aborts = max(mine.most_aborts, aborts)
            mine.commits += 1

    seconds = run_connected_threads(
        threads,
        lambda: engine.connect(target, autocommit=True),
        transfers,
        f"contention {hot_keys:,} hot keys {engine.name}",
        total,
        lambda: sum(s.commits for s in stats),
    )
    commits = sum(s.commits for s in stats)
    aborts = sum(s.aborts for s in stats)
    attempts = commits + aborts
    rows, counted = _outcome(run, target)
    p50, p99 = latency_summary([x for s in stats for x in s.latencies])
    begin_p50, begin_p99 = latency_summary([x for s in stats for x in s.begins])
    return Result(
        workload="contention",
        engine=engine.name,
        unit="commits/s",
        ops=commits,
        seconds=seconds,
        throughput=commits / seconds if seconds > 0 else 0.0,
        p50_ms=p50,
        p99_ms=p99,
        latency_of=LATENCY_OF,
        params={
            "hot_keys": hot_keys,
            "commits": total,
            "threads": threads,
            "begin": begin_sql,
            "retry_on": engine.retry_on,
        },
        check=counted,
        expected=2 * commits,  # each committed transfer added 1 to two counters
        retries=aborts,
        point=f"hot_keys={hot_keys}",
        details={
            "hot_keys": hot_keys,
            "aborts": aborts,
            "attempts": attempts,
            "abort_rate": aborts / attempts if attempts else 0.0,
            "most_aborts_of_one_commit": max(s.most_aborts for s in stats),
            "rows": rows,
            "begin_p50_ms": begin_p50,
            "begin_p99_ms": begin_p99,
        },
    )


def contention(run: EngineRun, sizes: Sizes) -> list[Result]:
    """The contention curve on one engine: one result per hot-key count.

    A point that fails is reported with its error and the curve goes on; each point's
    database is released before the next one (on Kafka, its node stops fetching).
    """
    results = []
    for hot_keys in sizes.hot_keys:
        try:
            results.append(_point(run, sizes, hot_keys))
        except Exception as exc:  # noqa: BLE001 - one point must not hide the others
            traceback.print_exc(file=sys.stderr)
            results.append(
                Result(
                    workload="contention",
                    engine=run.engine.name,
                    unit="commits/s",
                    params={"hot_keys": hot_keys},
                    point=f"hot_keys={hot_keys}",
                    error=f"{type(exc).__name__}: {exc}",
                )
            )
        finally:
            run.engine.release()
    return results
