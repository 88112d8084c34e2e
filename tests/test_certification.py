"""Certification decides like the design says, driven below SQL through transactions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from storage_helpers import accounts_table, begin, commit

from offsetdb.query.context import Conjunct, ScanFilter
from offsetdb.query.database import Database


@pytest.fixture
def db(open_database: Callable[[str], Database]) -> Iterator[Database]:
    database = open_database("db")
    txn = begin(database)
    txn.create_table(accounts_table())
    table = txn._created["accounts"]
    for i in range(5):
        txn.insert(table, (i, 100, f"user{i}@example.com"))
    assert commit(database, txn).committed
    yield database
    database.release()


def bump(txn, key_id: int, delta: int) -> None:
    table = txn.table("accounts")
    key, row = txn.get(table, [key_id])
    txn.update(table, key, (row[0], row[1] + delta, row[2]))


@pytest.mark.parametrize("isolation", ["SERIALIZABLE", "SNAPSHOT"])
def test_lost_update_is_prevented_at_both_levels(db: Database, isolation: str) -> None:
    first, second = begin(db, isolation), begin(db, isolation)
    bump(first, 1, 10)
    bump(second, 1, 20)
    assert commit(db, first).committed
    outcome = commit(db, second)
    assert not outcome.committed and outcome.sqlstate == "40001"
    assert "(id)=(1)" in (outcome.message or "")


def write_skew(db: Database, isolation: str) -> tuple[bool, bool]:
    """Two transactions each read both rows 0 and 1 and write a different one."""
    first, second = begin(db, isolation), begin(db, isolation)
    for txn in (first, second):
        list(txn.scan(txn.table("accounts"), ScanFilter((Conjunct(0, "<=", (1,)),))))
    bump(first, 0, -100)
    bump(second, 1, -100)
    return commit(db, first).committed, commit(db, second).committed


def test_write_skew_is_prevented_under_serializable(db: Database) -> None:
    assert write_skew(db, "SERIALIZABLE") == (True, False)


def test_write_skew_is_allowed_under_snapshot(db: Database) -> None:
    assert write_skew(db, "SNAPSHOT") == (True, True)


def test_phantom_insert_into_scanned_range_aborts_the_scanner(db: Database) -> None:
    scanner, inserter = begin(db), begin(db)
    table = scanner.table("accounts")
    seen = list(scanner.scan(table, ScanFilter((Conjunct(0, ">=", (10,)),))))
    assert seen == []
    bump(scanner, 0, 1)  # the scanner writes something, so it needs certification
    inserter.insert(inserter.table("accounts"), (42, 0, "new@example.com"))
    assert commit(db, inserter).committed
    assert commit(db, scanner).sqlstate == "40001"


def test_insert_outside_scanned_range_does_not_conflict(db: Database) -> None:
    scanner, inserter = begin(db), begin(db)
    list(scanner.scan(scanner.table("accounts"), ScanFilter((Conjunct(0, ">=", (10,)),))))
    bump(scanner, 0, 1)
    inserter.insert(inserter.table("accounts"), (7, 0, "seven@example.com"))
    assert commit(db, inserter).committed
    assert commit(db, scanner).committed


def test_concurrent_inserts_of_one_primary_key_let_exactly_one_win(db: Database) -> None:
    a, b = begin(db, "SNAPSHOT"), begin(db, "SNAPSHOT")
    a.insert(a.table("accounts"), (99, 1, "a@example.com"))
    b.insert(b.table("accounts"), (99, 2, "b@example.com"))
    assert commit(db, a).committed
    outcome = commit(db, b)
    assert outcome.sqlstate == "23505" and "(id)=(99)" in (outcome.message or "")


def test_concurrent_inserts_of_one_unique_value_let_exactly_one_win(db: Database) -> None:
    a, b = begin(db, "SNAPSHOT"), begin(db, "SNAPSHOT")
    a.insert(a.table("accounts"), (100, 1, "same@example.com"))
    b.insert(b.table("accounts"), (101, 2, "same@example.com"))
    assert commit(db, a).committed
    outcome = commit(db, b)
    assert outcome.sqlstate == "23505" and "same@example.com" in (outcome.message or "")


def test_unique_value_moved_between_rows_in_one_transaction_commits(db: Database) -> None:
    txn = begin(db)
    table = txn.table("accounts")
    key, row = txn.get(table, [0])
    txn.update(table, key, (0, row[1], "moved@example.com"))
    txn.insert(table, (50, 0, "user0@example.com"))
    assert commit(db, txn).committed


def test_read_only_transaction_needs_no_record_and_never_aborts(db: Database) -> None:
    reader = begin(db)
    list(reader.scan(reader.table("accounts")))
    writer = begin(db)
    bump(writer, 2, 5)
    assert commit(db, writer).committed
    assert not reader.has_writes


def test_snapshot_older_than_the_window_is_refused(open_database: Callable[[str], Database]) -> None:
    database = open_database("small")
    try:
        database.materializer.window.size = 3
        txn = begin(database)
        txn.create_table(accounts_table())
        assert commit(database, txn).committed
        stale = begin(database)
        table = stale.table("accounts")
        for i in range(5):
            other = begin(database)
            other.insert(other.table("accounts"), (i, 0, None))
            assert commit(database, other).committed
        stale.insert(table, (100, 0, None))
        outcome = commit(database, stale)
        assert outcome.sqlstate == "72000"
    finally:
        database.release()


def test_concurrent_create_table_of_one_name_lets_one_win(db: Database) -> None:
    from offsetdb.materializers.catalog import Column, TableDef
    from offsetdb.types import Kind, SqlType

    definition = TableDef("things", (Column("x", SqlType(Kind.INTEGER)),))
    a, b = begin(db), begin(db)
    a.create_table(definition)
    b.create_table(definition)
    assert commit(db, a).committed
    assert not commit(db, b).committed


def test_write_to_a_table_dropped_concurrently_aborts(db: Database) -> None:
    writer, dropper = begin(db, "SNAPSHOT"), begin(db, "SNAPSHOT")
    writer.insert(writer.table("accounts"), (77, 0, None))
    dropper.drop_table("accounts")
    assert commit(db, dropper).committed
    outcome = commit(db, writer)
    assert outcome.sqlstate == "40001" and "accounts" in (outcome.message or "")


def test_garbage_collection_keeps_current_rows_and_refuses_collected_snapshots(db: Database) -> None:
    old_snapshot = db.materializer.applied_offset
    for _ in range(20):
        txn = begin(db)
        for i in range(5):
            bump(txn, i, 1)
        assert commit(db, txn).committed
    before = db.digest()
    horizon = db.materializer.snapshots.advance(db.materializer.applied_offset - 2)
    deleted = db.materializer.gc.collect(horizon)
    assert deleted >= 5 * 18
    assert db.digest() == before
    reader = begin(db)
    assert [row[1] for _, row in reader.scan(reader.table("accounts"))] == [120] * 5
    with pytest.raises(Exception) as caught:
        db.materializer.snapshots.pin(old_snapshot)
    assert getattr(caught.value, "sqlstate", None) == "72000"


def test_rows_of_a_dropped_table_are_collected_once_below_the_horizon(db: Database) -> None:
    table_id = db.materializer.catalog.latest().require("accounts").table_id
    txn = begin(db)
    txn.drop_table("accounts")
    assert commit(db, txn).committed
    from offsetdb.keys import table_prefix
    from offsetdb.materializers import mvcc

    prefix = table_prefix(table_id)
    assert list(mvcc.scan_live(db.store.data, prefix, db.materializer.applied_offset - 1))
    db.materializer.gc.collect(db.materializer.snapshots.advance(db.materializer.applied_offset))
    it = db.store.data.iter()
    it.seek(prefix)
    assert not (it.valid() and it.key().startswith(prefix)), "dropped rows survived collection"


def test_a_restarted_node_certifies_like_one_that_never_stopped(
    open_database: Callable[[str], Database],
) -> None:
    """The predicate window is rebuilt from the log, so a commit record written before a
    restart and appended after it gets the decision it would have got without one."""
    from offsetdb.schemas.codec import encode_log_record

    database = open_database("db")
    setup = begin(database)
    setup.create_table(accounts_table())
    assert commit(database, setup).committed
    scanner = begin(database)
    list(scanner.scan(scanner.table("accounts"), ScanFilter((Conjunct(0, ">=", (10,)),))))
    scanner.insert(scanner.table("accounts"), (1, 0, None))
    record = encode_log_record(scanner.build_record(), "Transaction")
    phantom = begin(database)
    phantom.insert(phantom.table("accounts"), (11, 0, None))
    assert commit(database, phantom).committed
    del scanner, phantom, setup
    database.release()

    database = open_database("db")
    try:
        offset = database.writer.append(record)
        database.materializer.wait_applied(offset, None)
        outcome = database.materializer.outcome(offset)
        assert outcome.sqlstate == "40001" and "predicate" in (outcome.message or "")
    finally:
        database.release()


def test_a_record_that_does_not_decode_is_rejected_and_the_log_moves_on(tmp_path: Path) -> None:
    import offsetdb
    from offsetdb.query.database import replay

    path = str(tmp_path / "db")
    conn = offsetdb.connect(path, autocommit=True)
    conn.cursor().execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    database = Database.acquire(path)
    offset = database.writer.append(b"\x02\x00garbage from some other producer")
    outcome = database.materializer.outcome(offset)
    assert (outcome.committed, outcome.sqlstate) == (False, "XX001")
    conn.cursor().execute("INSERT INTO t VALUES (1)")
    assert conn.cursor().execute("SELECT count(*) FROM t").fetchone() == (1,)
    txn_id = database.materializer.outcome(conn.last_commit_offset).txn_id
    assert conn.transaction_outcome(txn_id) == (conn.last_commit_offset, True, None)
    assert conn.transaction_outcome("no-such-transaction") is None
    digest = conn.state_digest()
    database.release()
    conn.close()
    assert replay(path, str(tmp_path / "replayed")) == digest
