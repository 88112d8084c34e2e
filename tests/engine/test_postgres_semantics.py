"""PostgreSQL behaviour where SQLite differs: types, division, NULL order, errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from offsetdb import errors
from offsetdb.types import Kind

SETUP = """
CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(10), price NUMERIC(8,2), ratio DOUBLE PRECISION, born DATE, seen TIMESTAMP, ok BOOLEAN);
INSERT INTO t VALUES
  (1, 'Ann', 10.50, 0.5, '2000-02-29', '2024-03-01 10:30:00', true),
  (2, 'bob', NULL, NULL, NULL, NULL, NULL),
  (3, 'Cy', 3, 2.25, '1999-12-31', '2024-01-01 00:00:00', false);
"""


@pytest.fixture
def db(backend: Any) -> Any:
    backend.run(SETUP)
    return backend


def one(db: Any, sql: str, params: Any = None) -> Any:
    rows = db.rows(sql, params)
    assert len(rows) == 1
    return rows[0] if len(rows[0]) > 1 else rows[0][0]


def test_integer_division_truncates_toward_zero(db: Any) -> None:
    assert one(db, "SELECT 7 / 2, -7 / 2, 7 % -3, -7 % 3") == (3, -3, 1, -1)


def test_numeric_division_is_exact_decimal(db: Any) -> None:
    assert one(db, "SELECT 1.0 / 4") == Decimal("0.25")
    assert one(db, "SELECT price / 2 FROM t WHERE id = 1") == Decimal("5.25")


def test_division_by_zero_raises_22012(db: Any) -> None:
    with pytest.raises(errors.DivisionByZero) as e:
        db.rows("SELECT id / 0 FROM t")
    assert e.value.sqlstate == "22012"
    with pytest.raises(errors.DivisionByZero):
        db.rows("SELECT ratio / 0 FROM t WHERE id = 1")


def test_division_by_zero_in_untaken_case_branch_is_not_raised(db: Any) -> None:
    assert one(db, "SELECT CASE WHEN false THEN 1 / 0 ELSE 1 END") == 1


def test_integer_overflow_raises_22003(db: Any) -> None:
    with pytest.raises(errors.NumericValueOutOfRange):
        db.rows("SELECT 2147483647 + id FROM t")


def test_nulls_sort_last_ascending_and_first_descending(db: Any) -> None:
    assert [r[0] for r in db.rows("SELECT price FROM t ORDER BY price")] == [
        Decimal("3.00"),
        Decimal("10.50"),
        None,
    ]
    assert [r[0] for r in db.rows("SELECT price FROM t ORDER BY price DESC")][0] is None
    assert [r[0] for r in db.rows("SELECT price FROM t ORDER BY price NULLS FIRST")][0] is None
    assert [r[0] for r in db.rows("SELECT price FROM t ORDER BY price DESC NULLS LAST")][-1] is None


def test_sum_of_integers_is_int_and_avg_is_decimal() -> None:
    from .conftest import EngineRunner

    e = EngineRunner()
    e.run(SETUP)
    result = e.run("SELECT SUM(id), AVG(id), AVG(ratio), SUM(price) FROM t")
    assert result.rows == [(6, Decimal(2), 1.375, Decimal("13.50"))]
    assert [c.type.kind if c.type else None for c in result.columns] == [
        Kind.BIGINT,
        Kind.NUMERIC,
        Kind.DOUBLE,
        Kind.NUMERIC,
    ]


def test_aggregates_over_empty_input_return_one_row(db: Any) -> None:
    assert one(db, "SELECT COUNT(*), SUM(id), MAX(name) FROM t WHERE id > 10") == (0, None, None)


def test_like_is_case_sensitive_and_ilike_is_not(db: Any) -> None:
    assert db.rows("SELECT id FROM t WHERE name LIKE 'a%'") == []
    assert db.rows("SELECT id FROM t WHERE name ILIKE 'a%'") == [(1,)]
    assert db.rows("SELECT id FROM t WHERE name NOT ILIKE '%B%' ORDER BY id") == [(1,), (3,)]


def test_like_escapes_wildcards(db: Any) -> None:
    assert one(db, r"SELECT 'a%b' LIKE 'a\%b', 'axb' LIKE 'a\%b', 'a_b' LIKE 'a!_b' ESCAPE '!'") == (
        True,
        False,
        True,
    )


def test_three_valued_logic_truth_tables(db: Any) -> None:
    assert one(db, "SELECT NULL AND false, NULL OR true, NOT NULL, NULL = NULL, NULL AND true") == (
        False,
        True,
        None,
        None,
        None,
    )


def test_not_in_with_null_in_subquery_matches_nothing(db: Any) -> None:
    assert db.rows("SELECT id FROM t WHERE id NOT IN (SELECT CASE WHEN id = 2 THEN NULL ELSE id END FROM t)") == []


def test_string_literal_compares_as_the_column_type(db: Any) -> None:
    assert db.rows("SELECT id FROM t WHERE born = '2000-02-29'") == [(1,)]
    assert db.rows("SELECT id FROM t WHERE id = '3'") == [(3,)]


def test_bad_literal_for_integer_key_raises_22P02(db: Any) -> None:
    with pytest.raises(errors.InvalidTextRepresentation) as e:
        db.rows("SELECT * FROM t WHERE id = 'abc'")
    assert e.value.sqlstate == "22P02"
    with pytest.raises(errors.InvalidTextRepresentation):
        db.rows("SELECT * FROM t WHERE id = ?", ["abc"])


def test_comparing_text_with_integer_column_is_an_error(db: Any) -> None:
    with pytest.raises(errors.UndefinedFunction):
        db.rows("SELECT * FROM t WHERE name = id")


def test_casts_follow_postgres(db: Any) -> None:
    assert one(db, "SELECT CAST('42' AS INTEGER), 2.5::int, 3.7::float8::int, 'abcdef'::varchar(3), true::text, 1::boolean") == (
        42,
        3,
        4,
        "abc",
        "true",
        True,
    )
    with pytest.raises(errors.InvalidTextRepresentation):
        db.rows("SELECT 'x1'::int")


def test_concatenation_converts_and_propagates_null(db: Any) -> None:
    assert one(db, "SELECT 'n' || 1 || true, 'n' || NULL") == ("n1true", None)


def test_string_functions(db: Any) -> None:
    assert one(
        db,
        "SELECT lower('AbC'), upper('abc'), length('héllo'), substring('hello' from 2 for 3), "
        "position('l' in 'hello'), strpos('hello', 'lo'), left('hello', 2), right('hello', 2), "
        "lpad('7', 3, '0'), rpad('a', 3, '-'), split_part('a,b,c', ',', 2), reverse('abc'), "
        "repeat('ab', 2), concat('a', NULL, 1), concat_ws('-', 'a', NULL, 'b'), initcap('hello world'), "
        "trim(both 'x' from 'xxaxx'), replace('aaa', 'a', 'b')",
    ) == ("abc", "ABC", 5, "ell", 3, 4, "he", "lo", "007", "a--", "b", "cba", "abab", "a1", "a-b", "Hello World", "a", "bbb")


def test_math_functions(db: Any) -> None:
    assert one(
        db,
        "SELECT abs(-3), round(2.5), round(2.345, 2), ceil(1.2), floor(-1.2), mod(7, 3), "
        "power(2, 10), sqrt(16.0), sign(-4), greatest(1, 5, NULL), least(4, 2)",
    ) == (3, Decimal(3), Decimal("2.35"), Decimal(2), Decimal(-2), 1, 1024.0, Decimal(4), -1, 5, 2)


def test_date_functions(db: Any) -> None:
    assert one(
        db,
        "SELECT extract(year from born), born + 1, born - DATE '2000-01-01', date_trunc('month', seen), "
        "seen + INTERVAL '1 day', born + INTERVAL '1 month' FROM t WHERE id = 1",
    ) == (
        Decimal(2000),
        dt.date(2000, 3, 1),
        59,
        dt.datetime(2024, 3, 1),
        dt.datetime(2024, 3, 2, 10, 30),
        dt.datetime(2000, 3, 29),
    )


def test_now_is_one_value_per_statement(db: Any) -> None:
    a, b = one(db, "SELECT now(), current_timestamp")
    assert a == b and isinstance(a, dt.datetime)


def test_scalar_subquery_with_two_rows_raises_21000(db: Any) -> None:
    with pytest.raises(errors.CardinalityViolation) as e:
        db.rows("SELECT (SELECT id FROM t)")
    assert e.value.sqlstate == "21000"


def test_left_join_keeps_unmatched_rows_with_nulls(db: Any) -> None:
    db.run("CREATE TABLE o (tid INT, qty INT); INSERT INTO o VALUES (1, 5), (1, 6)")
    assert db.rows("SELECT t.id, o.qty FROM t LEFT JOIN o ON o.tid = t.id ORDER BY 1, 2") == [
        (1, 5),
        (1, 6),
        (2, None),
        (3, None),
    ]


def test_join_using_merges_the_column(db: Any) -> None:
    db.run("CREATE TABLE o (id INT, qty INT); INSERT INTO o VALUES (1, 5), (3, 7)")
    cur_rows = db.rows("SELECT * FROM t JOIN o USING (id) ORDER BY id")
    assert [r[0] for r in cur_rows] == [1, 3] and len(cur_rows[0]) == 8
    assert db.rows("SELECT id, qty FROM t NATURAL JOIN o ORDER BY id") == [(1, 5), (3, 7)]


def test_parameters_in_all_three_styles(db: Any) -> None:
    assert db.rows("SELECT name FROM t WHERE id = ?", [1]) == [("Ann",)]
    assert db.rows("SELECT name FROM t WHERE id = $1 OR id = $1 + 2 ORDER BY 1", [1]) == [("Ann",), ("Cy",)]
    assert db.rows("SELECT name FROM t WHERE id = :k", {"k": 3}) == [("Cy",)]
    assert db.rows("SELECT name FROM t ORDER BY id LIMIT ? OFFSET ?", [1, 1]) == [("bob",)]


def test_wrong_parameter_count_raises_08P01(engine: Any) -> None:
    engine.run("CREATE TABLE p (a INT)")
    with pytest.raises(errors.ProgrammingError) as e:
        engine.run("SELECT * FROM p WHERE a = ? AND a = ?", [1])
    assert e.value.sqlstate == "08P01"
    assert "statement expects 2 parameters, got 1" in str(e.value)


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        ("SELECT row_number() OVER () FROM t", "window functions"),
        ("WITH RECURSIVE r AS (SELECT 1) SELECT * FROM r", "WITH RECURSIVE"),
        ("SELECT * FROM t FULL JOIN t u ON true", "FULL JOIN"),
        ("SELECT * FROM t RIGHT JOIN t u ON true", "RIGHT JOIN"),
        ("ALTER TABLE t ADD COLUMN x INT", "ALTER"),
        ("CREATE INDEX i ON t (id)", "CREATE INDEX"),
        ("CREATE TABLE s (id SERIAL)", "SERIAL"),
        ("UPDATE t SET name = 'x' FROM t u", "UPDATE ... FROM"),
        ("SELECT DISTINCT ON (id) id FROM t", "DISTINCT ON"),
        ("SAVEPOINT a", "savepoints"),
    ],
)
def test_unsupported_constructs_raise_0A000_naming_them(db: Any, sql: str, construct: str) -> None:
    with pytest.raises(errors.NotSupportedError) as e:
        db.rows(sql)
    assert e.value.sqlstate == "0A000"
    assert construct.lower() in str(e.value).lower()


@pytest.mark.parametrize(
    ("sql", "error", "sqlstate"),
    [
        ("SELEC 1", errors.SqlSyntaxError, "42601"),
        ("SELECT * FROM nope", errors.UndefinedTable, "42P01"),
        ("SELECT nope FROM t", errors.UndefinedColumn, "42703"),
        ("SELECT id FROM t, t u", errors.AmbiguousColumn, "42702"),
        ("SELECT name, COUNT(*) FROM t", errors.GroupingError, "42803"),
        ("SELECT id FROM t GROUP BY name", errors.GroupingError, "42803"),
        ("SELECT nosuchfn(1)", errors.UndefinedFunction, "42883"),
        ("SELECT * FROM t WHERE COUNT(*) > 1", errors.GroupingError, "42803"),
        ("SELECT * FROM t WHERE id", errors.DatatypeMismatch, "42804"),
        ("INSERT INTO t (id, nope) VALUES (1, 2)", errors.UndefinedColumn, "42703"),
        ("INSERT INTO t (id, id) VALUES (1, 2)", errors.DuplicateColumn, "42701"),
        ("INSERT INTO t (id) VALUES (1, 2)", errors.SqlSyntaxError, "42601"),
        ("INSERT INTO t VALUES (1, 'dup')", errors.UniqueViolation, "23505"),
        ("INSERT INTO t (name) VALUES ('x')", errors.NotNullViolation, "23502"),
        ("CREATE TABLE t (a INT)", errors.DuplicateTable, "42P07"),
        ("CREATE TABLE z (a INT PRIMARY KEY, b INT PRIMARY KEY)", errors.InvalidTableDefinition, "42P16"),
        ("DROP TABLE nope", errors.UndefinedTable, "42P01"),
    ],
)
def test_errors_carry_their_sqlstate(db: Any, sql: str, error: type, sqlstate: str) -> None:
    with pytest.raises(error) as e:
        db.run(sql)
    assert e.value.sqlstate == sqlstate


def test_unknown_function_error_names_the_function(db: Any) -> None:
    with pytest.raises(errors.UndefinedFunction, match="nosuchfn"):
        db.rows("SELECT nosuchfn(1)")


def test_correlated_subquery_in_grouped_select_sees_grouped_column(db: Any) -> None:
    db.run("CREATE TABLE o (tid INT, qty INT); INSERT INTO o VALUES (1, 5), (1, 6), (3, 1)")
    assert db.rows(
        "SELECT tid, (SELECT name FROM t WHERE t.id = o.tid), SUM(qty) FROM o GROUP BY tid ORDER BY tid"
    ) == [(1, "Ann", 11), (3, "Cy", 1)]


def test_quantified_comparisons_and_filter_clause(db: Any) -> None:
    assert db.rows("SELECT id FROM t WHERE id > ALL (SELECT id FROM t WHERE id < 3) ORDER BY id") == [(3,)]
    assert db.rows("SELECT id FROM t WHERE id = ANY (SELECT id + 1 FROM t) ORDER BY id") == [(2,), (3,)]
    assert one(db, "SELECT COUNT(*) FILTER (WHERE ok), string_agg(name, '/') FROM t") == (1, "Ann/bob/Cy")


def test_timestamp_difference_is_an_interval(db: Any) -> None:
    assert one(db, "SELECT TIMESTAMP '2024-01-01 10:00' - TIMESTAMP '2024-01-01 08:30'") == dt.timedelta(
        minutes=90
    )


def test_same_output_column_twice_is_not_ambiguous_in_order_by(db: Any) -> None:
    assert db.rows("SELECT name, name FROM t ORDER BY name") == [("Ann", "Ann"), ("Cy", "Cy"), ("bob", "bob")]


def test_aggregate_of_outer_column_is_refused_rather_than_misread(db: Any) -> None:
    with pytest.raises(errors.NotSupportedError):
        db.rows("SELECT (SELECT MAX(t.id)) FROM t")
