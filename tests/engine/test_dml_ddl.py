"""INSERT / UPDATE / DELETE / ON CONFLICT / RETURNING, CREATE and DROP TABLE."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from offsetdb import errors
from offsetdb.query.engine import prepare

from .conftest import EngineRunner


def test_create_table_builds_the_table_definition(engine: EngineRunner) -> None:
    engine.run(
        "CREATE TABLE Items (ID int, Code varchar(5) UNIQUE, qty bigint NOT NULL DEFAULT 0, "
        "price numeric(8,2), at timestamp DEFAULT now(), f real, g float, PRIMARY KEY (id), UNIQUE (qty, price))"
    )
    t = engine.ctx.table("items")
    assert t.column_names == ("id", "code", "qty", "price", "at", "f", "g")
    assert t.primary_key == (0,)
    assert t.unique == ((1,), (2, 3))
    assert [c.not_null for c in t.columns] == [True, False, True, False, False, False, False]
    assert t.columns[2].default == "0" and t.columns[4].default is not None
    assert str(t.columns[3].type) == "NUMERIC(8,2)" and str(t.columns[1].type) == "VARCHAR(5)"
    assert [str(c.type) for c in t.columns[5:]] == ["REAL", "DOUBLE PRECISION"]


def test_create_table_if_not_exists_and_drop_if_exists(backend: Any) -> None:
    backend.run("CREATE TABLE a (x INT)")
    backend.run("CREATE TABLE IF NOT EXISTS a (y INT)")
    backend.run("DROP TABLE IF EXISTS a, nope")
    with pytest.raises(errors.UndefinedTable):
        backend.rows("SELECT * FROM a")


def test_insert_fills_defaults_and_nulls(backend: Any) -> None:
    backend.run("CREATE TABLE d (id INT PRIMARY KEY, n INT DEFAULT 7, s TEXT, t TIMESTAMP DEFAULT now())")
    backend.run("INSERT INTO d (id) VALUES (1); INSERT INTO d VALUES (2, DEFAULT, 'x', NULL)")
    rows = backend.rows("SELECT id, n, s, t FROM d ORDER BY id")
    assert rows[0][:3] == (1, 7, None) and isinstance(rows[0][3], dt.datetime)
    assert rows[1] == (2, 7, "x", None)


def test_insert_select_copies_rows(backend: Any) -> None:
    backend.run("CREATE TABLE s (a INT, b TEXT); CREATE TABLE c (a INT, b TEXT)")
    backend.run("INSERT INTO s VALUES (1, 'x'), (2, 'y')")
    backend.run("INSERT INTO c (b, a) SELECT b, a * 10 FROM s")
    assert sorted(backend.rows("SELECT a, b FROM c")) == [(10, "x"), (20, "y")]


def test_insert_returning_gives_stored_values(engine: EngineRunner) -> None:
    engine.run("CREATE TABLE r (id INT PRIMARY KEY, p NUMERIC(6,2), d DATE)")
    result = engine.run("INSERT INTO r VALUES (1, 2.5, '2024-01-02') RETURNING *, id + 1 AS nxt")
    assert result.rows == [(1, Decimal("2.50"), dt.date(2024, 1, 2), 2)]
    assert result.status == "INSERT 0 1" and result.rowcount == 1
    assert [c.name for c in result.columns] == ["id", "p", "d", "nxt"]


def test_on_conflict_do_nothing_skips_duplicates(backend: Any) -> None:
    backend.run("CREATE TABLE u (id INT PRIMARY KEY, email TEXT UNIQUE)")
    backend.run("INSERT INTO u VALUES (1, 'a@x')")
    backend.run("INSERT INTO u VALUES (2, 'a@x'), (3, 'c@x') ON CONFLICT DO NOTHING")
    backend.run("INSERT INTO u VALUES (1, 'z@x') ON CONFLICT (id) DO NOTHING")
    assert backend.rows("SELECT id, email FROM u ORDER BY id") == [(1, "a@x"), (3, "c@x")]


def test_on_conflict_do_update_uses_excluded(backend: Any) -> None:
    backend.run("CREATE TABLE kv (k TEXT PRIMARY KEY, v INT, n INT DEFAULT 1)")
    backend.run("INSERT INTO kv VALUES ('a', 1, 1)")
    backend.run(
        "INSERT INTO kv (k, v) VALUES ('a', 5), ('b', 2) "
        "ON CONFLICT (k) DO UPDATE SET v = kv.v + EXCLUDED.v, n = kv.n + 1"
    )
    backend.run("INSERT INTO kv VALUES ('b', 100, 0) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v WHERE kv.v > 50")
    assert backend.rows("SELECT k, v, n FROM kv ORDER BY k") == [("a", 6, 2), ("b", 2, 1)]


def test_on_conflict_updating_a_row_twice_raises_21000(engine: EngineRunner) -> None:
    engine.run("CREATE TABLE kv (k INT PRIMARY KEY, v INT)")
    with pytest.raises(errors.CardinalityViolation):
        engine.run("INSERT INTO kv VALUES (1, 1), (1, 2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v")


def test_on_conflict_without_matching_constraint_is_42P10(engine: EngineRunner) -> None:
    engine.run("CREATE TABLE kv (k INT PRIMARY KEY, v INT)")
    with pytest.raises(errors.ProgrammingError) as e:
        engine.run("INSERT INTO kv VALUES (1, 1) ON CONFLICT (v) DO NOTHING")
    assert e.value.sqlstate == "42P10"


def test_update_evaluates_every_set_against_the_old_row(backend: Any) -> None:
    backend.run("CREATE TABLE s (id INT PRIMARY KEY, a INT, b INT)")
    backend.run("INSERT INTO s VALUES (1, 1, 2), (2, 10, 20)")
    backend.run("UPDATE s SET a = b, b = a WHERE id = 1")
    assert backend.rows("SELECT a, b FROM s WHERE id = 1") == [(2, 1)]


def test_update_of_primary_key_does_not_revisit_moved_rows(backend: Any) -> None:
    backend.run("CREATE TABLE h (id INT PRIMARY KEY)")
    backend.run("INSERT INTO h VALUES (1), (2), (3)")
    backend.run("UPDATE h SET id = id + 10")
    assert backend.rows("SELECT id FROM h ORDER BY id") == [(11,), (12,), (13,)]


def test_update_and_delete_report_counts_and_returning(engine: EngineRunner) -> None:
    engine.run("CREATE TABLE s (id INT PRIMARY KEY, v INT)")
    engine.run("INSERT INTO s VALUES (1, 1), (2, 2), (3, 3)")
    result = engine.run("UPDATE s SET v = v * 10 WHERE v >= 2 RETURNING id, v")
    assert (result.status, sorted(result.rows)) == ("UPDATE 2", [(2, 20), (3, 30)])
    result = engine.run("DELETE FROM s WHERE id = 1 RETURNING *")
    assert (result.status, result.rows, result.rowcount) == ("DELETE 1", [(1, 1)], 1)
    assert engine.run("DELETE FROM s WHERE id = 99").status == "DELETE 0"
    assert engine.run("DELETE FROM s").rowcount == 2


def test_update_without_primary_key_table(backend: Any) -> None:
    backend.run("CREATE TABLE nk (a INT, b TEXT)")
    backend.run("INSERT INTO nk VALUES (1, 'x'), (1, 'y'), (2, 'z')")
    backend.run("UPDATE nk SET b = b || '!' WHERE a = 1")
    backend.run("DELETE FROM nk WHERE b = 'z'")
    assert sorted(backend.rows("SELECT * FROM nk")) == [(1, "x!"), (1, "y!")]


def test_execute_many_bulk_inserts(backend: Any) -> None:
    backend.run("CREATE TABLE bulk (id INT PRIMARY KEY, v TEXT, n INT DEFAULT 3)")
    if isinstance(backend, EngineRunner):
        (st,) = prepare("INSERT INTO bulk (id, v) VALUES (?, ?)")
        assert st.execute_many(backend.ctx, [(i, str(i)) for i in range(100)]) == 100
    else:
        backend.conn.cursor().executemany("INSERT INTO bulk (id, v) VALUES (?, ?)", [(i, str(i)) for i in range(100)])
    assert backend.rows("SELECT COUNT(*), SUM(id), MIN(n) FROM bulk") == [(100, 4950, 3)]


def test_statement_kinds_and_isolation() -> None:
    kinds = [
        (s.kind.name, s.isolation, s.read_only)
        for s in prepare(
            "BEGIN ISOLATION LEVEL REPEATABLE READ; START TRANSACTION; COMMIT; END; ROLLBACK; ABORT; "
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE; SELECT 1; INSERT INTO x VALUES (1); "
            "CREATE TABLE y (a INT); SHOW TABLES; BEGIN TRANSACTION ISOLATION LEVEL READ COMMITTED"
        )
    ]
    assert kinds == [
        ("BEGIN", "SNAPSHOT", True),
        ("BEGIN", None, True),
        ("COMMIT", None, True),
        ("COMMIT", None, True),
        ("ROLLBACK", None, True),
        ("ROLLBACK", None, True),
        ("SET_ISOLATION", "SERIALIZABLE", True),
        ("QUERY", None, True),
        ("DML", None, False),
        ("DDL", None, False),
        ("QUERY", None, True),
        ("BEGIN", "SNAPSHOT", True),
    ]


def test_prepare_is_cached_by_text_and_splits_on_semicolons_outside_strings() -> None:
    a = prepare("SELECT ';' AS x; SELECT 2")
    b = prepare("SELECT ';' AS x; SELECT 2")
    assert len(a) == 2 and a[0] is b[0]
    assert prepare("SELECT ?, ?")[0].param_count == 2
    assert prepare("SELECT $2, $1, $2")[0].param_count == 2
    assert prepare("SELECT :a, :b, :a")[0].param_count == 2


def test_show_tables_lists_names(engine: EngineRunner) -> None:
    engine.run("CREATE TABLE b (x INT); CREATE TABLE a (x INT)")
    result = engine.run("SHOW TABLES")
    assert result.rows == [("a",), ("b",)] and result.columns[0].name == "name"


def test_plan_is_rebuilt_after_table_is_recreated(engine: EngineRunner) -> None:
    engine.run("CREATE TABLE p (a INT); INSERT INTO p VALUES (1)")
    assert engine.rows("SELECT * FROM p") == [(1,)]
    engine.run("DROP TABLE p; CREATE TABLE p (a INT, b TEXT); INSERT INTO p VALUES (2, 'x')")
    assert engine.rows("SELECT * FROM p") == [(2, "x")]
