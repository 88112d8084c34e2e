"""Differential tests: the same SQL on offsetdb and on PostgreSQL, answers compared.

Each case is a query over one schema (``SCHEMA``), run on the engine over its in-memory
context and through the driver on a real database, and compared with PostgreSQL (the
``postgres`` fixture; how values, rows and errors compare is in :mod:`oracle_compare`).
Rows compare as multisets unless the query ends with an ORDER BY, which every such case
makes total. These cases were first written against SQLite, which is why they stay
within what both define; PostgreSQL-only behaviour is in test_postgres_semantics.py,
and the generated cases in test_oracle_random.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from oracle_compare import Differential, split_statements

SCHEMA = """
CREATE TABLE emp (id INTEGER PRIMARY KEY, name TEXT NOT NULL, dept INTEGER, salary INTEGER, bonus DOUBLE PRECISION, boss INTEGER);
CREATE TABLE dept (id INTEGER PRIMARY KEY, dname TEXT, city TEXT);
CREATE TABLE t (a INTEGER, b INTEGER, c TEXT);
CREATE TABLE empty_t (x INTEGER, y TEXT);
INSERT INTO emp VALUES
  (1, 'alice', 10, 5000, 100.5, NULL),
  (2, 'bob', 10, 4000, NULL, 1),
  (3, 'carol', 20, 7000, 250.25, 1),
  (4, 'dave', 20, 3000, 0, 3),
  (5, 'eve', NULL, 6000, 50, 3),
  (6, 'frank', 30, NULL, NULL, 5),
  (7, 'grace', 10, 5000, 75, 1);
