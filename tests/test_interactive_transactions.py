"""What users of interactive transactions rely on, through the driver, on both backends.

Choosing the isolation level (BEGIN ISOLATION LEVEL, SET TRANSACTION, the session
default), each observed through the one decision the levels differ on: whether write
skew commits. A transaction reading its own writes while nobody else sees them until
COMMIT; ROLLBACK discarding them; read-only transactions never aborting; a conflict
surfacing at COMMIT as 40001 naming table and key; PostgreSQL's rule that an error
aborts the open transaction (25P02 until ROLLBACK); and autocommit statements retrying
conflicts transparently, until their retries run out.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kafka_broker import Broker
from test_isolation_anomalies import Cluster, assert_conflict, run

import offsetdb


@pytest.fixture
def cluster(db_target: str, tmp_path: Path) -> Iterator[Cluster]:
    nodes = Cluster(db_target, tmp_path)
    yield nodes
    nodes.close()


# --- choosing the isolation level -----------------------------------------------------

DOCTORS = "SELECT count(*) FROM doctors WHERE on_call = true"


class SkewPair:
    """Two connections that play the on-call write skew, round after round."""

    def __init__(self, cluster: Cluster, autocommit: bool = True) -> None:
        self.cluster = cluster
        self.admin = cluster.connect(0, autocommit=True)
        run(self.admin, "CREATE TABLE doctors (name TEXT PRIMARY KEY, on_call BOOLEAN NOT NULL)")
        run(self.admin, "INSERT INTO doctors VALUES ('alice', true), ('bob', true)")
        self.alice = cluster.connect(0, autocommit=autocommit)
        self.bob = cluster.connect(1, autocommit=autocommit)

    def both_commit(self, *start: str) -> bool:
        """Both go off call after seeing two on call; whether both commits succeeded.

        ``start`` opens each transaction (none: the driver's implicit transaction).
        The first committer always succeeds; the second only where write skew is allowed.
        """
        run(self.admin, "UPDATE doctors SET on_call = true")
        self.cluster.settle()
        for conn in (self.alice, self.bob):
            for statement in start:
                run(conn, statement)
        assert run(self.alice, DOCTORS) == [(2,)]
        assert run(self.bob, DOCTORS) == [(2,)]
        run(self.alice, "UPDATE doctors SET on_call = false WHERE name = 'alice'")
        run(self.bob, "UPDATE doctors SET on_call = false WHERE name = 'bob'")
        self.commit(self.alice)
        try:
            self.commit(self.bob)
        except offsetdb.SerializationFailure as e:
            assert_conflict(e, "doctors", r"\(name\)=\(alice\)")
            return False
        self.cluster.settle()
        assert run(self.admin, DOCTORS) == [(0,)]
        return True

    @staticmethod
    def commit(conn: offsetdb.Connection) -> None:
        if conn.autocommit:
            run(conn, "COMMIT")
        else:
            conn.commit()


def test_begin_isolation_level_sets_the_level_of_that_transaction_only(cluster: Cluster) -> None:
    pair = SkewPair(cluster)
    assert pair.both_commit("BEGIN ISOLATION LEVEL SNAPSHOT")
    assert not pair.both_commit("BEGIN")  # the default again: SERIALIZABLE
    assert not pair.both_commit("BEGIN ISOLATION LEVEL SERIALIZABLE")
    assert pair.both_commit("START TRANSACTION ISOLATION LEVEL SNAPSHOT")
    assert not pair.both_commit("BEGIN TRANSACTION")
    # Weaker levels run as SNAPSHOT: stronger than asked, as the standard allows.
    assert pair.both_commit("BEGIN ISOLATION LEVEL REPEATABLE READ")
    assert pair.both_commit("BEGIN TRANSACTION ISOLATION LEVEL READ COMMITTED, READ WRITE")


def test_set_transaction_before_the_first_query_sets_the_level_of_that_transaction(cluster: Cluster) -> None:
    pair = SkewPair(cluster)
    assert pair.both_commit("BEGIN", "SET TRANSACTION ISOLATION LEVEL SNAPSHOT")
    assert not pair.both_commit("BEGIN")
    assert not pair.both_commit("BEGIN ISOLATION LEVEL SNAPSHOT", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
    # Modes that name no level leave it as it is.
    assert pair.both_commit("BEGIN ISOLATION LEVEL SNAPSHOT", "SET TRANSACTION READ WRITE")


def test_set_transaction_after_the_first_query_fails_with_25001_and_aborts_the_transaction(
    cluster: Cluster,
) -> None:
    conn = cluster.connect(0, autocommit=True)
    run(conn, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
    run(conn, "BEGIN")
    run(conn, "INSERT INTO t VALUES (1)")
    with pytest.raises(offsetdb.ProgrammingError) as caught:
        run(conn, "SET TRANSACTION ISOLATION LEVEL SNAPSHOT")
    assert caught.value.sqlstate == "25001"
    assert "before any query" in caught.value.message
    # As in PostgreSQL, the failed statement aborted the transaction.
    with pytest.raises(offsetdb.OperationalError) as aborted:
        run(conn, "SELECT count(*) FROM t")
    assert aborted.value.sqlstate == "25P02"
    run(conn, "ROLLBACK")
    assert run(conn, "SELECT count(*) FROM t") == [(0,)]


def test_set_transaction_outside_a_transaction_sets_the_session_default(cluster: Cluster) -> None:
    """``SET SESSION CHARACTERISTICS`` does not parse; ``SET TRANSACTION`` with no
    transaction open is how a session changes its default level."""
    pair = SkewPair(cluster)
    with pytest.raises(offsetdb.NotSupportedError) as unsupported:
        run(pair.alice, "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SNAPSHOT")
    assert unsupported.value.sqlstate == "0A000"
    assert "SET SESSION CHARACTERISTICS" in unsupported.value.message
    for conn in (pair.alice, pair.bob):
        run(conn, "SET TRANSACTION ISOLATION LEVEL SNAPSHOT")
    assert pair.both_commit("BEGIN")
    assert pair.both_commit("BEGIN")  # still the default after a commit
    assert not pair.both_commit("BEGIN ISOLATION LEVEL SERIALIZABLE")  # a transaction's own level wins
    for conn in (pair.alice, pair.bob):
        run(conn, "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
    assert not pair.both_commit("BEGIN")
    with pytest.raises(offsetdb.ProgrammingError) as caught:
        run(pair.alice, "SET TRANSACTION ISOLATION LEVEL CHAOS")
    assert caught.value.sqlstate == "42601"


def test_set_transaction_before_the_first_statement_of_a_pep_249_connection_sets_its_default(
    cluster: Cluster,
) -> None:
    """Without autocommit every statement runs in a transaction the driver opens; a
    ``SET TRANSACTION`` before the first one sets the level of every later transaction."""
    pair = SkewPair(cluster, autocommit=False)
    assert not pair.both_commit()
    for conn in (pair.alice, pair.bob):
        run(conn, "SET TRANSACTION ISOLATION LEVEL SNAPSHOT")
    assert pair.both_commit()
    assert pair.both_commit()
    assert not pair.both_commit("BEGIN ISOLATION LEVEL SERIALIZABLE")


def test_connection_isolation_level_sets_the_default_of_its_transactions(cluster: Cluster) -> None:
    pair = SkewPair(cluster)
    assert pair.alice.isolation_level == "SERIALIZABLE"
    for conn in (pair.alice, pair.bob):
        conn.isolation_level = "snapshot"
    assert pair.alice.isolation_level == "SNAPSHOT"
    assert pair.both_commit("BEGIN")
    pair.alice.isolation_level = pair.bob.isolation_level = "REPEATABLE READ"  # runs as SNAPSHOT
    assert pair.alice.isolation_level == "SNAPSHOT"
    assert pair.both_commit("BEGIN")
    with pytest.raises(offsetdb.ProgrammingError) as unknown:
        pair.alice.isolation_level = "CHAOS"
    assert unknown.value.sqlstate == "22023" and "CHAOS" in unknown.value.message
    # Not in the middle of a transaction that has read at its snapshot.
    run(pair.alice, "BEGIN")
    run(pair.alice, DOCTORS)
    with pytest.raises(offsetdb.ProgrammingError) as active:
        pair.alice.isolation_level = "SERIALIZABLE"
    assert active.value.sqlstate == "25001"
    run(pair.alice, "ROLLBACK")


def test_connect_takes_the_isolation_level_and_names_unknown_settings(tmp_path: Path) -> None:
    conn = offsetdb.connect(str(tmp_path / "db"), isolation_level="SNAPSHOT")
    assert conn.isolation_level == "SNAPSHOT"
    conn.close()
    with pytest.raises(offsetdb.InterfaceError) as unknown:
        offsetdb.connect(str(tmp_path / "db"), isolation="SNAPSHOT")
    assert "isolation" in unknown.value.message and "isolation_level" in unknown.value.message


# --- what a transaction sees -------------------------------------------------------------

SEED = [(1, "a", 10), (2, "a", 20), (3, "b", 30), (4, "b", 40)]


def write_a_bit_of_everything(conn: offsetdb.Connection) -> None:
    """Inserts, updates, deletes; rows inserted then changed, deleted then inserted again."""
    run(conn, "INSERT INTO t VALUES (5, 'b', 50)")
    run(conn, "UPDATE t SET v = 21 WHERE id = 2")
    run(conn, "DELETE FROM t WHERE id = 3")
    run(conn, "UPDATE t SET grp = 'c' WHERE id = 5")
    run(conn, "INSERT INTO t VALUES (6, 'a', 60)")
    run(conn, "DELETE FROM t WHERE id = 6")
    run(conn, "DELETE FROM t WHERE id = 4")
    run(conn, "INSERT INTO t VALUES (4, 'c', 44)")
    run(conn, "UPDATE t SET v = v + 1 WHERE grp = 'a'")


AFTER = [(1, "a", 11), (2, "a", 22), (4, "c", 44), (5, "c", 50)]


def views(conn: offsetdb.Connection) -> dict[str, list[Any]]:
    """The table read every way: by key, by key range, by a column range, aggregated."""
    return {
        "all": run(conn, "SELECT * FROM t ORDER BY id"),
        "keys": [run(conn, "SELECT grp, v FROM t WHERE id = ?", (i,)) for i in range(1, 7)],
        "key range": run(conn, "SELECT id FROM t WHERE id BETWEEN 2 AND 5 ORDER BY id"),
        "column range": run(conn, "SELECT id FROM t WHERE v >= 40 ORDER BY id"),
        "column equality": run(conn, "SELECT id FROM t WHERE grp = 'c' ORDER BY id"),
        "aggregate": run(conn, "SELECT grp, count(*), sum(v) FROM t GROUP BY grp ORDER BY grp"),
        "count": run(conn, "SELECT count(*), max(v) FROM t"),
    }


def expected_views(rows: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    by_id = {r[0]: r for r in rows}
    groups: dict[str, list[int]] = {}
    for _, grp, v in rows:
        groups.setdefault(grp, []).append(v)
    return {
        "all": rows,
        "keys": [[by_id[i][1:]] if i in by_id else [] for i in range(1, 7)],
        "key range": [(r[0],) for r in rows if 2 <= r[0] <= 5],
        "column range": [(r[0],) for r in rows if r[2] >= 40],
        "column equality": [(r[0],) for r in rows if r[1] == "c"],
        "aggregate": [(g, len(vs), sum(vs)) for g, vs in sorted(groups.items())],
        "count": [(len(rows), max(r[2] for r in rows))],
    }


def test_a_transaction_reads_its_own_writes_and_others_see_them_only_after_commit(cluster: Cluster) -> None:
    setup = cluster.connect(0, autocommit=True)
    run(setup, "CREATE TABLE t (id INTEGER PRIMARY KEY, grp TEXT, v INTEGER)")
    setup.cursor().executemany("INSERT INTO t VALUES (?, ?, ?)", SEED)
    cluster.settle()
    before = expected_views(SEED)
    early = cluster.connect(1)  # a transaction whose snapshot predates the writer's
    assert views(early) == before

    writer = cluster.connect(0)
    write_a_bit_of_everything(writer)
    assert views(writer) == expected_views(AFTER)

    late = cluster.connect(1)  # began after the writes, before the commit
    cluster.settle()
    assert views(late) == before
    writer.commit()
    cluster.settle()
    assert views(early) == before  # both keep their snapshots
    assert views(late) == before
    early.commit()
    late.rollback()
    assert views(early) == expected_views(AFTER)
    assert views(late) == expected_views(AFTER)


def test_rollback_discards_the_transactions_writes(cluster: Cluster) -> None:
    conn = cluster.connect(0, autocommit=True)
    run(conn, "CREATE TABLE t (id INTEGER PRIMARY KEY, grp TEXT, v INTEGER)")
    conn.cursor().executemany("INSERT INTO t VALUES (?, ?, ?)", SEED)
    offset = conn.last_commit_offset
    run(conn, "BEGIN")
    write_a_bit_of_everything(conn)
    assert views(conn) == expected_views(AFTER)
    run(conn, "ROLLBACK")
    assert views(conn) == expected_views(SEED)
    assert conn.last_commit_offset == offset  # nothing was appended
    other = cluster.connect(1)
    assert views(other) == expected_views(SEED)


def test_read_only_transactions_never_abort_whatever_changed_under_them(cluster: Cluster) -> None:
    setup = cluster.connect(0, autocommit=True)
    run(setup, "CREATE TABLE t (id INTEGER PRIMARY KEY, grp TEXT, v INTEGER)")
    setup.cursor().executemany("INSERT INTO t VALUES (?, ?, ?)", SEED)
    for level in ("SERIALIZABLE", "SNAPSHOT"):
        reader = cluster.connect(0, autocommit=True)
        run(reader, f"BEGIN ISOLATION LEVEL {level}")
        seen = views(reader)
        writer = cluster.connect(1, autocommit=True)
        run(writer, "UPDATE t SET v = v * 2")  # every row it read, and every aggregate
        run(writer, "INSERT INTO t VALUES (?, 'c', 45)", (10 + len(level),))  # into every range
        run(writer, "DELETE FROM t WHERE id = 2")
        cluster.settle()
        assert views(reader) == seen
        run(reader, "COMMIT")
        assert reader.last_commit_offset is None  # it appended nothing
        assert views(reader) != seen  # the next transaction sees the writer's commits


def test_a_conflict_fails_the_commit_not_the_statement_with_40001_naming_table_and_key(
    cluster: Cluster,
) -> None:
    setup = cluster.connect(0, autocommit=True)
    run(setup, "CREATE TABLE accounts (owner TEXT PRIMARY KEY, balance INTEGER)")
    run(setup, "INSERT INTO accounts VALUES ('ann', 100), ('ben', 100)")
    first, second = cluster.connect(0), cluster.connect(1, autocommit=True)
    run(second, "BEGIN")
    run(first, "UPDATE accounts SET balance = balance - 10 WHERE owner = 'ann'")
    assert run(second, "SELECT balance FROM accounts WHERE owner = 'ann'") == [(100,)]
    first.commit()
    cluster.settle()
    # Nothing is locked and nothing fails early: the statement runs at its snapshot.
    run(second, "UPDATE accounts SET balance = balance + 5 WHERE owner = 'ann'")
    assert run(second, "SELECT balance FROM accounts WHERE owner = 'ann'") == [(105,)]
    with pytest.raises(offsetdb.SerializationFailure) as caught:
        run(second, "COMMIT")
    assert_conflict(caught.value, "accounts", r"\(owner\)=\(ann\)")
    # The failed COMMIT ended the transaction: the connection goes on at once.
    cluster.settle()
    assert run(second, "SELECT balance FROM accounts WHERE owner = 'ann'") == [(90,)]
    run(second, "UPDATE accounts SET balance = balance + 5 WHERE owner = 'ann'")
    cluster.settle()
    assert run(setup, "SELECT owner, balance FROM accounts ORDER BY owner") == [("ann", 95), ("ben", 100)]


@pytest.mark.parametrize("bad", ["SELEC 1", "SELECT * FROM missing", "INSERT INTO t VALUES ('x')"])
def test_any_error_inside_a_transaction_aborts_it_until_rollback(cluster: Cluster, bad: str) -> None:
    setup = cluster.connect(0, autocommit=True)
    run(setup, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
    at_the_prompt, pep_249 = cluster.connect(0, autocommit=True), cluster.connect(0)
    run(at_the_prompt, "BEGIN")
    for conn in (at_the_prompt, pep_249):
        run(conn, "INSERT INTO t VALUES (1)")
        with pytest.raises(offsetdb.Error) as caught:
            run(conn, bad)
        assert caught.value.sqlstate not in ("25P02", "40001")
        with pytest.raises(offsetdb.OperationalError) as caught:
            run(conn, "SELECT count(*) FROM t")
        assert caught.value.sqlstate == "25P02"
    with pytest.raises(offsetdb.OperationalError) as caught:
        run(at_the_prompt, "COMMIT")  # it cannot commit: the insert before the error is gone
    assert caught.value.sqlstate == "25P02"
    pep_249.rollback()
    for conn in (at_the_prompt, pep_249):
        assert run(conn, "SELECT count(*) FROM t") == [(0,)]


# --- autocommit retries ---------------------------------------------------------------


@contextmanager
def conflict_before_append(
    victim: offsetdb.Connection, inject: Callable[[], object], times: int
) -> Iterator[list[int]]:
    """Run ``inject`` (a real commit) just before each of the victim's first ``times`` appends.

    The seam is the node's group-commit writer: the victim's record is already built at
    its snapshot, so a commit injected there lands between that snapshot and its
    append, exactly as a concurrent writer's would. Yields the list of the victim's
    append attempts (one entry per record it appended).
    """
    database = victim._database
    assert database is not None
    original = database.writer.append
    attempts: list[int] = []
    injecting = False

    def append(record: bytes) -> int:
        nonlocal injecting
        if injecting:  # the injected commit's own append, on the same node
            return original(record)
        attempts.append(len(record))
        if len(attempts) <= times:
            injecting = True
            try:
                inject()
            finally:
                injecting = False
        return original(record)

    database.writer.append = append
    try:
        yield attempts
    finally:
        del database.writer.append


def counter_database(target: str, retries: int) -> tuple[offsetdb.Connection, offsetdb.Connection]:
    """The victim (opening the database with ``autocommit_retries``) and a rival writer."""
    victim = offsetdb.connect(target, autocommit=True, autocommit_retries=retries)
    rival = offsetdb.connect(target, autocommit=True)
    run(victim, "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)")
    run(victim, "INSERT INTO counter VALUES (1, 0)")
    return victim, rival


INCREMENT = "UPDATE counter SET n = n + 1 WHERE id = 1"


def test_autocommit_with_no_retries_left_fails_with_the_conflicts_40001(db_target: str) -> None:
    victim, rival = counter_database(db_target, retries=0)
    with (
        conflict_before_append(victim, lambda: run(rival, "UPDATE counter SET n = n + 100 WHERE id = 1"), 1) as attempts,
        pytest.raises(offsetdb.SerializationFailure) as caught,
    ):
        run(victim, INCREMENT)
    assert len(attempts) == 1
    assert_conflict(caught.value, "counter", r"\(id\)=\(1\)")
    assert run(victim, "SELECT n FROM counter") == [(100,)]
    run(victim, INCREMENT)  # no rival this time: commits at the first attempt
    assert run(victim, "SELECT n FROM counter") == [(101,)]
    victim.close()
    rival.close()


def test_autocommit_retries_conflicts_transparently_until_the_retries_run_out(db_target: str) -> None:
    victim, rival = counter_database(db_target, retries=2)

    def rival_commits() -> None:
        run(rival, "UPDATE counter SET n = n + 100 WHERE id = 1")

    with conflict_before_append(victim, rival_commits, 2) as attempts:
        cur = victim.cursor().execute(INCREMENT)
    assert len(attempts) == 3 and cur.rowcount == 1
    # Two rival commits and the increment, applied once, from its third snapshot.
    assert run(victim, "SELECT n FROM counter") == [(201,)]

    with (
        conflict_before_append(victim, rival_commits, 3) as attempts,
        pytest.raises(offsetdb.SerializationFailure) as caught,
    ):
        run(victim, INCREMENT)
    assert len(attempts) == 3  # the first try and autocommit_retries=2 more
    assert_conflict(caught.value, "counter", r"\(id\)=\(1\)")
    assert run(victim, "SELECT n FROM counter") == [(501,)]
    victim.close()
    rival.close()


def test_autocommit_increments_from_two_kafka_nodes_lose_nothing(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    """Threads on two replicas of one log increment one row; every increment lands once.

    (One node with many threads: tests/test_driver.py.)
    """
    url = f"kafka://{kafka_broker.bootstrap}/t{uuid.uuid4().hex[:12]}"
    dirs = [str(tmp_path / "a"), str(tmp_path / "b")]
    nodes = [offsetdb.connect(url, data_dir=d, autocommit=True) for d in dirs]
    run(nodes[0], "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)")
    run(nodes[0], "INSERT INTO counter VALUES (1, 0)")
    nodes[1].sync(nodes[0].last_commit_offset)
    per_thread, threads_per_node = 15, 2
    failures: list[BaseException] = []

    def work(data_dir: str) -> None:
        try:
            conn = offsetdb.connect(url, data_dir=data_dir, autocommit=True)
            for _ in range(per_thread):
                run(conn, INCREMENT)
            conn.close()
        except BaseException as e:  # reported by the main thread
            failures.append(e)

    workers = [threading.Thread(target=work, args=(d,)) for d in dirs for _ in range(threads_per_node)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []
    total = per_thread * threads_per_node * len(dirs)
    newest = max(conn.sync() for conn in nodes)
    for conn in nodes:
        conn.sync(newest)
        assert run(conn, "SELECT n FROM counter") == [(total,)]
    assert nodes[0].state_digest() == nodes[1].state_digest()
    for conn in nodes:
        conn.close()
