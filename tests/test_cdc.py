"""Change data capture through ``conn.subscribe()``, on both backends.

The stream is checked against what the clients know independently: every commit they
were told succeeded appears exactly once, at its offset, in offset order; nothing they
were told aborted appears; each change's before image is the row the previous change of
that key left; and replaying the stream rebuilds every table exactly as SELECT shows it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import offsetdb
from offsetdb import errors
from offsetdb.materializers.changes import CommittedTransaction, Progress, SnapshotChunk

SCHEMA = [
    "CREATE TABLE ledger (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, balance NUMERIC(12,2), opened DATE)",
    "CREATE TABLE events (note TEXT, amount INTEGER)",  # no primary key: hidden row ids
]


def _rows(conn: Any, table: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    cursor = conn.cursor()
    cursor.execute(f"SELECT * FROM {table}")
    rows = cursor.fetchall()
    if table == "ledger":
        return {(r[0],): tuple(r) for r in rows}
    return {tuple(r): tuple(r) for r in rows}  # compared as a multiset of rows below


def _apply(state: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]], change: Any) -> None:
    """Apply one change as a Debezium consumer would, checking its before image."""
    table = state.setdefault(change.table, {})
    if change.op in ("c", "r"):
        assert change.key not in table, f"{change.op} of a key already present: {change}"
        table[change.key] = change.after
    elif change.op == "u":
        assert table.get(change.key) == change.before, f"update's before differs: {change}"
        table[change.key] = change.after
    elif change.op == "d":
        assert table.get(change.key) == change.before, f"delete's before differs: {change}"
        del table[change.key]


def _random_work(
    target: str, seed: int, count: int, committed: list[tuple[int, str]], aborted: list[str], events: bool = True
) -> None:
    rng = random.Random(seed)
    conn = offsetdb.connect(target)
    cursor = conn.cursor()
    try:
        for _ in range(count):
            try:
                for _ in range(rng.randint(1, 3)):
                    key = rng.randint(1, 12)
                    action = rng.random()
                    cursor.execute("SELECT balance FROM ledger WHERE id = ?", (key,))
                    found = cursor.fetchall()
                    if not found:
                        cursor.execute(
                            "INSERT INTO ledger VALUES (?, ?, ?, ?)",
                            (key, f"owner-{key}", rng.randint(0, 1000), "2024-03-01"),
                        )
                    elif action < 0.15:
                        cursor.execute("DELETE FROM ledger WHERE id = ?", (key,))
                    elif action < 0.25 and key < 100:
                        # A primary-key change: a delete then a create in the stream.
                        cursor.execute("UPDATE ledger SET id = ? WHERE id = ?", (key + 100, key))
                    else:
                        cursor.execute("UPDATE ledger SET balance = balance + 1 WHERE id = ?", (key,))
                    if events and action > 0.8:
                        cursor.execute("INSERT INTO events VALUES (?, ?)", (f"by {seed}", key))
                conn.commit()
                committed.append((conn.last_commit_offset or -1, ""))
            except errors.SerializationFailure:
                conn.rollback()
                aborted.append("40001")
            except errors.UniqueViolation:
                conn.rollback()
                aborted.append("23505")
    finally:
        conn.close()


def _drain(subscription: Any) -> list[Any]:
    return list(subscription)


def test_stream_holds_every_commit_once_in_order_and_rebuilds_every_table(db_target: str) -> None:
    setup = offsetdb.connect(db_target, autocommit=True)
    cursor = setup.cursor()
    for statement in SCHEMA:
        cursor.execute(statement)
    committed: list[tuple[int, str]] = []
    aborted: list[str] = []
    threads = [
        threading.Thread(target=_random_work, args=(db_target, seed, 25, committed, aborted))
        for seed in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cursor.execute("DROP TABLE events")
    end = setup.last_commit_offset
    assert end is not None
    assert aborted, "the workload is meant to have conflicts"

    with setup.subscribe(from_offset=-1, timeout=2.0) as subscription:
        items = _drain(subscription)
    transactions = [i for i in items if isinstance(i, CommittedTransaction)]
    offsets = [t.offset for t in transactions]
    assert offsets == sorted(set(offsets)), "transactions in offset order, each once"
    client_offsets = {offset for offset, _ in committed}
    assert client_offsets <= set(offsets), "every acknowledged commit is in the stream"
    for txn in transactions:
        found = setup.transaction_outcome(txn.txn_id)
        assert found is not None and found[0] == txn.offset and found[1], txn
    assert end in offsets  # the DROP
    state: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
    dropped = []
    for txn in transactions:
        assert len(txn.changes) == sum(txn.changes.counts().values())
        for change in txn.changes:
            _apply(state, change)
        dropped += [s.table for s in txn.schema_changes if s.op == "DROP"]
    assert dropped == ["events"]
    assert state["ledger"] == _rows(setup, "ledger")
    # Every change of a PK update is a delete of the old key then a create of the new.
    ops = [c.op for t in transactions for c in t.changes if c.table == "ledger"]
    assert "u" in ops and "d" in ops and "c" in ops
    setup.close()


def test_snapshot_then_stream_while_writers_run_has_no_gap_and_no_duplicate(db_target: str) -> None:
    setup = offsetdb.connect(db_target, autocommit=True)
    cursor = setup.cursor()
    cursor.execute(SCHEMA[0])
    cursor.executemany(
        "INSERT INTO ledger VALUES (?, ?, ?, ?)", [(i, f"o{i}", i, None) for i in range(1, 2500)]
    )
    committed: list[tuple[int, str]] = []
    aborted: list[str] = []
    writers = [
        threading.Thread(target=_random_work, args=(db_target, 10 + seed, 30, committed, aborted, False))
        for seed in range(2)
    ]
    for writer in writers:
        writer.start()
    time.sleep(0.1)
    subscription = setup.subscribe(["ledger"], timeout=None)
    state: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
    items = iter(subscription)
    first = next(items)
    assert isinstance(first, SnapshotChunk)
    snapshot_at = first.offset
    markers = [c.snapshot for c in first.changes]
    for change in first.changes:
        _apply(state, change)
    finished = False
    last = first.last
    while not last:
        chunk = next(items)
        assert isinstance(chunk, SnapshotChunk) and chunk.offset == snapshot_at
        markers += [c.snapshot for c in chunk.changes]
        for change in chunk.changes:
            _apply(state, change)
        last = chunk.last
    assert markers[0] == "first" and markers[-1] == "last"
    assert set(markers[1:-1]) == {"true"}
    for writer in writers:
        writer.join()
    end = setup.sync()
    while not finished:
        item = subscription.poll(10.0)
        assert item is not None, "the stream stopped before the end of the log"
        if isinstance(item, CommittedTransaction):
            assert item.offset > snapshot_at
            for change in item.changes:
                _apply(state, change)
        if subscription.position is not None and subscription.position >= end:
            finished = True
    subscription.close()
    assert state["ledger"] == _rows(setup, "ledger")
    setup.close()


def test_progress_marks_advance_over_other_tables_commits(db_target: str) -> None:
    conn = offsetdb.connect(db_target, autocommit=True)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE quiet (id INTEGER PRIMARY KEY)")
    cursor.execute("CREATE TABLE busy (id INTEGER PRIMARY KEY)")
    with conn.subscribe(["quiet"], snapshot=False, progress_interval=0.2) as subscription:
        cursor.execute("INSERT INTO busy VALUES (1)")
        busy_offset = conn.last_commit_offset
        assert busy_offset is not None
        item = subscription.poll(10.0)
        while isinstance(item, Progress) and item.offset < busy_offset:
            item = subscription.poll(10.0)
        assert isinstance(item, Progress), f"expected a progress mark, got {item!r}"
        assert subscription.position is not None and subscription.position >= busy_offset
    conn.close()


def test_resume_from_offset_delivers_exactly_what_follows(db_target: str) -> None:
    conn = offsetdb.connect(db_target, autocommit=True)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(6):
        cursor.execute("INSERT INTO t VALUES (?, ?)", (i, str(i)))
    with conn.subscribe(["t"], from_offset=-1, timeout=1.0) as everything:
        all_offsets = [i.offset for i in everything if isinstance(i, CommittedTransaction)]
    middle = all_offsets[3]
    with conn.subscribe(["t"], from_offset=middle, timeout=1.0) as rest:
        resumed = [i.offset for i in rest if isinstance(i, CommittedTransaction)]
    assert resumed == all_offsets[4:]
    with pytest.raises(errors.UndefinedTable):
        conn.subscribe(["no_such_table"])
    conn.close()


def test_large_transaction_changes_are_counted_without_decoding_and_stream(tmp_path: Path) -> None:
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=False)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT)")
    conn.commit()
    cursor.executemany("INSERT INTO big VALUES (?, ?)", [(i, "x" * 20) for i in range(100_000)])
    conn.commit()
    big_offset = conn.last_commit_offset
    with conn.subscribe(["big"], from_offset=big_offset - 1, timeout=1.0) as subscription:
        txn = next(iter(subscription))
        assert isinstance(txn, CommittedTransaction) and txn.offset == big_offset
        assert len(txn.changes) == 100_000 and txn.changes.counts() == {"big": 100_000}
        keys = [change.key[0] for change in txn.changes]
    assert keys == list(range(100_000))
    conn.close()


def _offsetdb(*args: str) -> list[str]:
    return [sys.executable, "-m", "offsetdb.cli", *args]


def test_offsetdb_subscribe_prints_one_json_line_per_change(tmp_path: Path) -> None:
    import json

    target = str(tmp_path / "db")
    conn = offsetdb.connect(target, autocommit=True)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, d DATE, b BYTEA)")
    cursor.execute("INSERT INTO t VALUES (1, '2024-05-06', '\\x01ff')")
    cursor.execute("UPDATE t SET d = NULL WHERE id = 1")
    conn.close()
    done = subprocess.run(
        _offsetdb("subscribe", target, "--from-offset", "-1", "--timeout", "1"),
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(line["op"], line["table"]) for line in lines] == [("create", "t"), ("c", "t"), ("u", "t")]
    assert lines[1]["after"] == {"id": 1, "d": "2024-05-06", "b": "\\x01ff"}
    assert lines[2]["before"]["d"] == "2024-05-06" and lines[2]["after"]["d"] is None
    assert lines[2]["key"] == {"id": 1}
    assert "resume with --from-offset" in done.stderr


def test_subscribe_at_the_prompt_prints_changes_until_interrupted(tmp_path: Path) -> None:
    target = str(tmp_path / "db")
    conn = offsetdb.connect(target, autocommit=True)
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    cursor.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
    cursor.execute("DELETE FROM t WHERE id = 2")
    conn.close()
    process = subprocess.Popen(
        _offsetdb("sql", target, "-c", "SUBSCRIBE TO t FROM OFFSET 0"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    while len(lines) < 6 and time.monotonic() < deadline:
        lines.append(process.stdout.readline().rstrip("\n"))
    process.send_signal(signal.SIGINT)
    rest, errors_text = process.communicate(timeout=30)
    assert process.returncode == 0, errors_text
    assert lines[0].startswith("SUBSCRIBE to t")
    assert lines[2].endswith("| CREATE TABLE t")
    assert lines[3].endswith("| c | t | (1) |  | (1, one)")
    assert lines[5].endswith("| d | t | (2) | (2, two) | ")
    assert "SUBSCRIBE stopped (delivered up to offset" in rest
    assert os.path.exists(target)
