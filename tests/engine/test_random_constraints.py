"""Random writes against PRIMARY KEY and UNIQUE constraints, compared with PostgreSQL.

Each statement runs on both engines; they must agree on whether it fails (with the same
SQLSTATE, 23505 for a unique violation), on its command tag, and on the table afterwards. Covers the transaction's
own uniqueness checks, ON CONFLICT DO NOTHING / DO UPDATE, and moving a unique value
from one row to another.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from oracle_compare import Verdict, ask_offsetdb, ask_postgres, compare, report

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


def fails_alike(pg: Any, cur: Any, sql: str) -> bool:
    """Run ``sql`` on both engines; they must agree. True when both refused it."""
    ours, theirs = ask_offsetdb(lambda: cur.execute(sql)), ask_postgres(pg, sql)
    result = compare(ours, theirs, sqlstate_digits=5)
    assert result.verdict is Verdict.AGREE, report(sql, ours, theirs, result.difference)
    return ours.failed


def same_table(pg: Any, cur: Any, context: str) -> None:
    sql = "SELECT id, e, v FROM u ORDER BY id"
    ours, theirs = ask_offsetdb(lambda: cur.execute(sql)), ask_postgres(pg, sql)
    result = compare(ours, theirs, ordered=True)
    assert result.verdict is Verdict.AGREE, report(sql, ours, theirs, f"after {context}: {result.difference}")


@pytest.mark.parametrize("seed", range(30))
def test_constraint_outcomes_match_postgres(seed: int, tmp_path: Path, pg: Any) -> None:
    rng = random.Random(seed)
    pg.execute(SCHEMA)
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    cur = conn.cursor()
    cur.execute(SCHEMA)
    for _ in range(40):
        sql = statement(rng)
        fails_alike(pg, cur, sql)
        same_table(pg, cur, sql)
    conn.close()


@pytest.mark.parametrize("seed", range(30))
def test_constraint_outcomes_inside_transactions_match_postgres(seed: int, tmp_path: Path, pg: Any) -> None:
    """Several writes per transaction: uniqueness against the transaction's own writes,
    values moved between rows within it, and certification's re-check at commit. An
    error rolls the whole transaction back on both engines (PostgreSQL's rule)."""
    rng = random.Random(1000 + seed)
    pg.execute(SCHEMA)
    conn = offsetdb.connect(str(tmp_path / "db"))
    cur = conn.cursor()
    cur.execute(SCHEMA)
    conn.commit()
    for _ in range(12):
        pg.execute("BEGIN")
        failed = False
        for _ in range(rng.randint(1, 5)):
            if fails_alike(pg, cur, statement(rng)):
                failed = True
                break
        if failed or rng.random() < 0.2:
            pg.execute("ROLLBACK")
            conn.rollback()
        else:
            pg.execute("COMMIT")
            conn.commit()
        same_table(pg, cur, "the transaction")
        conn.commit()
    conn.close()
