"""The ``visibility`` workload: how soon another node sees a commit, and what a strong read costs.

Only for engines whose database can have several nodes (``offsetdb-kafka``); on the
others it is reported as not applicable.

Node A is this process. Node B is a separate process (``multiprocessing``, spawn
context: its own interpreter, so its own GIL) with its own replica directory, on the
same database, which A created (with its table) and keeps open. Then:

1. B opens the database and runs one untimed ``sync()``: a strong read, so B has applied
   everything A did so far, and B's producer has made its first append (a new
   producer's first append waits 0.5-1 s for its ProducerId).
2. B times ``--visibility-syncs`` strong reads, ``sync()``: append a sync marker to the
   log and wait until this node has applied it. A is idle meanwhile (its node follows
   the log, as any node does). Then B says it is ready.
3. A runs ``--visibility-commits`` single-row autocommit INSERTs, one at a time, and
   notes each commit's offset (``conn.last_commit_offset``) and the moment the INSERT
   returned (``time.monotonic()``, CLOCK_MONOTONIC: one clock for every process on
   Linux). Meanwhile B sits in ``conn.sync(last + 1)``: it blocks on the materializer's
   condition variable until its follower thread has applied any newer offset, then
   notes the newest applied offset and the time, and waits again. So B's timeline
   records when each offset became readable on B, with no polling loop competing with
   B's follower for the GIL. Offsets applied together share a time.
4. A tells B the last offset it committed; B waits for it, checks that it sees every row
   (``SELECT count(*)``) and sends its timeline back. For each commit of A, the
   visibility latency is the first time on B's timeline at or past its offset minus the
   time A's INSERT returned. It can be negative: A's commit returns only once A's own
   follower has read the record back and applied it, and B's follower may get there
   first.

Why A does not send B each offset as it commits: B would have to read the pipe between
waits, delaying the very timestamps being taken; the timeline needs only the end.
Why the strong reads come first: on Tansu every fetch costs more as the log grows, so
the phases share the log's first ``syncs + commits`` records rather than one of them
getting all the late ones (see bench/README.md).
"""

from __future__ import annotations

import bisect
import contextlib
import multiprocessing
import time
from multiprocessing.connection import Connection as Pipe
from typing import Any

from bench.measure import Progress, Result, latency_summary
from bench.workloads import INSERT, EngineRun, Sizes, _create_table, make_rows

NOT_APPLICABLE = "not applicable: needs a database with several nodes (offsetdb-kafka)"
READY_TIMEOUT_S = 120.0


