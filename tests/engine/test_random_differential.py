"""Randomly generated queries, run on offsetdb (through the driver) and on PostgreSQL.

Seeded, so a failure names a reproducible query. This generator is the small, older one
(written when SQLite was the peer): integer and text columns with NULLs, comparisons,
AND/OR/NOT, IS [NOT] NULL, IN lists, BETWEEN, CASE, COALESCE, joins, and
COUNT/SUM/MIN/MAX with GROUP BY and HAVING, inside and across transactions. Its job is
three-valued-logic and join/aggregate mistakes, and reads of a transaction's own writes;
the wide generator of types, functions and DML is test_oracle_random.py.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from oracle_compare import Verdict, ask_offsetdb, ask_postgres, compare, report

import offsetdb

SEED_COUNT = 300


def build_tables(rng: random.Random) -> list[str]:
    statements = [
        "CREATE TABLE r (id INTEGER PRIMARY KEY, a INTEGER, b INTEGER, s TEXT)",
        "CREATE TABLE q (id INTEGER PRIMARY KEY, a INTEGER, c INTEGER)",
    ]

    def value(choices: list[Any]) -> str:
        v = rng.choice(choices)
        return "NULL" if v is None else (f"'{v}'" if isinstance(v, str) else str(v))

    ints = [None, -1, 0, 1, 2, 3, 5]
    texts = [None, "a", "b", "ab", ""]
    rows_r = ", ".join(
        f"({i}, {value(ints)}, {value(ints)}, {value(texts)})" for i in range(1, 16)
    )
    rows_q = ", ".join(f"({i}, {value(ints)}, {value(ints)})" for i in range(1, 9))
    statements += [f"INSERT INTO r VALUES {rows_r}", f"INSERT INTO q VALUES {rows_q}"]
    return statements


class Generator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def int_expr(self, cols: list[str], depth: int = 0) -> str:
        rng = self.rng
        kind = rng.random()
        if depth > 1 or kind < 0.45:
            return rng.choice(cols)
        if kind < 0.6:
            return str(rng.choice([-1, 0, 1, 2, 3]))
        if kind < 0.75:
            return f"({self.int_expr(cols, depth + 1)} {rng.choice(['+', '-', '*'])} {self.int_expr(cols, depth + 1)})"
        if kind < 0.88:
            return f"COALESCE({self.int_expr(cols, depth + 1)}, {self.int_expr(cols, depth + 1)})"
        return (
            f"CASE WHEN {self.predicate(cols, depth + 1)} THEN {self.int_expr(cols, depth + 1)} "
            f"ELSE {self.int_expr(cols, depth + 1)} END"
        )

    def predicate(self, cols: list[str], depth: int = 0) -> str:
        rng = self.rng
        kind = rng.random()
        has_text = "s" in cols
        cols = [c for c in cols if c != "s"]
        if depth < 2 and kind < 0.25:
            op = rng.choice(["AND", "OR"])
            both = cols + (["s"] if has_text else [])
            return f"({self.predicate(both, depth + 1)} {op} {self.predicate(both, depth + 1)})"
        if depth < 2 and kind < 0.33:
            return f"NOT ({self.predicate(cols + (['s'] if has_text else []), depth + 1)})"
        if kind < 0.6:
            op = rng.choice(["=", "<>", "<", "<=", ">", ">="])
            return f"{self.int_expr(cols, depth + 1)} {op} {self.int_expr(cols, depth + 1)}"
        if kind < 0.7:
            return f"{rng.choice(cols)} IS {rng.choice(['', 'NOT '])}NULL"
        if kind < 0.82:
            items = ", ".join(rng.choice(["NULL", "0", "1", "2", "3"]) for _ in range(rng.randint(1, 3)))
            return f"{self.int_expr(cols, depth + 1)} {rng.choice(['', 'NOT '])}IN ({items})"
        if kind < 0.9:
            lo, hi = sorted(rng.sample([-1, 0, 1, 2, 3], 2))
            return f"{rng.choice(cols)} {rng.choice(['', 'NOT '])}BETWEEN {lo} AND {hi}"
        if has_text:
            return f"s {rng.choice(['=', '<>', '<'])} '{rng.choice(['a', 'b', 'ab', ''])}'"
        return "TRUE"

    def query(self) -> str:
        rng = self.rng
        shape = rng.random()
        if shape < 0.4:
            cols = ["a", "b", "s", "id"]
            return (
                f"SELECT id, {self.int_expr(['a', 'b'])} FROM r WHERE {self.predicate(cols)}"
            )
        if shape < 0.7:
            group = rng.choice(["a", "b", "s"])
            agg = rng.choice(["COUNT(*)", "COUNT(b)", "SUM(a)", "MIN(b)", "MAX(a)", "COUNT(DISTINCT a)"])
            having = f" HAVING {agg} {rng.choice(['>', '<=', '='])} {rng.randint(0, 3)}" if rng.random() < 0.4 else ""
            return f"SELECT {group}, {agg} FROM r WHERE {self.predicate(['a', 'b', 's'])} GROUP BY {group}{having}"
        if shape < 0.9:
            join = rng.choice(["JOIN", "LEFT JOIN"])
            on = rng.choice(["r.a = q.a", "r.b = q.c", "r.a = q.a AND r.b < q.c", "r.id = q.id"])
            where = self.predicate(["r.a", "r.b", "q.c", "q.a"])
            return f"SELECT r.id, q.id, q.c FROM r {join} q ON {on} WHERE {where}"
        sub = self.predicate(["q.a", "q.c"])
        return (
            f"SELECT id FROM r WHERE {rng.choice(['', 'NOT '])}EXISTS "
            f"(SELECT 1 FROM q WHERE q.a = r.a AND {sub})"
        )


def agree(cur: Any, pg: Any, sql: str, context: object = "") -> None:
    """Run ``sql`` on offsetdb's cursor and on PostgreSQL; the answers must agree."""
    ours, theirs = ask_offsetdb(lambda: cur.execute(sql)), ask_postgres(pg, sql)
    result = compare(ours, theirs)
    assert result.verdict is Verdict.AGREE, report(sql, ours, theirs, f"{result.difference} {context}")


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, postgres: Any) -> Iterator[Any]:
    rng = random.Random(20261125)
    statements = build_tables(rng)
    path = Path(tmp_path_factory.mktemp("random")) / "db"
    conn = offsetdb.connect(str(path), autocommit=True)
    with postgres.connect("random_differential") as pg:
        for statement in statements:
            pg.execute(statement)
            conn.cursor().execute(statement)
        yield conn, pg
    conn.close()


