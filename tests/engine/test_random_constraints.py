"""Random writes against PRIMARY KEY and UNIQUE constraints, compared with SQLite.

Each statement runs in autocommit mode on both engines; they must agree on whether it
fails with a unique violation, and on the table afterwards. Covers the transaction's
own uniqueness checks, ON CONFLICT DO NOTHING / DO UPDATE, and moving a unique value
from one row to another.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import offsetdb

SCHEMA = "CREATE TABLE u (id INTEGER PRIMARY KEY, e INTEGER UNIQUE, v INTEGER)"


def statement(rng: random.Random) -> str:
    i, e, v = rng.randint(0, 6), rng.choice(["NULL", "1", "2", "3", "4"]), rng.randint(0, 9)
    kind = rng.random()
    if kind < 0.3:
        return f"INSERT INTO u VALUES ({i}, {e}, {v})"
    if kind < 0.45:
        return f"INSERT INTO u VALUES ({i}, {e}, {v}) ON CONFLICT (id) DO UPDATE SET v = excluded.v + u.v"
    if kind < 0.55:
        return f"INSERT INTO u VALUES ({i}, {e}, {v}) ON CONFLICT (e) DO NOTHING"
    if kind < 0.6:
        return f"INSERT INTO u VALUES ({i}, {e}, {v}) ON CONFLICT DO NOTHING"
    if kind < 0.8:
        return f"UPDATE u SET e = {e} WHERE id = {i}"
    if kind < 0.9:
        return f"UPDATE u SET id = {rng.randint(0, 6)} WHERE id = {i}"
    return f"DELETE FROM u WHERE id = {i}"


def fails_alike(lite: sqlite3.Connection, cur: Any, sql: str) -> bool:
    """Run ``sql`` on both engines; True when both refused it as a unique violation."""
    try:
        lite.execute(sql)
        lite_failed = False
    except sqlite3.IntegrityError:
        lite_failed = True
    try:
        cur.execute(sql)
        ours_failed = False
    except offsetdb.IntegrityError as e:
        assert e.sqlstate == "23505", e
        ours_failed = True
    assert ours_failed == lite_failed, sql
    return ours_failed


@pytest.mark.parametrize("seed", range(30))
def test_constraint_outcomes_match_sqlite(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    lite = sqlite3.connect(":memory:", isolation_level=None)
    lite.execute(SCHEMA)
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    cur = conn.cursor()
    cur.execute(SCHEMA)
    for _ in range(40):
        sql = statement(rng)
        fails_alike(lite, cur, sql)
        expected = lite.execute("SELECT id, e, v FROM u ORDER BY id").fetchall()
        assert cur.execute("SELECT id, e, v FROM u ORDER BY id").fetchall() == expected, sql
    conn.close()


@pytest.mark.parametrize("seed", range(30))
def test_constraint_outcomes_inside_transactions_match_sqlite(seed: int, tmp_path: Path) -> None:
    """Several writes per transaction: uniqueness against the transaction's own writes,
    values moved between rows within it, and certification's re-check at commit. An
    error rolls the whole transaction back on both engines (PostgreSQL's rule)."""
    rng = random.Random(1000 + seed)
    lite = sqlite3.connect(":memory:", isolation_level=None)
    lite.execute(SCHEMA)
    conn = offsetdb.connect(str(tmp_path / "db"))
    cur = conn.cursor()
    cur.execute(SCHEMA)
    conn.commit()
    for _ in range(12):
        lite.execute("BEGIN")
        failed = False
        for _ in range(rng.randint(1, 5)):
            if fails_alike(lite, cur, statement(rng)):
                failed = True
                break
        if failed or rng.random() < 0.2:
            lite.execute("ROLLBACK")
            conn.rollback()
        else:
            lite.execute("COMMIT")
            conn.commit()
        expected = lite.execute("SELECT id, e, v FROM u ORDER BY id").fetchall()
        assert cur.execute("SELECT id, e, v FROM u ORDER BY id").fetchall() == expected
        conn.commit()
    conn.close()
