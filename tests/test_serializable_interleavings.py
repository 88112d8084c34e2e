"""Interleaved transactions are serializable in commit order.

Several connections run randomly generated transactions, one statement at a time in a
random interleaving, under SERIALIZABLE. Certification lets a transaction commit only if
nothing it read changed between its snapshot and its commit, so each committed
transaction must behave exactly as if it had run alone at its commit offset. The test
replays the committed transactions one after another, in commit-offset order, on SQLite,
and requires the same result for every read and the same final table.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

import offsetdb

SETUP = [
    "CREATE TABLE r (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER)",
    "INSERT INTO r VALUES " + ", ".join(f"({i}, {i % 3}, {i % 5})" for i in range(12)),
]


def program(rng: random.Random, next_id: list[int]) -> list[str]:
    statements = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.random()
        column = rng.choice(["a", "b"])
        bound = rng.randint(0, 4)
        if kind < 0.35:
            statements.append(f"SELECT id, a, b FROM r WHERE {column} <= {bound} ORDER BY id")
        elif kind < 0.5:
            statements.append(f"SELECT sum(a), count(*) FROM r WHERE b > {bound}")
        elif kind < 0.75:
            statements.append(f"UPDATE r SET {column} = {column} + 1 WHERE id = {rng.randint(0, 14)}")
        elif kind < 0.85:
            statements.append(f"UPDATE r SET a = b WHERE {column} = {bound}")
        elif kind < 0.95:
            next_id[0] += 1
            statements.append(f"INSERT INTO r VALUES ({next_id[0]}, {bound}, {rng.randint(0, 4)})")
        else:
            statements.append(f"DELETE FROM r WHERE id = {rng.randint(0, 14)}")
    return statements


def run_and_replay(seed: int, path: str, isolation: str) -> None:
    """Run one random interleaving; raise AssertionError if it is not serializable."""
    rng = random.Random(seed)
    setup = offsetdb.connect(path, autocommit=True)
    for statement in SETUP:
        setup.cursor().execute(statement)
    next_id = [100]
    clients = [offsetdb.connect(path) for _ in range(4)]
    for conn in clients:
        conn.cursor().execute(f"SET TRANSACTION ISOLATION LEVEL {isolation}")
    pending = {i: program(rng, next_id) for i in range(len(clients))}
    done_statements: dict[int, list[tuple[str, list[tuple[object, ...]]]]] = {i: [] for i in pending}
    committed: list[tuple[int | None, list[tuple[str, list[tuple[object, ...]]]]]] = []
    outcomes = {"committed": 0, "aborted": 0}
    started = 0
    while pending:
        client = rng.choice(sorted(pending))
        conn = clients[client]
        statements = pending[client]
        try:
            if statements:
                statement = statements.pop(0)
                cur = conn.cursor().execute(statement)
                rows = cur.fetchall() if cur.description else []
                done_statements[client].append((statement, rows))
                continue
            before = conn.last_commit_offset
            conn.commit()
            if conn.last_commit_offset != before:  # it appended a record: it wrote
                committed.append((conn.last_commit_offset, done_statements[client]))
            outcomes["committed"] += 1
        except offsetdb.Error as e:
            assert e.sqlstate in ("40001", "23505"), e
            conn.rollback()
            outcomes["aborted"] += 1
        done_statements[client] = []
        started += 1
        if started < 30:
            pending[client] = program(rng, next_id)
        else:
            del pending[client]
    assert outcomes["committed"] > 0

    lite = sqlite3.connect(":memory:", isolation_level=None)
    for statement in SETUP:
        lite.execute(statement)
    # Transactions that changed nothing append no record and carry no offset; they read
    # one snapshot and are serializable at it. The writers go in commit-offset order.
    for _, statements in sorted(committed, key=lambda t: t[0]):
        for statement, rows in statements:
            got = lite.execute(statement).fetchall() if statement.startswith("SELECT") else None
            if got is not None:
                assert [tuple(r) for r in got] == rows, statement
            else:
                lite.execute(statement)
    expected = lite.execute("SELECT id, a, b FROM r ORDER BY id").fetchall()
    try:
        assert setup.cursor().execute("SELECT id, a, b FROM r ORDER BY id").fetchall() == expected
    finally:
        for conn in clients:
            conn.close()
        setup.close()


@pytest.mark.parametrize("seed", range(25))
def test_committed_transactions_equal_a_serial_run_in_commit_order(seed: int, db_target: str) -> None:
    run_and_replay(seed, db_target, "SERIALIZABLE")


def test_the_same_check_catches_snapshot_isolation_anomalies(tmp_path: Path) -> None:
    """SNAPSHOT admits write skew; the serial-replay check must see it, or it proves nothing."""
    caught = 0
    for seed in range(25):
        try:
            run_and_replay(seed, str(tmp_path / f"db{seed}"), "SNAPSHOT")
        except AssertionError:
            caught += 1
    assert caught > 0