INSERT INTO dept VALUES (10, 'eng', 'paris'), (20, 'ops', 'berlin'), (40, 'hr', NULL);
INSERT INTO t VALUES (1, 1, 'x'), (1, 2, 'y'), (2, NULL, 'z'), (NULL, 3, NULL), (3, 3, 'x'), (NULL, NULL, 'w');
"""

CASES: list[str] = [
    # projections, WHERE, three-valued logic
    "SELECT id, name FROM emp",
    "SELECT * FROM emp WHERE salary > 4500",
    "SELECT name FROM emp WHERE dept = 10 AND salary >= 5000",
    "SELECT name FROM emp WHERE dept = 10 OR bonus > 100",
    "SELECT a, b FROM t WHERE NOT (a = 1)",
    "SELECT a, b FROM t WHERE a = 1 OR b = 3",
    "SELECT a, b FROM t WHERE NOT (a = 1 AND b IS NULL)",
    "SELECT a, b, a = b, a <> b, a < b FROM t",
    "SELECT a, b, (a = 1) AND (b = 3), (a = 1) OR (b = 3), NOT (a = b) FROM t",
    "SELECT a FROM t WHERE a IS NULL",
    "SELECT a FROM t WHERE a IS NOT NULL",
    "SELECT a, b FROM t WHERE a IS DISTINCT FROM b",
    "SELECT a, b FROM t WHERE a IS NOT DISTINCT FROM b",
    "SELECT a FROM t WHERE a BETWEEN 1 AND 2",
    "SELECT a FROM t WHERE a NOT BETWEEN 1 AND 2",
    "SELECT 5 < a FROM t",
    "SELECT a FROM t WHERE 2 >= a",
    "SELECT a FROM t WHERE a IN (1, 3)",
    "SELECT a FROM t WHERE a NOT IN (1, 3)",
    "SELECT a FROM t WHERE a IN (1, NULL)",
    "SELECT a FROM t WHERE a NOT IN (1, NULL)",
    "SELECT a, a IN (1, NULL), a NOT IN (2, NULL) FROM t",
    # arithmetic and expressions
    "SELECT id, salary + 1, salary - id, salary * 2, salary / 3, salary % 7 FROM emp",
    "SELECT 7 / 2, 7 % 2, -7 / 2, 2 + 3 * 4, (2 + 3) * 4",
    "SELECT id, bonus * 2, bonus + salary FROM emp",
    "SELECT name || '-' || id FROM emp",
    "SELECT c || NULL FROM t",
    "SELECT CASE WHEN salary > 5000 THEN 'high' WHEN salary > 3500 THEN 'mid' ELSE 'low' END FROM emp",
    "SELECT CASE dept WHEN 10 THEN 'ten' WHEN 20 THEN 'twenty' END FROM emp",
    "SELECT COALESCE(bonus, salary, 0) FROM emp",
    "SELECT NULLIF(dept, 10) FROM emp",
    "SELECT ABS(-5), ABS(a - 2) FROM t",
    "SELECT LOWER(name), UPPER(name), LENGTH(name) FROM emp",
    "SELECT SUBSTR(name, 2, 3), SUBSTR(name, 3) FROM emp",
    "SELECT REPLACE(name, 'a', 'A') FROM emp",
    "SELECT TRIM('  x  '), LTRIM('  x  '), RTRIM('  x  ')",
    "SELECT name FROM emp WHERE name LIKE '%a%'",
    "SELECT name FROM emp WHERE name LIKE '_o%'",
    "SELECT name FROM emp WHERE name NOT LIKE '%e'",
    "SELECT GREATEST(salary, 0), LEAST(bonus, 100) FROM emp",
    # ORDER BY, LIMIT, DISTINCT
    "SELECT name FROM emp ORDER BY name",
    "SELECT name, salary FROM emp ORDER BY salary DESC, name",
    "SELECT id, bonus FROM emp ORDER BY bonus, id",
    "SELECT id, bonus FROM emp ORDER BY bonus DESC, id",
    "SELECT id, bonus FROM emp ORDER BY bonus IS NULL, bonus DESC, id",
    "SELECT name AS n FROM emp ORDER BY n DESC",
    "SELECT name, salary FROM emp ORDER BY 2, 1",
    "SELECT name FROM emp ORDER BY salary * -1, id",
    "SELECT name FROM emp ORDER BY id LIMIT 3",
    "SELECT name FROM emp ORDER BY id LIMIT 3 OFFSET 2",
    "SELECT name FROM emp ORDER BY id OFFSET 5",
    "SELECT DISTINCT dept FROM emp",
    "SELECT DISTINCT dept, salary FROM emp ORDER BY dept, salary",
    "SELECT DISTINCT a FROM t ORDER BY a",
    # aggregates
    "SELECT COUNT(*), COUNT(bonus), SUM(salary), MIN(salary), MAX(salary) FROM emp",
    "SELECT AVG(salary), AVG(bonus) FROM emp",
    "SELECT COUNT(DISTINCT dept), COUNT(DISTINCT salary) FROM emp",
    "SELECT SUM(DISTINCT salary) FROM emp",
    "SELECT dept, COUNT(*), SUM(salary) FROM emp GROUP BY dept",
    "SELECT dept, COUNT(*) FROM emp GROUP BY dept HAVING COUNT(*) > 1",
    "SELECT dept, MAX(salary) - MIN(salary) FROM emp GROUP BY dept ORDER BY dept",
    "SELECT dept AS d, COUNT(*) AS n FROM emp GROUP BY d ORDER BY n DESC, d",
    "SELECT dept, COUNT(*) FROM emp GROUP BY 1 ORDER BY 1",
    "SELECT salary / 1000, COUNT(*) FROM emp GROUP BY salary / 1000",
    "SELECT COUNT(*), SUM(x), MAX(y), AVG(x) FROM empty_t",
    "SELECT x, COUNT(*) FROM empty_t GROUP BY x",
    "SELECT COUNT(*) FROM emp WHERE salary > 100000",
    "SELECT dept, SUM(salary) FROM emp WHERE salary IS NOT NULL GROUP BY dept HAVING SUM(salary) > 8000",
    "SELECT a, COUNT(b), COUNT(*) FROM t GROUP BY a",
    "SELECT COUNT(*) FROM emp HAVING COUNT(*) > 3",
    "SELECT MIN(name), MAX(name) FROM emp",
    "SELECT dept, SUM(CASE WHEN salary > 4500 THEN 1 ELSE 0 END) FROM emp GROUP BY dept",
    # joins
    "SELECT e.name, d.dname FROM emp e JOIN dept d ON e.dept = d.id",
    "SELECT e.name, d.dname FROM emp e INNER JOIN dept d ON d.id = e.dept AND d.city = 'paris'",
    "SELECT e.name, d.dname FROM emp e LEFT JOIN dept d ON e.dept = d.id",
    "SELECT e.name, d.dname FROM emp e LEFT OUTER JOIN dept d ON e.dept = d.id AND d.city = 'berlin'",
    "SELECT e.name, d.dname FROM emp e LEFT JOIN dept d ON e.dept = d.id WHERE d.id IS NULL",
    "SELECT e.name, d.dname FROM emp e, dept d WHERE e.dept = d.id AND e.salary > 4000",
    "SELECT e.name, d.dname FROM emp e CROSS JOIN dept d",
    "SELECT e.name, m.name FROM emp e JOIN emp m ON e.boss = m.id",
    "SELECT e.name, m.name FROM emp e LEFT JOIN emp m ON e.boss = m.id",
    "SELECT e.name, d.dname FROM emp e JOIN dept d ON e.dept < d.id",
    "SELECT e.name, d.dname, t.c FROM emp e JOIN dept d ON e.dept = d.id JOIN t ON t.a = e.id",
    "SELECT e.name, d.dname, t.c FROM emp e LEFT JOIN dept d ON e.dept = d.id LEFT JOIN t ON t.a = e.id",
    "SELECT d.dname, COUNT(e.id) FROM dept d LEFT JOIN emp e ON e.dept = d.id GROUP BY d.dname",
    "SELECT * FROM dept d JOIN emp e ON e.dept = d.id WHERE e.id < 3",
    "SELECT d.*, e.name FROM dept d JOIN emp e ON e.dept = d.id",
    "SELECT x.a, y.b FROM t x JOIN t y ON x.a = y.b",
    # subqueries
    "SELECT name FROM emp WHERE dept IN (SELECT id FROM dept WHERE city IS NOT NULL)",
    "SELECT name FROM emp WHERE dept NOT IN (SELECT id FROM dept)",
    "SELECT name FROM emp WHERE dept NOT IN (SELECT a FROM t)",
    "SELECT name FROM emp WHERE id IN (SELECT a FROM t)",
    "SELECT name FROM emp e WHERE EXISTS (SELECT 1 FROM dept d WHERE d.id = e.dept)",
    "SELECT name FROM emp e WHERE NOT EXISTS (SELECT 1 FROM emp x WHERE x.boss = e.id)",
    "SELECT name, (SELECT dname FROM dept d WHERE d.id = e.dept) FROM emp e",
    "SELECT name, (SELECT COUNT(*) FROM emp x WHERE x.boss = e.id) FROM emp e",
    "SELECT name FROM emp WHERE salary > (SELECT AVG(salary) FROM emp)",
    "SELECT name FROM emp e WHERE salary = (SELECT MAX(salary) FROM emp x WHERE x.dept = e.dept)",
    "SELECT s.dept, s.total FROM (SELECT dept, SUM(salary) AS total FROM emp GROUP BY dept) AS s WHERE s.total > 5000",
    "SELECT * FROM (SELECT id, name FROM emp WHERE id < 4) sub ORDER BY id DESC",
    "SELECT (SELECT MAX(id) FROM emp), (SELECT MIN(id) FROM dept)",
    "SELECT a FROM t WHERE a IN (SELECT dept / 10 FROM emp)",
    # CTEs and set operations
    "WITH rich AS (SELECT * FROM emp WHERE salary >= 5000) SELECT name FROM rich",
    "WITH d AS (SELECT dept, COUNT(*) AS n FROM emp GROUP BY dept), m AS (SELECT MAX(n) AS mx FROM d) SELECT dept FROM d, m WHERE n = mx",
    "WITH x AS (SELECT id FROM dept) SELECT a.id, b.id FROM x a JOIN x b ON a.id < b.id",
    "SELECT dept FROM emp UNION SELECT id FROM dept",
    "SELECT dept FROM emp UNION ALL SELECT id FROM dept",
    "SELECT dept FROM emp INTERSECT SELECT id FROM dept",
    "SELECT dept FROM emp EXCEPT SELECT id FROM dept",
    "SELECT id FROM dept EXCEPT SELECT dept FROM emp",
    "SELECT name FROM emp WHERE id < 3 UNION SELECT dname FROM dept ORDER BY 1",
    "SELECT id, name FROM emp WHERE id < 3 UNION ALL SELECT id, dname FROM dept ORDER BY id DESC LIMIT 4",
    # NULL handling in aggregates and joins
    "SELECT SUM(b), COUNT(b), AVG(b) FROM t WHERE a IS NULL",
    "SELECT t1.a, t2.a FROM t t1 JOIN t t2 ON t1.a = t2.a",
    "SELECT c, COUNT(*) FROM t GROUP BY c",
    "SELECT MAX(bonus), MIN(bonus) FROM emp WHERE bonus IS NULL",
]


def ordered(query: str) -> bool:
    """Whether the query's own (outermost) ORDER BY fixes the order of its rows."""
    return "ORDER BY" in query.upper().split(")")[-1]


@pytest.fixture(scope="module")
def oracle(postgres: Any) -> Iterator[Any]:
    with postgres.connect("differential") as conn:
        for sql in split_statements(SCHEMA):
            conn.execute(sql)
        yield conn


@pytest.fixture(scope="module")
def memory_engine() -> Any:
    from .conftest import EngineRunner

    runner = EngineRunner()
    runner.run(SCHEMA)
    return runner


@pytest.fixture(scope="module")
def driver_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from .conftest import DriverRunner

    runner = DriverRunner(str(tmp_path_factory.mktemp("diff") / "db"))
    runner.run(SCHEMA)
    yield runner
    runner.close()


@pytest.mark.parametrize("query", CASES)
def test_query_on_the_engine_matches_postgres(query: str, memory_engine: Any, oracle: Any) -> None:
    Differential(memory_engine.run, oracle).check(query, ordered=ordered(query))


@pytest.mark.parametrize("query", CASES)
def test_query_through_driver_matches_postgres(query: str, driver_engine: Any, oracle: Any) -> None:
    Differential(driver_engine.run, oracle).check(query, ordered=ordered(query))