@pytest.mark.parametrize("seed", range(SEED_COUNT))
def test_random_query_matches_postgres(seed: int, engines: Any) -> None:
    conn, pg = engines
    agree(conn.cursor(), pg, Generator(random.Random(seed)).query())


def random_writes(rng: random.Random, gen: Generator, count: int, next_id: int = 100) -> list[str]:
    writes = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.4:
            writes.append(
                f"INSERT INTO r VALUES ({next_id}, {rng.choice(['NULL', '0', '1', '4'])}, "
                f"{rng.choice(['NULL', '2', '7'])}, {rng.choice(['NULL', chr(39) + 'c' + chr(39)])})"
            )
            next_id += 1
        elif kind < 0.75:
            writes.append(f"UPDATE r SET a = {gen.int_expr(['a', 'b'])} WHERE {gen.predicate(['a', 'b', 's'])}")
        else:
            writes.append(f"DELETE FROM r WHERE {gen.predicate(['a', 'b', 's'])}")
    return writes


@pytest.mark.parametrize("seed", range(60))
def test_queries_inside_a_transaction_see_its_own_writes_like_postgres(seed: int, engines: Any) -> None:
    conn, pg = engines
    rng = random.Random(10_000 + seed)
    gen = Generator(rng)
    writes = random_writes(rng, gen, rng.randint(1, 6))
    queries = [gen.query() for _ in range(5)]
    cur = conn.cursor()
    cur.execute("BEGIN")
    pg.execute("BEGIN")
    try:
        for write in writes:
            agree(cur, pg, write)
        for query in queries:
            agree(cur, pg, query, f"after {writes}")
    finally:
        cur.execute("ROLLBACK")
        pg.execute("ROLLBACK")


def test_committed_random_writes_match_postgres_and_replay_identically(tmp_path: Path, pg: Any) -> None:
    from offsetdb.query.database import replay

    rng = random.Random(7)
    statements = build_tables(rng)
    path = str(tmp_path / "db")
    conn = offsetdb.connect(path)
    cur = conn.cursor()
    for statement in statements:
        pg.execute(statement)
        cur.execute(statement)
    conn.commit()
    gen = Generator(rng)
    for round_number in range(40):
        writes = random_writes(rng, gen, rng.randint(1, 5), next_id=1000 + 10 * round_number)
        pg.execute("BEGIN")
        for write in writes:
            agree(cur, pg, write)
        if rng.random() < 0.8:
            pg.execute("COMMIT")
            conn.commit()
        else:
            pg.execute("ROLLBACK")
            conn.rollback()
    for table in ("r", "q"):
        agree(cur, pg, f"SELECT * FROM {table}")
    digest = conn.state_digest()
    conn.close()
    assert replay(path, str(tmp_path / "replayed")) == digest


