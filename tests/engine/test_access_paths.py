"""How the engine reads: primary-key point lookups and the scan filters it records."""

from __future__ import annotations

import time

from offsetdb.query.context import Conjunct
from offsetdb.query.engine import prepare

from .conftest import EngineRunner


def make() -> EngineRunner:
    e = EngineRunner()
    e.run("CREATE TABLE t (id INT PRIMARY KEY, v TEXT, n INT); CREATE TABLE c (a INT, b INT, x TEXT, PRIMARY KEY (a, b))")
    e.run("INSERT INTO t VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30)")
    e.run("INSERT INTO c VALUES (1, 1, 'p'), (1, 2, 'q')")
    e.ctx.db.scans.clear()
    e.ctx.db.gets.clear()
    return e


def test_point_select_uses_get_not_scan() -> None:
    e = make()
    assert e.rows("SELECT v FROM t WHERE id = ?", [2]) == [("b",)]
    assert e.rows("SELECT * FROM c WHERE b = 2 AND a = 1") == [(1, 2, "q")]
    assert e.rows("SELECT v FROM t WHERE id = 2 AND n > 50") == []
    assert e.ctx.db.scans == []
    assert e.ctx.db.gets == [("t", (2,)), ("c", (1, 2)), ("t", (2,))]


def test_point_select_with_non_integral_key_matches_nothing() -> None:
    e = make()
    assert e.rows("SELECT v FROM t WHERE id = 2.5") == []
    assert e.rows("SELECT v FROM t WHERE id = ?", [None]) == []
    assert e.rows("SELECT v FROM t WHERE id = 2.0") == [("b",)]


def test_update_and_delete_by_key_use_get() -> None:
    e = make()
    e.run("UPDATE t SET n = n + 1 WHERE id = ?", [1])
    e.run("DELETE FROM t WHERE id = 3")
    assert e.ctx.db.scans == []
    assert e.rows("SELECT id, n FROM t ORDER BY id") == [(1, 11), (2, 20)]


def test_where_terms_become_scan_conjuncts() -> None:
    e = make()
    e.rows("SELECT * FROM t WHERE n >= 10 AND 25 > n AND v IN ('a', 'b') AND v IS NULL AND id BETWEEN 1 AND ?", [9])
    (name, scan_filter) = e.ctx.db.scans[-1]
    assert name == "t"
    assert set(scan_filter.conjuncts) == {
        Conjunct(2, ">=", (10,)),
        Conjunct(2, "<", (25,)),
        Conjunct(1, "IN", ("a", "b")),
        Conjunct(1, "IS NULL", ()),
        Conjunct(0, ">=", (1,)),
        Conjunct(0, "<=", (9,)),
    }


def test_or_and_non_constant_terms_are_not_pushed() -> None:
    e = make()
    e.rows("SELECT * FROM t WHERE n = 10 OR n = 20")
    e.rows("SELECT * FROM t WHERE n = id")
    assert [f.conjuncts for _, f in e.ctx.db.scans] == [(), ()]


def test_nullable_side_of_left_join_gets_no_where_terms() -> None:
    e = make()
    e.rows("SELECT * FROM t LEFT JOIN c ON c.a = t.id AND c.x = 'p' WHERE c.b IS NULL AND t.n > 5")
    filters = dict(e.ctx.db.scans)
    assert filters["t"].conjuncts == (Conjunct(2, ">", (5,)),)
    assert filters["c"].conjuncts == (Conjunct(2, "=", ("p",)),)


def test_point_select_is_fast() -> None:
    e = make()
    (st,) = prepare("SELECT id, v, n FROM t WHERE id = ?")
    st.execute(e.ctx, [1])
    n = 5000
    start = time.perf_counter()
    for i in range(n):
        st.execute(e.ctx, [i % 3 + 1])
    per_call = (time.perf_counter() - start) / n
    # generous bound (includes the fake context's own cost); a smoke check, not a benchmark
    assert per_call < 200e-6
