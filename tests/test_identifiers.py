"""Identifiers follow PostgreSQL: unquoted names fold to lower case, quoted ones are exact.

The catalog stores names as the parser folded them, so ``"Users"`` and ``users`` are
two tables, and a database with mixed-case names replays to the same state.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import offsetdb
from offsetdb.query.database import replay


def test_quoted_mixed_case_tables_and_columns_are_usable_and_distinct(tmp_path: Path) -> None:
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    cur = conn.cursor()
    cur.execute('CREATE TABLE "Users" ("Id" INT PRIMARY KEY, "Name" TEXT, plain INT)')
    cur.execute("CREATE TABLE Users (id INT PRIMARY KEY)")  # folds to users: another table
    cur.execute('INSERT INTO "Users" VALUES (1, $$Ada$$, 7)')
    cur.execute("INSERT INTO users VALUES (2)")
    assert cur.execute('SELECT u."Id", "Name", PLAIN FROM "Users" u').fetchall() == [(1, "Ada", 7)]
    assert cur.execute("SELECT id FROM USERS").fetchall() == [(2,)]
    assert sorted(conn.list_tables()) == ["Users", "users"]
    with pytest.raises(offsetdb.ProgrammingError) as e:
        cur.execute('SELECT id FROM "Users"')
    assert e.value.sqlstate == "42703"
    with pytest.raises(offsetdb.ProgrammingError) as e:
        cur.execute('CREATE TABLE "Users" (x INT)')
    assert e.value.sqlstate == "42P07"
    cur.execute('UPDATE "Users" SET "Name" = \'Bea\' WHERE "Id" = 1')
    assert [c.name for c in conn.describe_table("Users")] == ["Id", "Name", "plain"]
    conn.close()


def test_live_state_with_mixed_case_names_equals_a_replay_of_the_log(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    conn = offsetdb.connect(path, autocommit=True)
    cur = conn.cursor()
    cur.execute('CREATE TABLE "Orders" ("Id" INT PRIMARY KEY, "Total" NUMERIC(10,2) UNIQUE)')
    cur.execute('CREATE TABLE orders (id INT PRIMARY KEY, total NUMERIC(10,2))')
    cur.execute('CREATE TABLE "a b" ("x y" INT)')
    for i in range(20):
        cur.execute('INSERT INTO "Orders" VALUES (?, ?)', (i, i * 1.5))
        cur.execute("INSERT INTO orders VALUES (?, ?)", (i, i * 2))
        cur.execute('INSERT INTO "a b" VALUES (?)', (i,))
    cur.execute('DELETE FROM "Orders" WHERE "Id" < 5')
    cur.execute('DROP TABLE "a b"')
    digest = conn.state_digest()
    conn.close()
    assert replay(path, str(tmp_path / "replayed")) == digest
    again = offsetdb.connect(str(tmp_path / "replayed"))
    assert again.cursor().execute('SELECT count(*) FROM "Orders"').fetchall() == [(15,)]
    assert again.cursor().execute("SELECT count(*) FROM orders").fetchall() == [(20,)]
    again.close()
