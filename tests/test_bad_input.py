"""Bad input never wedges the database, crashes it, or commits half of anything.

Each test sends what a careless or hostile client might, through the public driver,
and checks the answer is a SQLSTATE error naming the problem and that the database
goes on working (and, where it matters, that nothing reached the log).
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import offsetdb
from offsetdb import errors
from offsetdb.query.database import replay


class Color(enum.StrEnum):
    RED = "red"


class Size(enum.IntEnum):
    LARGE = 3


class Stamp(dt.datetime):
    """A datetime subclass, as pandas' Timestamp is."""


class Money(decimal.Decimal):
    pass


def open_db(tmp_path: Path, name: str = "db") -> Any:
    return offsetdb.connect(str(tmp_path / name), autocommit=True)


def test_parameters_of_builtin_subclasses_are_stored_as_plain_values_and_replay(tmp_path: Path) -> None:
    conn = open_db(tmp_path)
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id INT PRIMARY KEY, c TEXT, n NUMERIC, ts TIMESTAMP, f DOUBLE PRECISION)")
    cur.execute(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
        (Size.LARGE, Color.RED, Money("1.50"), Stamp(2024, 1, 2, 3, 4, 5), True and 2.5),
    )
    cur.execute("UPDATE t SET c = ? WHERE id = ?", (Color.RED, Size.LARGE))
    row = cur.execute("SELECT * FROM t").fetchone()
    assert row == (3, "red", decimal.Decimal("1.50"), dt.datetime(2024, 1, 2, 3, 4, 5), 2.5)
    assert [type(v) for v in row] == [int, str, decimal.Decimal, dt.datetime, float]
    # the materializer kept going: later commits apply, and a replay agrees
    cur.execute("INSERT INTO t VALUES (4, 'x', 1, NULL, NULL)")
    digest = conn.state_digest()
    conn.close()
    assert replay(str(tmp_path / "db"), str(tmp_path / "again")) == digest


@pytest.mark.parametrize(
    ("params", "sqlstate"),
    [
        ({1, 2}, "08P01"),
        (5, "08P01"),
        (("a\ud800",), "22021"),
        (("a\x00b",), "22021"),
        ((object(),), "08P01"),
        ((decimal.Decimal("NaN"),), "0A000"),
    ],
)
def test_unusable_parameters_are_refused_and_nothing_is_committed(
    tmp_path: Path, params: Any, sqlstate: str
) -> None:
    conn = open_db(tmp_path)
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
    end = conn.last_commit_offset
    with pytest.raises(errors.Error) as e:
        cur.execute("INSERT INTO t VALUES (1, ?)", params)
    assert e.value.sqlstate == sqlstate
    assert conn.last_commit_offset == end
    cur.execute("INSERT INTO t VALUES (1, 'fine')")
    assert cur.execute("SELECT v FROM t").fetchall() == [("fine",)]
    conn.close()


@pytest.mark.parametrize(
    ("sql", "sqlstate"),
    [
        ("SELECT 1 ORDER BY 1.5", "42601"),
        ("SELECT " + "9" * 5000, None),  # a number over Python's 4,300-digit limit is fine
        ("SELECT " + "9" * 140000, "22003"),  # beyond numeric's 131072 digits
        ("SELECT 1 LIMIT " + "9" * 5000, "22003"),
        ("SELECT count()", "42809"),
        ("DELETE h", "42601"),
        ("SELECT repeat('ab', 1000000000)", "54000"),
        ("SELECT lpad('x', 300000000)", "54000"),
        ("SELECT make_date(2020, 13, 1)", "22008"),
        ("SELECT make_date(100000, 1, 1)", "0A000"),
        ("SELECT 'a\ud800'", "22021"),
        ("SELECT 'a\x00'", "22021"),
        ("SELECT '2024-01-01'::date + 100000000", "0A000"),  # year 275,000: PostgreSQL's, not ours
        ("SELECT " + "(" * 1001 + "1" + ")" * 1001, "54001"),
    ],
)
def test_bad_statements_get_sqlstate_errors_not_python_exceptions(
    tmp_path: Path, sql: str, sqlstate: str | None
) -> None:
    conn = open_db(tmp_path)
    cur = conn.cursor()
    if sqlstate is None:
        assert len(cur.execute(sql).fetchall()) == 1
    else:
        with pytest.raises(errors.Error) as e:
            cur.execute(sql)
        assert e.value.sqlstate == sqlstate
    assert cur.execute("SELECT 1").fetchall() == [(1,)]
    conn.close()


def test_realistic_nesting_and_generated_lists_are_accepted(tmp_path: Path) -> None:
    conn = open_db(tmp_path)
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (a INT PRIMARY KEY)")
    cur.execute("INSERT INTO t VALUES (1), (2999)")
    ors = " OR ".join(f"a = {i}" for i in range(3000))
    assert cur.execute(f"SELECT a FROM t WHERE {ors} ORDER BY a").fetchall() == [(1,), (2999,)]
    ins = ",".join(str(i) for i in range(20000))
    assert cur.execute(f"SELECT count(*) FROM t WHERE a IN ({ins})").fetchall() == [(2,)]
    assert cur.execute("SELECT " + "(" * 500 + "1" + ")" * 500).fetchall() == [(1,)]
    assert cur.execute("SELECT " + "(SELECT " * 100 + "1" + ")" * 100).fetchall() == [(1,)]
    total = " + ".join("a" for _ in range(3000))
    assert cur.execute(f"SELECT {total} FROM t WHERE a = 1").fetchall() == [(3000,)]
    conn.close()


def test_several_statements_in_one_autocommit_execute_are_all_or_nothing(tmp_path: Path) -> None:
    conn = open_db(tmp_path)
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    with pytest.raises(errors.DivisionByZero):
        cur.execute("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2); SELECT 1 / 0")
    assert cur.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
    with pytest.raises(errors.UniqueViolation):
        cur.execute("INSERT INTO t VALUES (3); INSERT INTO t VALUES (3)")
    assert cur.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
    # explicit boundaries in the string draw the transactions, as in PostgreSQL
    with pytest.raises(errors.DivisionByZero):
        cur.execute("INSERT INTO t VALUES (4); COMMIT; INSERT INTO t VALUES (5); SELECT 1 / 0")
    assert cur.execute("SELECT id FROM t").fetchall() == [(4,)]
    cur.execute("INSERT INTO t VALUES (6); INSERT INTO t VALUES (7)")
    assert cur.execute("SELECT count(*) FROM t").fetchall() == [(3,)]
    conn.close()


def test_close_while_another_thread_executes_waits_and_releases_the_directory(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    conn = offsetdb.connect(path, autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    cur.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(3000)])
    outcome: dict[str, Any] = {}

    def slow_query() -> None:
        try:
            rows = conn.cursor().execute("SELECT count(*) FROM t a, t b WHERE a.id < 300").fetchall()
            outcome["rows"] = rows
        except errors.Error as e:
            outcome["error"] = e

    worker = threading.Thread(target=slow_query)
    worker.start()
    time.sleep(0.05)
    conn.close()
    worker.join(30)
    assert outcome.get("rows") == [(900000,)] or isinstance(outcome.get("error"), errors.InterfaceError)
    with pytest.raises(errors.InterfaceError, match="closed"):
        conn.cursor()
    with pytest.raises(errors.InterfaceError, match="closed"):
        cur.execute("SELECT 1")
    # the directory lock was released: another connection opens it
    again = offsetdb.connect(path)
    assert again.cursor().execute("SELECT count(*) FROM t").fetchall() == [(3000,)]
    again.close()
