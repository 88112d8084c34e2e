"""The PEP 249 driver, end to end on the embedded backend."""

from __future__ import annotations

import datetime as dt
import decimal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import offsetdb


@pytest.fixture
def path(db_target: str) -> str:
    return db_target


@pytest.fixture
def conn(path: str):
    connection = offsetdb.connect(path)
    yield connection
    connection.close()


def test_module_globals_follow_pep_249() -> None:
    assert offsetdb.apilevel == "2.0"
    assert offsetdb.paramstyle == "qmark"
    assert offsetdb.threadsafety in (1, 2)
    assert issubclass(offsetdb.IntegrityError, offsetdb.DatabaseError)
    assert issubclass(offsetdb.DatabaseError, offsetdb.Error)


def test_rows_round_trip_every_column_type(conn) -> None:
    cur = conn.cursor()
    cur.execute(
        "CREATE TABLE t (i INTEGER PRIMARY KEY, b BIGINT, d DOUBLE PRECISION, r REAL, n NUMERIC(10,2), "
        "s TEXT, v VARCHAR(5), f BOOLEAN, day DATE, at TIMESTAMP, raw BYTEA)"
    )
    row = (
        1, 2**40, 1.5, 0.25, decimal.Decimal("12.34"), "héllo", "abc", True,
        dt.date(2024, 2, 29), dt.datetime(2024, 2, 29, 12, 30, 1, 5), b"\x00\xff",
    )
    cur.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    conn.commit()
    cur.execute("SELECT * FROM t")
    assert cur.fetchall() == [row]
    assert [d[0] for d in cur.description] == ["i", "b", "d", "r", "n", "s", "v", "f", "day", "at", "raw"]


def test_qmark_dollar_and_named_parameters_bind_the_same(conn) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    cur.executemany("INSERT INTO t VALUES (?, ?)", [(1, "a"), (2, "b"), (3, "c")])
    assert cur.rowcount == 3
    assert cur.execute("SELECT name FROM t WHERE id = ?", (2,)).fetchall() == [("b",)]
    assert cur.execute("SELECT name FROM t WHERE id = $1", (3,)).fetchall() == [("c",)]
    assert cur.execute("SELECT name FROM t WHERE id = :id", {"id": 1}).fetchall() == [("a",)]
    # Packed qmarks, as many programs write them.
    cur.execute("INSERT INTO t VALUES (?,?)", (4, "d"))
    assert cur.execute("SELECT ?+?, name FROM t WHERE id=?", (1, 2, 4)).fetchall() == [(3, "d")]


def test_text_the_tokenizer_rejects_is_a_syntax_error_not_a_foreign_exception(conn) -> None:
    cur = conn.cursor()
    # sqlglot's PostgreSQL tokenizer reads "$1,$2" as an unterminated dollar quote.
    with pytest.raises(offsetdb.ProgrammingError) as info:
        cur.execute("SELECT $1,$2", (1, 2))
    assert info.value.sqlstate == "42601"


def test_fetchone_fetchmany_and_iteration(conn) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    cur.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10)])
    cur.execute("SELECT id FROM t ORDER BY id")
    assert cur.rowcount == 10
    assert cur.fetchone() == (0,)
    assert cur.fetchmany(3) == [(1,), (2,), (3,)]
    cur.arraysize = 2
    assert cur.fetchmany() == [(4,), (5,)]
    assert list(cur) == [(6,), (7,), (8,), (9,)]
    assert cur.fetchone() is None