def node_b(pipe: Pipe, target: str, settings: dict[str, Any], syncs: int) -> None:
    """Node B (runs in its own process): time strong reads, then note when offsets become visible."""
    import offsetdb
    from offsetdb import errors

    try:
        conn = offsetdb.connect(target, autocommit=True, **settings)
    except BaseException as exc:  # noqa: BLE001 - reported to node A
        pipe.send(("error", f"node B could not open the database: {type(exc).__name__}: {exc}"))
        return
    try:
        conn.sync()  # untimed: caught up with A, and B's producer has appended once
        sync_latencies = []
        for _ in range(syncs):
            began = time.perf_counter()
            conn.sync()
            sync_latencies.append(time.perf_counter() - began)
        last = conn.sync(0)  # the newest applied offset
        pipe.send(("ready", sync_latencies))
        offsets: list[int] = []
        times: list[float] = []
        goal: int | None = None
        while goal is None or last < goal:
            try:
                applied = conn.sync(last + 1, timeout=0.05)
            except errors.SyncTimeout:
                if pipe.poll():  # A has finished (or given up)
                    message = pipe.recv()
                    if message[0] != "goal":
                        return
                    goal = message[1]
                continue
            now = time.monotonic()
            offsets.append(applied)
            times.append(now)
            last = applied
        cursor = conn.cursor()
        cursor.execute("SELECT count(*) FROM t")
        rows = cursor.fetchone()[0]
        pipe.send(("done", {"offsets": offsets, "times": times, "rows": rows}))
    except EOFError:
        return  # A went away
    except BaseException as exc:  # noqa: BLE001 - reported to node A
        pipe.send(("error", f"node B failed: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _receive(pipe: Pipe, process: Any, timeout: float, waiting_for: str) -> tuple[Any, ...]:
    """The next message from node B; an error if B failed, died or kept silent too long."""
    deadline = time.monotonic() + timeout
    while not pipe.poll(0.2):
        if not process.is_alive():
            raise RuntimeError(f"node B exited (status {process.exitcode}) before {waiting_for}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"node B did not report {waiting_for} within {timeout:g}s")
    message = pipe.recv()
    if message[0] == "error":
        raise RuntimeError(message[1])
    return tuple(message)


def visibility(run: EngineRun, sizes: Sizes) -> list[Result]:
    """Measure on node B the visibility of node A's commits, and B's strong reads."""
    engine: Any = run.engine
    if not getattr(engine, "is_kafka", False):
        return [Result(workload="visibility", engine=engine.name, unit="", skipped=NOT_APPLICABLE)]
    target = _create_table(run, "visibility")
    b_target = engine.node_target(target, run.workdir / "visibility-node-b")
    context = multiprocessing.get_context("spawn")
    here, there = context.Pipe()
    process = context.Process(
        target=node_b,
        args=(there, b_target, engine.connect_settings(), sizes.visibility_syncs),
        name="bench-node-b",
        daemon=True,
    )
    conn = engine.connect(target, autocommit=True)
    commits: list[tuple[int, float]] = []
    latencies: list[float] = []
    try:
        process.start()
        there.close()
        ready_timeout = READY_TIMEOUT_S + sizes.visibility_syncs * 0.5
        _, sync_latencies = _receive(here, process, ready_timeout, "that it is ready")
        cursor = conn.cursor()
        rows = make_rows(0, sizes.visibility_commits, sizes.seed)
        progress = Progress(f"visibility {engine.name}", len(rows), "commits")
        try:
            began = time.monotonic()
            for n, row in enumerate(rows, 1):
                start = time.monotonic()
                cursor.execute(INSERT, row)
                committed = time.monotonic()
                latencies.append(committed - start)
                commits.append((conn.last_commit_offset, committed))
                progress.update(n)
            seconds = time.monotonic() - began
        finally:
            progress.close()
        here.send(("goal", commits[-1][0]))
        _, report = _receive(here, process, READY_TIMEOUT_S, "its measurements")
    finally:
        with contextlib.suppress(OSError):  # B may have gone already
            here.send(("stop",))
        process.join(30)
        if process.is_alive():
            process.terminate()
            process.join(10)
        here.close()
        conn.close()

    offsets, times = report["offsets"], report["times"]
    lags = []
    for offset, committed in commits:
        index = bisect.bisect_left(offsets, offset)
        if index == len(offsets):
            raise RuntimeError(f"node B never recorded offset {offset} as applied")
        lags.append(times[index] - committed)
    total = len(commits)
    rate = total / seconds if seconds > 0 else 0.0
    params = {
        "commits": total,
        "syncs": sizes.visibility_syncs,
        "node_b": "separate process (multiprocessing spawn), own replica directory",
    }
    lag_p50, lag_p99 = latency_summary(lags)
    commit_p50, commit_p99 = latency_summary(latencies)
    sync_p50, sync_p99 = latency_summary(sync_latencies)
    sync_seconds = sum(sync_latencies)
    return [
        Result(
            workload="visibility",
            engine=engine.name,
            unit="commits/s",
            ops=total,
            seconds=seconds,
            throughput=rate,
            p50_ms=lag_p50,
            p99_ms=lag_p99,
            latency_of="commit visible on node B (other process) - INSERT returned on node A",
            params=params,
            check=report["rows"],
            details={
                "min_ms": min(lags) * 1000.0,
                "max_ms": max(lags) * 1000.0,
                "mean_ms": sum(lags) / len(lags) * 1000.0,
                "seen_on_b_before_a_returned": sum(lag < 0 for lag in lags),
                "b_wakeups": len(offsets),
            },
        ),
        Result(
            workload="visibility_commit",
            engine=engine.name,
            unit="commits/s",
            ops=total,
            seconds=seconds,
            throughput=rate,
            p50_ms=commit_p50,
            p99_ms=commit_p99,
            latency_of="one autocommit INSERT on node A while node B follows",
            params=params,
            details={"max_ms": max(latencies) * 1000.0},
        ),
        Result(
            workload="visibility_sync",
            engine=engine.name,
            unit="syncs/s",
            ops=len(sync_latencies),
            seconds=sync_seconds,
            throughput=len(sync_latencies) / sync_seconds if sync_seconds > 0 else 0.0,
            p50_ms=sync_p50,
            p99_ms=sync_p99,
            latency_of="sync() on node B (A idle): append a sync marker, wait until B applied it",
            params=params,
            details={"max_ms": max(sync_latencies) * 1000.0 if sync_latencies else 0.0},
        ),
    ]