@pytest.mark.parametrize("seed", range(40))
def test_table_without_primary_key_under_random_writes_matches_postgres(
    seed: int, tmp_path: Path, pg: Any
) -> None:
    """Rows keyed by hidden row ids: inserted, updated and deleted, inside and across
    transactions, duplicates included."""
    rng = random.Random(50_000 + seed)
    gen = Generator(rng)
    conn = offsetdb.connect(str(tmp_path / "db"))
    cur = conn.cursor()
    for statement in ("CREATE TABLE h (a INTEGER, b INTEGER, s TEXT)",):
        pg.execute(statement)
        cur.execute(statement)
    conn.commit()
    for _ in range(8):
        pg.execute("BEGIN")
        for _ in range(rng.randint(1, 4)):
            kind = rng.random()
            if kind < 0.5:
                values = ", ".join(
                    f"({rng.choice(['NULL', '0', '1', '2'])}, {rng.choice(['NULL', '1', '5'])}, "
                    f"{rng.choice(['NULL', chr(39) + 'a' + chr(39)])})"
                    for _ in range(rng.randint(1, 3))
                )
                write = f"INSERT INTO h VALUES {values}"
            elif kind < 0.8:
                write = f"UPDATE h SET b = {gen.int_expr(['a', 'b'])} WHERE {gen.predicate(['a', 'b', 's'])}"
            else:
                write = f"DELETE FROM h WHERE {gen.predicate(['a', 'b', 's'])}"
            agree(cur, pg, write)
            agree(cur, pg, f"SELECT a, b, s FROM h WHERE {gen.predicate(['a', 'b', 's'])}", f"after {write}")
        if rng.random() < 0.75:
            pg.execute("COMMIT")
            conn.commit()
        else:
            pg.execute("ROLLBACK")
            conn.rollback()
        agree(cur, pg, "SELECT a, b, s FROM h")
    conn.close()


def advanced_query(rng: random.Random) -> str:
    """Subqueries (IN, NOT IN, correlated scalar), three-way joins, set operations, CTEs."""
    g = Generator(rng)
    shape = rng.random()
    if shape < 0.2:
        negated = rng.choice(["", "NOT "])
        return (
            f"SELECT id FROM r WHERE a {negated}IN "
            f"(SELECT {rng.choice(['a', 'c'])} FROM q WHERE {g.predicate(['q.a', 'q.c'])})"
        )
    if shape < 0.35:
        return f"SELECT id, (SELECT max(c) FROM q WHERE q.a = r.a) FROM r WHERE {g.predicate(['a', 'b', 's'])}"
    if shape < 0.5:
        return (
            "SELECT r.id, q.id, q2.id FROM r JOIN q ON r.a = q.a LEFT JOIN q q2 ON q2.c = r.b "
            f"WHERE {g.predicate(['r.a', 'r.b', 'q.c'])}"
        )
    if shape < 0.6:
        return (
            f"SELECT a, b FROM r WHERE {g.predicate(['a', 'b', 's'])} "
            f"UNION SELECT a, c FROM q WHERE {g.predicate(['a', 'c'])}"
        )
    if shape < 0.7:
        return f"SELECT a FROM r WHERE {g.predicate(['a', 'b', 's'])} EXCEPT SELECT a FROM q"
    if shape < 0.8:
        return (
            "WITH x AS (SELECT a, count(*) AS n FROM r GROUP BY a) "
            f"SELECT x.a, x.n, q.c FROM x LEFT JOIN q ON q.a = x.a WHERE {g.predicate(['x.n', 'q.c'])}"
        )
    if shape < 0.9:
        return f"SELECT DISTINCT {rng.choice(['a', 'b', 's'])} FROM r WHERE {g.predicate(['a', 'b', 's'])}"
    return (
        "SELECT a, count(DISTINCT b), sum(b) FROM r GROUP BY a "
        f"HAVING count(*) > {rng.randint(0, 2)} OR sum(b) IS NULL"
    )


@pytest.mark.parametrize("seed", range(200))
def test_random_advanced_query_matches_postgres(seed: int, engines: Any) -> None:
    conn, pg = engines
    agree(conn.cursor(), pg, advanced_query(random.Random(seed)))