def test_errors_carry_sqlstate_and_name_the_problem(conn) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT NOT NULL)")
    cur.execute("INSERT INTO accounts VALUES (1, 'ada')")
    conn.commit()
    with pytest.raises(offsetdb.IntegrityError) as caught:
        cur.execute("INSERT INTO accounts VALUES (1, 'eve')")
    assert caught.value.sqlstate == "23505"
    assert 'accounts' in str(caught.value) and "(id)=(1)" in str(caught.value)
    conn.rollback()
    with pytest.raises(offsetdb.IntegrityError) as caught:
        cur.execute("INSERT INTO accounts VALUES (2, NULL)")
    assert caught.value.sqlstate == "23502" and "owner" in str(caught.value)
    conn.rollback()
    with pytest.raises(offsetdb.ProgrammingError) as caught:
        cur.execute("SELECT * FROM missing")
    assert caught.value.sqlstate == "42P01" and "missing" in str(caught.value)
    conn.rollback()
    with pytest.raises(offsetdb.ProgrammingError) as caught:
        cur.execute("SELEC 1")
    assert caught.value.sqlstate == "42601"


def test_statement_after_an_error_fails_until_rollback(conn) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    conn.commit()
    cur.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(offsetdb.Error):
        cur.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(offsetdb.OperationalError) as caught:
        cur.execute("SELECT 1")
    assert caught.value.sqlstate == "25P02"
    conn.rollback()
    assert cur.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_rollback_discards_and_commit_publishes_with_an_offset(path: str, conn) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    conn.commit()
    first = conn.last_commit_offset
    cur.execute("INSERT INTO t VALUES (1)")
    conn.rollback()
    other = offsetdb.connect(path)
    assert other.cursor().execute("SELECT count(*) FROM t").fetchone() == (0,)
    cur.execute("INSERT INTO t VALUES (2)")
    conn.commit()
    assert conn.last_commit_offset > first
    other_cur = other.cursor()
    other.rollback()  # a new transaction, so a new snapshot
    assert other_cur.execute("SELECT id FROM t").fetchall() == [(2,)]
    assert other_cur.snapshot_offset >= conn.last_commit_offset
    other.close()


def test_context_manager_commits_on_success_and_rolls_back_on_error(path: str) -> None:
    with offsetdb.connect(path) as conn:
        conn.cursor().execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    with pytest.raises(RuntimeError), offsetdb.connect(path) as conn:
        conn.cursor().execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("boom")
    with offsetdb.connect(path) as conn:
        assert conn.cursor().execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_data_survives_reopening(path: str) -> None:
    conn = offsetdb.connect(path, autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    cur.executemany("INSERT INTO t VALUES (?, ?)", [(i, str(i)) for i in range(100)])
    cur.execute("DELETE FROM t WHERE id < 10")
    digest = conn.state_digest()
    conn.close()
    conn = offsetdb.connect(path)
    assert conn.cursor().execute("SELECT count(*), min(id) FROM t").fetchone() == (90, 10)
    assert conn.state_digest() == digest
    conn.close()


def test_second_process_gets_a_clear_error_naming_the_holder(path: str, conn) -> None:
    conn.cursor().execute("SELECT 1")
    code = (
        "import offsetdb, sys\n"
        "try:\n"
        f"    offsetdb.connect({path!r})\n"
        "except offsetdb.Error as e:\n"
        "    print(e.sqlstate, e); sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith("55006")
    assert f'"pid": {__import__("os").getpid()}' in result.stdout


def test_conflicting_explicit_transaction_gets_40001(path: str) -> None:
    setup = offsetdb.connect(path, autocommit=True)
    setup.cursor().execute("CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER)")
    setup.cursor().execute("INSERT INTO c VALUES (1, 0)")
    a, b = offsetdb.connect(path), offsetdb.connect(path)
    a.cursor().execute("UPDATE c SET n = n + 1 WHERE id = 1")
    b.cursor().execute("UPDATE c SET n = n + 10 WHERE id = 1")
    a.commit()
    with pytest.raises(offsetdb.SerializationFailure) as caught:
        b.commit()
    assert caught.value.sqlstate == "40001" and '"c"' in str(caught.value)
    assert setup.cursor().execute("SELECT n FROM c").fetchone() == (1,)
    for c in (a, b, setup):
        c.close()


def test_autocommit_increments_from_many_threads_lose_nothing(path: str) -> None:
    setup = offsetdb.connect(path, autocommit=True)
    setup.cursor().execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)")
    setup.cursor().execute("INSERT INTO counter VALUES (1, 0)")
    threads, per_thread = 6, 40

    def work() -> None:
        conn = offsetdb.connect(path, autocommit=True)
        for _ in range(per_thread):
            conn.cursor().execute("UPDATE counter SET n = n + 1 WHERE id = 1")
        conn.close()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert setup.cursor().execute("SELECT n FROM counter").fetchone() == (threads * per_thread,)
    setup.close()


def test_tables_created_in_one_transaction_keep_their_rows_apart(path: str) -> None:
    conn = offsetdb.connect(path)
    cur = conn.cursor()
    cur.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, x TEXT)")
    cur.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, y INTEGER, z INTEGER)")
    cur.execute("INSERT INTO a VALUES (1, 'in a')")
    cur.execute("INSERT INTO b VALUES (1, 10, 20)")
    conn.commit()
    cur.execute("UPDATE a SET x = 'still a' WHERE id = 1")
    conn.commit()
    assert cur.execute("SELECT * FROM a").fetchall() == [(1, "still a")]
    assert cur.execute("SELECT * FROM b").fetchall() == [(1, 10, 20)]
    digest = conn.state_digest()
    conn.close()
    conn = offsetdb.connect(path)
    assert conn.state_digest() == digest
    assert conn.cursor().execute("SELECT count(*) FROM b").fetchone() == (1,)
    conn.close()


