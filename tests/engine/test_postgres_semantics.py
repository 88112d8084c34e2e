"""PostgreSQL behaviour where SQLite differs: types, division, NULL order, errors.

Each statement runs on offsetdb (the engine over its in-memory context, and the driver on
each backend) and on PostgreSQL, the oracle (``diff.check``: same rows, same types, same
numeric scale, or the same full SQLSTATE; see :mod:`oracle_compare`). What PostgreSQL
cannot judge stays a hand-written expectation: the driver's parameter styles, the error
classes of offsetdb's Python API, per-statement ``now()``, and the constructs offsetdb
refuses with 0A000.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from oracle_compare import Differential, split_statements

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


@pytest.fixture
def diff(db: Any, pg: Any) -> Differential:
    """The same statements on the backend and on PostgreSQL, with SETUP run on both."""
    for sql in split_statements(SETUP):
        pg.execute(sql)
    return Differential(db.run, pg)


def one(db: Any, sql: str, params: Any = None) -> Any:
    rows = db.rows(sql, params)
    assert len(rows) == 1
    return rows[0] if len(rows[0]) > 1 else rows[0][0]


def test_integer_division_truncates_toward_zero(diff: Differential) -> None:
    diff.check("SELECT 7 / 2, -7 / 2, 7 % -3, -7 % 3")


def test_numeric_division_is_exact_decimal(diff: Differential) -> None:
    diff.check("SELECT 1.0 / 4")
    diff.check("SELECT price / 2 FROM t WHERE id = 1")


def test_division_by_zero_raises_22012(diff: Differential, db: Any) -> None:
    diff.check("SELECT id / 0 FROM t")
    diff.check("SELECT ratio / 0 FROM t WHERE id = 1")
    with pytest.raises(errors.DivisionByZero):
        db.rows("SELECT ratio / 0 FROM t WHERE id = 1")


def test_division_by_zero_in_untaken_case_branch_is_not_raised(diff: Differential) -> None:
    diff.check("SELECT CASE WHEN false THEN 1 / 0 ELSE 1 END")


def test_integer_overflow_raises_22003(diff: Differential, db: Any) -> None:
    diff.check("SELECT 2147483647 + id FROM t")
    with pytest.raises(errors.NumericValueOutOfRange):
        db.rows("SELECT 2147483647 + id FROM t")


def test_nulls_sort_last_ascending_and_first_descending(diff: Differential) -> None:
    for order in ("", " DESC", " NULLS FIRST", " DESC NULLS LAST"):
        diff.check(f"SELECT price FROM t ORDER BY price{order}", ordered=True)


def test_sum_of_integers_is_bigint_and_avg_is_numeric(diff: Differential) -> None:
    diff.check("SELECT SUM(id), AVG(id), AVG(ratio), SUM(price) FROM t")


def test_sum_and_avg_result_column_types() -> None:
    from .conftest import EngineRunner

    e = EngineRunner()
    e.run(SETUP)
    result = e.run("SELECT SUM(id), AVG(id), AVG(ratio), SUM(price) FROM t")
    assert [c.type.kind if c.type else None for c in result.columns] == [
        Kind.BIGINT,
        Kind.NUMERIC,
        Kind.DOUBLE,
        Kind.NUMERIC,
    ]


def test_aggregates_over_empty_input_return_one_row(diff: Differential) -> None:
    diff.check("SELECT COUNT(*), SUM(id), MAX(name) FROM t WHERE id > 10")


def test_like_is_case_sensitive_and_ilike_is_not(diff: Differential) -> None:
    diff.check("SELECT id FROM t WHERE name LIKE 'a%'")
    diff.check("SELECT id FROM t WHERE name ILIKE 'a%'")
    diff.check("SELECT id FROM t WHERE name NOT ILIKE '%B%' ORDER BY id", ordered=True)


def test_like_escapes_wildcards(diff: Differential) -> None:
    diff.check(r"SELECT 'a%b' LIKE 'a\%b', 'axb' LIKE 'a\%b', 'a_b' LIKE 'a!_b' ESCAPE '!'")


def test_three_valued_logic_truth_tables(diff: Differential) -> None:
    diff.check("SELECT NULL AND false, NULL OR true, NOT NULL, NULL = NULL, NULL AND true")


def test_not_in_with_null_in_subquery_matches_nothing(diff: Differential) -> None:
    diff.check("SELECT id FROM t WHERE id NOT IN (SELECT CASE WHEN id = 2 THEN NULL ELSE id END FROM t)")


def test_string_literal_compares_as_the_column_type(diff: Differential) -> None:
    diff.check("SELECT id FROM t WHERE born = '2000-02-29'")
    diff.check("SELECT id FROM t WHERE id = '3'")


def test_bad_literal_for_integer_key_raises_22P02(diff: Differential, db: Any) -> None:
    diff.check("SELECT * FROM t WHERE id = 'abc'")
    with pytest.raises(errors.InvalidTextRepresentation) as e:
        db.rows("SELECT * FROM t WHERE id = ?", ["abc"])
    assert e.value.sqlstate == "22P02"


def test_comparing_text_with_integer_column_is_an_error(diff: Differential) -> None:
    diff.check("SELECT * FROM t WHERE name = id")


def test_casts_follow_postgres(diff: Differential) -> None:
    diff.check(
        "SELECT CAST('42' AS INTEGER), 2.5::int, 3.7::float8::int, 'abcdef'::varchar(3), "
        "true::text, 1::boolean"
    )
    diff.check("SELECT 'x1'::int")


def test_concatenation_converts_and_propagates_null(diff: Differential) -> None:
    diff.check("SELECT 'n' || 1 || true, 'n' || NULL")


def test_string_functions(diff: Differential) -> None:
    diff.check(
        "SELECT lower('AbC'), upper('abc'), length('héllo'), substring('hello' from 2 for 3), "
        "position('l' in 'hello'), strpos('hello', 'lo'), left('hello', 2), right('hello', 2), "
        "lpad('7', 3, '0'), rpad('a', 3, '-'), split_part('a,b,c', ',', 2), reverse('abc'), "
        "repeat('ab', 2), concat('a', NULL, 1), concat_ws('-', 'a', NULL, 'b'), initcap('hello world'), "
        "trim(both 'x' from 'xxaxx'), replace('aaa', 'a', 'b')"
    )


def test_math_functions(diff: Differential) -> None:
    diff.check(
        "SELECT abs(-3), round(2.5), round(2.345, 2), ceil(1.2), floor(-1.2), mod(7, 3), "
        "power(2, 10), sqrt(16.0), sign(-4), greatest(1, 5, NULL), least(4, 2)"
    )


def test_date_functions(diff: Differential) -> None:
    diff.check(
        "SELECT extract(year from born), born + 1, born - DATE '2000-01-01', date_trunc('month', seen), "
        "seen + INTERVAL '1 day', born + INTERVAL '1 month' FROM t WHERE id = 1"
    )


def test_now_is_one_value_per_statement(db: Any) -> None:
    a, b = one(db, "SELECT now(), current_timestamp")
    assert a == b and isinstance(a, dt.datetime)


def test_scalar_subquery_with_two_rows_raises_21000(diff: Differential) -> None:
    diff.check("SELECT (SELECT id FROM t)")


def test_left_join_keeps_unmatched_rows_with_nulls(diff: Differential) -> None:
    diff.setup("CREATE TABLE o (tid INT, qty INT); INSERT INTO o VALUES (1, 5), (1, 6)")
    diff.check("SELECT t.id, o.qty FROM t LEFT JOIN o ON o.tid = t.id ORDER BY 1, 2", ordered=True)


def test_join_using_merges_the_column(diff: Differential) -> None:
    diff.setup("CREATE TABLE o (id INT, qty INT); INSERT INTO o VALUES (1, 5), (3, 7)")
    diff.check("SELECT * FROM t JOIN o USING (id) ORDER BY id", ordered=True)
    diff.check("SELECT id, qty FROM t NATURAL JOIN o ORDER BY id", ordered=True)


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
    ("sql", "error"),
    [
        ("SELEC 1", errors.SqlSyntaxError),
        ("SELECT * FROM nope", errors.UndefinedTable),
        ("SELECT nope FROM t", errors.UndefinedColumn),
        ("SELECT id FROM t, t u", errors.AmbiguousColumn),
        ("SELECT name, COUNT(*) FROM t", errors.GroupingError),
        ("SELECT id FROM t GROUP BY name", errors.GroupingError),
        ("SELECT nosuchfn(1)", errors.UndefinedFunction),
        ("SELECT * FROM t WHERE COUNT(*) > 1", errors.GroupingError),
        ("SELECT * FROM t WHERE id", errors.DatatypeMismatch),
        ("INSERT INTO t (id, nope) VALUES (1, 2)", errors.UndefinedColumn),
        ("INSERT INTO t (id, id) VALUES (1, 2)", errors.DuplicateColumn),
        ("INSERT INTO t (id) VALUES (1, 2)", errors.SqlSyntaxError),
        ("INSERT INTO t VALUES (1, 'dup')", errors.UniqueViolation),
        ("INSERT INTO t (name) VALUES ('x')", errors.NotNullViolation),
        ("CREATE TABLE t (a INT)", errors.DuplicateTable),
        ("CREATE TABLE z (a INT PRIMARY KEY, b INT PRIMARY KEY)", errors.InvalidTableDefinition),
        ("DROP TABLE nope", errors.UndefinedTable),
    ],
)
def test_errors_carry_postgres_sqlstate(diff: Differential, db: Any, sql: str, error: type) -> None:
    diff.check(sql)  # the same full SQLSTATE as PostgreSQL's
    with pytest.raises(error):
        db.run(sql)


def test_unknown_function_error_names_the_function(db: Any) -> None:
    with pytest.raises(errors.UndefinedFunction, match="nosuchfn"):
        db.rows("SELECT nosuchfn(1)")


def test_correlated_subquery_in_grouped_select_sees_grouped_column(diff: Differential) -> None:
    diff.setup("CREATE TABLE o (tid INT, qty INT); INSERT INTO o VALUES (1, 5), (1, 6), (3, 1)")
    diff.check(
        "SELECT tid, (SELECT name FROM t WHERE t.id = o.tid), SUM(qty) FROM o GROUP BY tid ORDER BY tid",
        ordered=True,
    )


def test_quantified_comparisons_and_filter_clause(diff: Differential) -> None:
    diff.check("SELECT id FROM t WHERE id > ALL (SELECT id FROM t WHERE id < 3) ORDER BY id", ordered=True)
    diff.check("SELECT id FROM t WHERE id = ANY (SELECT id + 1 FROM t) ORDER BY id", ordered=True)
    # string_agg without ORDER BY follows the scan: primary-key order here, insertion order
    # in PostgreSQL's heap; the rows were inserted in key order, so the two agree.
    diff.check("SELECT COUNT(*) FILTER (WHERE ok), string_agg(name, '/') FROM t")


def test_timestamp_difference_is_an_interval(diff: Differential) -> None:
    diff.check("SELECT TIMESTAMP '2024-01-01 10:00' - TIMESTAMP '2024-01-01 08:30'")


def test_same_output_column_twice_is_not_ambiguous_in_order_by(diff: Differential) -> None:
    diff.check("SELECT name, name FROM t ORDER BY name", ordered=True)


def test_aggregate_of_outer_column_is_refused_rather_than_misread(db: Any) -> None:
    # PostgreSQL accepts this (the aggregate belongs to the outer query); offsetdb refuses.
    with pytest.raises(errors.NotSupportedError):
        db.rows("SELECT (SELECT MAX(t.id)) FROM t")