def test_now_is_the_transaction_start_time_in_every_statement(path: str) -> None:
    conn = offsetdb.connect(path)
    cur = conn.cursor()
    (first,) = cur.execute("SELECT now()").fetchone()
    import time

    time.sleep(0.01)
    (second,) = cur.execute("SELECT now()").fetchone()
    assert first == second
    conn.commit()
    (third,) = cur.execute("SELECT now()").fetchone()
    assert third > first
    conn.close()


def test_second_connection_with_other_settings_is_refused_not_ignored(path: str) -> None:
    first = offsetdb.connect(path, synchronous="normal")
    same = offsetdb.connect(path)  # no settings: joins whatever is open
    with pytest.raises(offsetdb.InterfaceError) as caught:
        offsetdb.connect(path, synchronous="full")
    assert "other settings" in str(caught.value)
    same.close()
    first.close()


def test_nan_is_refused_rather_than_compared_wrongly(path: str) -> None:
    conn = offsetdb.connect(path, autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE TABLE f (x DOUBLE PRECISION)")
    with pytest.raises(offsetdb.NotSupportedError) as caught:
        cur.execute("INSERT INTO f VALUES (?)", (float("nan"),))
    assert caught.value.sqlstate == "0A000" and "NaN" in str(caught.value)
    cur.execute("INSERT INTO f VALUES (?)", (float("inf"),))
    assert cur.execute("SELECT count(*) FROM f WHERE x > 0").fetchone() == (1,)
    conn.close()


def test_one_statement_text_in_two_databases_uses_each_databases_table(tmp_path: Path) -> None:
    # Statements are cached by text for the whole process; the plan must follow the
    # table of the database it runs in, though both tables have the same id and version.
    first = offsetdb.connect(str(tmp_path / "first"), autocommit=True)
    second = offsetdb.connect(str(tmp_path / "second"), autocommit=True)
    first.cursor().execute("CREATE TABLE t (a INT PRIMARY KEY, b TEXT)")
    second.cursor().execute("CREATE TABLE t (x TEXT PRIMARY KEY, y INT, z INT)")
    first.cursor().execute("INSERT INTO t VALUES (1, 'one')")
    second.cursor().execute("INSERT INTO t VALUES ('k', 2, 3)")
    assert first.cursor().execute("SELECT * FROM t").fetchall() == [(1, "one")]
    assert second.cursor().execute("SELECT * FROM t").fetchall() == [("k", 2, 3)]
    first.close()
    second.close()
