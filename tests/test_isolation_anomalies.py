"""Isolation anomalies at the SQL level, one test per anomaly, on both backends.

Named after Adya's phenomena (and Berenson et al.'s), with the interleavings of Martin
Kleppmann's Hermitage suite: two or three connections in one thread run their
statements in an explicit order, so every interleaving is deterministic. Each test runs
its interleaving under SERIALIZABLE (the default) and under SNAPSHOT and asserts what each
level decides; where SNAPSHOT admits the anomaly, the test shows it happening, so the
two levels are seen to differ.

Transactions buffer their writes and are certified when their record reaches the log
(see materializers/certifier.py): nothing blocks, and the loser of a conflict learns it
at COMMIT, with SQLSTATE 40001 and a message naming the table and the key that
conflicted. On Kafka the two sides of each interleaving run on two nodes (two replicas
of one log), so the same decisions are seen to be taken across nodes.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import offsetdb

LEVELS = ("SERIALIZABLE", "SNAPSHOT")


class Cluster:
    """Connections to one database: on one node (embedded), or spread over two (Kafka)."""

    def __init__(self, target: str, tmp_path: Path) -> None:
        self._target = target
        self._second: tuple[str, str] | None = None
        if target.startswith("kafka://"):
            url = target.partition("?")[0]
            self._second = (url, str(tmp_path / "second-node"))
        self._connections: list[offsetdb.Connection] = []

    def connect(self, node: int = 0, *, autocommit: bool = False) -> offsetdb.Connection:
        """A connection on node 0 or 1 (the same node on the embedded backend)."""
        if node == 1 and self._second is not None:
            url, data_dir = self._second
            conn = offsetdb.connect(url, data_dir=data_dir, autocommit=autocommit)
        else:
            conn = offsetdb.connect(self._target, autocommit=autocommit)
        self._connections.append(conn)
        self.settle()
        return conn

    def settle(self) -> None:
        """Every node has applied every commit made so far through this cluster."""
        offsets = [c.last_commit_offset for c in self._connections if not c.closed]
        newest = max((o for o in offsets if o is not None), default=None)
        if newest is not None:
            for conn in self._connections:
                if not conn.closed:
                    conn.sync(newest)

    def close(self) -> None:
        """Close every connection (rolling back whatever is open)."""
        for conn in self._connections:
            conn.close()


@pytest.fixture
def cluster(db_target: str, tmp_path: Path) -> Iterator[Cluster]:
    nodes = Cluster(db_target, tmp_path)
    yield nodes
    nodes.close()


def run(conn: offsetdb.Connection, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Execute one statement; its rows if it returns any."""
    cur = conn.cursor().execute(sql, params)
    return cur.fetchall() if cur.description else []


def begin(conn: offsetdb.Connection, isolation: str) -> offsetdb.Connection:
    run(conn, f"BEGIN ISOLATION LEVEL {isolation}")
    return conn


def setup(cluster: Cluster, *statements: str) -> None:
    """Run DDL and initial rows in autocommit mode, then let every node apply them."""
    conn = cluster.connect(autocommit=True)
    for statement in statements:
        run(conn, statement)
    cluster.settle()


def assert_conflict(error: offsetdb.Error, table: str, key: str) -> None:
    """A 40001 whose message names the table and the key (a regex) that conflicted."""
    assert error.sqlstate == "40001", error
    assert f'"{table}"' in error.message, error.message
    assert re.search(key, error.message), error.message


def commit_fails(conn: offsetdb.Connection) -> offsetdb.Error:
    with pytest.raises(offsetdb.SerializationFailure) as caught:
        conn.commit()
    return caught.value


def committed_state(cluster: Cluster, sql: str) -> list[tuple[Any, ...]]:
    """What a fresh transaction reads once every node has applied every commit."""
    cluster.settle()
    reader = cluster.connect(0, autocommit=True)
    rows = run(reader, sql)
    reader.close()
    return rows


def test_dirty_write_g0_one_of_two_crossed_writers_aborts_and_no_mix_survives(cluster: Cluster) -> None:
    for level in LEVELS:
        table = f"g0_{level.lower()}"
        setup(cluster, f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, value INTEGER)",
              f"INSERT INTO {table} VALUES (1, 10), (2, 20)")
        t1, t2 = begin(cluster.connect(0), level), begin(cluster.connect(1), level)
        # The same two rows, written in opposite orders; neither writer waits.
        run(t1, f"UPDATE {table} SET value = 11 WHERE id = 1")
        run(t2, f"UPDATE {table} SET value = 22 WHERE id = 2")
        run(t1, f"UPDATE {table} SET value = 21 WHERE id = 2")
        run(t2, f"UPDATE {table} SET value = 12 WHERE id = 1")
        assert run(t1, f"SELECT id, value FROM {table} ORDER BY id") == [(1, 11), (2, 21)]
        assert run(t2, f"SELECT id, value FROM {table} ORDER BY id") == [(1, 12), (2, 22)]
        t1.commit()
        assert_conflict(commit_fails(t2), table, r"\(id\)=\([12]\)")
        # All of T1's writes and none of T2's: never (11, 22) or (12, 21).
        assert committed_state(cluster, f"SELECT id, value FROM {table} ORDER BY id") == [(1, 11), (2, 21)]


def test_aborted_read_g1a_rolled_back_writes_are_never_seen(cluster: Cluster) -> None:
    for level in LEVELS:
        table = f"g1a_{level.lower()}"
        setup(cluster, f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, value INTEGER)",
              f"INSERT INTO {table} VALUES (1, 10), (2, 20)")
        t1, t2 = begin(cluster.connect(0), level), begin(cluster.connect(1), level)
        run(t1, f"UPDATE {table} SET value = 101 WHERE id = 1")
        assert run(t1, f"SELECT value FROM {table} WHERE id = 1") == [(101,)]
        assert run(t2, f"SELECT id, value FROM {table} ORDER BY id") == [(1, 10), (2, 20)]
        t1.rollback()
        assert run(t2, f"SELECT id, value FROM {table} ORDER BY id") == [(1, 10), (2, 20)]
        assert run(t2, f"SELECT value FROM {table} WHERE id = 1") == [(10,)]
        assert run(t2, f"SELECT sum(value) FROM {table}") == [(30,)]
        t2.commit()
        assert committed_state(cluster, f"SELECT id, value FROM {table} ORDER BY id") == [(1, 10), (2, 20)]


def test_intermediate_read_g1b_a_value_overwritten_before_commit_is_never_seen(cluster: Cluster) -> None:
    for level in LEVELS:
        table = f"g1b_{level.lower()}"
        setup(cluster, f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, value INTEGER)",
              f"INSERT INTO {table} VALUES (1, 10), (2, 20)")
        t1, t2 = begin(cluster.connect(0), level), begin(cluster.connect(1), level)
        run(t1, f"UPDATE {table} SET value = 101 WHERE id = 1")
        assert run(t2, f"SELECT value FROM {table} WHERE value % 5 = 0 ORDER BY id") == [(10,), (20,)]
        run(t1, f"UPDATE {table} SET value = 11 WHERE id = 1")
        t1.commit()
        # T2 keeps its snapshot: neither the intermediate 101 nor the committed 11.
        assert run(t2, f"SELECT value FROM {table} WHERE value % 5 = 0 ORDER BY id") == [(10,), (20,)]
        assert run(t2, f"SELECT value FROM {table} WHERE id = 1") == [(10,)]
        t2.commit()
        t3 = begin(cluster.connect(1), level)
        cluster.settle()
        assert run(t3, f"SELECT id, value FROM {table} ORDER BY id") == [(1, 11), (2, 20)]
        t3.commit()


def test_circular_information_flow_g1c_neither_sees_the_others_write(cluster: Cluster) -> None:
    """G1c is prevented at both levels; what is left is write skew, which only SERIALIZABLE stops."""
    for level in LEVELS:
        table = f"g1c_{level.lower()}"
        setup(cluster, f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, value INTEGER)",
              f"INSERT INTO {table} VALUES (1, 10), (2, 20)")
        t1, t2 = begin(cluster.connect(0), level), begin(cluster.connect(1), level)
        run(t1, f"UPDATE {table} SET value = 11 WHERE id = 1")
        run(t2, f"UPDATE {table} SET value = 22 WHERE id = 2")
        assert run(t1, f"SELECT value FROM {table} WHERE id = 2") == [(20,)]
        assert run(t2, f"SELECT value FROM {table} WHERE id = 1") == [(10,)]
        t1.commit()
        final = f"SELECT id, value FROM {table} ORDER BY id"
        if level == "SERIALIZABLE":
            # T2 read id=1, which T1 changed after T2's snapshot.
            assert_conflict(commit_fails(t2), table, r"\(id\)=\(1\)")
            assert committed_state(cluster, final) == [(1, 11), (2, 20)]
        else:
            t2.commit()
            assert committed_state(cluster, final) == [(1, 11), (2, 22)]


def test_lost_update_p4_is_prevented_at_both_levels(cluster: Cluster) -> None:
    for level in LEVELS:
        table = f"p4_{level.lower()}"
        setup(cluster, f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, value INTEGER)",
              f"INSERT INTO {table} VALUES (1, 10), (2, 20)")
        t1, t2 = begin(cluster.connect(0), level), begin(cluster.connect(1), level)
        # Read-modify-write in the application, as an ORM does.
        (v1,) = run(t1, f"SELECT value FROM {table} WHERE id = 1")[0]
        (v2,) = run(t2, f"SELECT value FROM {table} WHERE id = 1")[0]
        assert v1 == v2 == 10
        run(t1, f"UPDATE {table} SET value = ? WHERE id = 1", (v1 + 1,))
        run(t2, f"UPDATE {table} SET value = ? WHERE id = 1", (v2 + 1,))
        t1.commit()
        assert_conflict(commit_fails(t2), table, r"\(id\)=\(1\)")
        assert committed_state(cluster, f"SELECT value FROM {table} WHERE id = 1") == [(11,)]
        # Retried from a fresh snapshot, the second increment lands on the first.
        retry = begin(cluster.connect(1), level)
        cluster.settle()
        (v,) = run(retry, f"SELECT value FROM {table} WHERE id = 1")[0]
        run(retry, f"UPDATE {table} SET value = ? WHERE id = 1", (v + 1,))
        retry.commit()
        assert committed_state(cluster, f"SELECT value FROM {table} WHERE id = 1") == [(12,)]


@pytest.mark.parametrize("then", ["writes-a-row-t2-wrote", "writes-another-table"])
def test_read_skew_g_single_a5a_reads_stay_at_the_snapshot(cluster: Cluster, then: str) -> None:
    """T1 reads x, T2 moves 2 from y to x and commits, T1 reads y: the old y, at both levels.

    If T1 then writes: a row T2 also wrote aborts at both levels (write-write). A row of
    another table commits under SNAPSHOT (T1's reads were a consistent snapshot, so T1
    before T2 is a serial order) and aborts under SERIALIZABLE, which orders a writer at
    its commit offset and so requires its reads to be unchanged then: conservative,
    never an anomaly.
    """
    for level in LEVELS:
        table, totals = f"a5a_{level.lower()}", f"a5a_totals_{level.lower()}"
        setup(cluster, f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, value INTEGER)",
              f"INSERT INTO {table} VALUES (1, 10), (2, 20)",
              f"CREATE TABLE {totals} (name TEXT PRIMARY KEY, total INTEGER)")
        t1, t2 = begin(cluster.connect(0), level), begin(cluster.connect(1), level)
        assert run(t1, f"SELECT value FROM {table} WHERE id = 1") == [(10,)]
        assert run(t2, f"SELECT id, value FROM {table} ORDER BY id") == [(1, 10), (2, 20)]
        run(t2, f"UPDATE {table} SET value = 12 WHERE id = 1")
        run(t2, f"UPDATE {table} SET value = 18 WHERE id = 2")
        t2.commit()
        cluster.settle()
        # Not 18: x + y = 30 holds in what T1 sees, as it does in every committed state.
        assert run(t1, f"SELECT value FROM {table} WHERE id = 2") == [(20,)]
        assert run(t1, f"SELECT sum(value) FROM {table}") == [(30,)]
        if then == "writes-a-row-t2-wrote":
            run(t1, f"DELETE FROM {table} WHERE value = 20")  # id=2 in T1's snapshot
            # SERIALIZABLE may name either row T1 read; SNAPSHOT names the row both wrote.
            assert_conflict(commit_fails(t1), table, r"\(id\)=\([12]\)" if level == "SERIALIZABLE" else r"\(id\)=\(2\)")
            assert committed_state(cluster, f"SELECT id, value FROM {table} ORDER BY id") == [(1, 12), (2, 18)]
            continue
        run(t1, f"INSERT INTO {totals} VALUES ('x+y', 30)")
        if level == "SERIALIZABLE":
            assert_conflict(commit_fails(t1), table, r"\(id\)=\([12]\)")
            assert committed_state(cluster, f"SELECT * FROM {totals}") == []
        else:
            t1.commit()
            assert committed_state(cluster, f"SELECT * FROM {totals}") == [("x+y", 30)]


def test_write_skew_g2_item_a5b_on_call_doctors(cluster: Cluster) -> None:
    """Both doctors go off call after each saw the other on call: only SNAPSHOT lets both."""
    for level in LEVELS:
        table = f"doctors_{level.lower()}"
        setup(cluster,
              f"CREATE TABLE {table} (name TEXT PRIMARY KEY, on_call BOOLEAN NOT NULL, shift INTEGER)",
              f"INSERT INTO {table} VALUES ('alice', true, 1), ('bob', true, 1), ('carol', true, 2)")
        on_call = f"SELECT count(*) FROM {table} WHERE on_call = true AND shift = 1"
        alice, bob = begin(cluster.connect(0), level), begin(cluster.connect(1), level)
        assert run(alice, on_call) == [(2,)]
        assert run(bob, on_call) == [(2,)]
        run(alice, f"UPDATE {table} SET on_call = false WHERE name = 'alice'")
        run(bob, f"UPDATE {table} SET on_call = false WHERE name = 'bob'")
        alice.commit()
        if level == "SERIALIZABLE":
            # Alice's row matched the predicate Bob counted, and she changed it after his snapshot.
            assert_conflict(commit_fails(bob), table, r"\(name\)=\(alice\)")
            assert committed_state(cluster, on_call) == [(1,)]
        else:
            bob.commit()
            # The invariant "at least one doctor on call for shift 1" is broken.
            assert committed_state(cluster, on_call) == [(0,)]


@pytest.mark.parametrize(
    "change",
    [
        ("insert into the range", "INSERT INTO {t} VALUES (4, 12)", r"\(id\)=\(4\)"),
        ("update into the range", "UPDATE {t} SET price = 19 WHERE id = 3", r"\(id\)=\(3\)"),
        ("delete from the range", "DELETE FROM {t} WHERE id = 2", r"\(id\)=\(2\)"),
    ],
    ids=lambda c: c[0].replace(" ", "-"),
)
def test_phantom_a_row_entering_or_leaving_a_scanned_range(cluster: Cluster, change: tuple[str, str, str]) -> None:
    """T1 summarises a price range; T2 changes which rows are in it and commits first.

    T1's re-read returns the same rows (its snapshot); its summary row is then stale.
    SERIALIZABLE aborts T1 naming the scanned table and the row; SNAPSHOT commits the
    stale summary (predicate write skew).
    """
    _, statement, key = change
    for level in LEVELS:
        items, summary = f"items_{level.lower()}", f"summary_{level.lower()}"
        setup(cluster, f"CREATE TABLE {items} (id INTEGER PRIMARY KEY, price INTEGER)",
              f"INSERT INTO {items} VALUES (1, 5), (2, 15), (3, 25)",
              f"CREATE TABLE {summary} (price_range TEXT PRIMARY KEY, n INTEGER, total INTEGER)")
        in_range = f"SELECT count(*), sum(price) FROM {items} WHERE price BETWEEN 10 AND 20"
        t1, t2 = begin(cluster.connect(0), level), begin(cluster.connect(1), level)
        assert run(t1, in_range) == [(1, 15)]
        run(t2, statement.format(t=items))
        t2.commit()
        cluster.settle()
        assert run(t1, in_range) == [(1, 15)]
        run(t1, f"INSERT INTO {summary} VALUES ('10-20', 1, 15)")
        if level == "SERIALIZABLE":
            error = commit_fails(t1)
            assert_conflict(error, items, key)
            assert "predicate" in error.message
            assert committed_state(cluster, f"SELECT * FROM {summary}") == []
        else:
            t1.commit()
            assert committed_state(cluster, f"SELECT * FROM {summary}") == [("10-20", 1, 15)]
            assert committed_state(cluster, in_range) != [(1, 15)]


def test_phantom_rows_written_outside_the_scanned_range_do_not_conflict(cluster: Cluster) -> None:
    """Only rows whose before or after image matches the scanned predicate conflict."""
    setup(cluster, "CREATE TABLE items (id INTEGER PRIMARY KEY, price INTEGER)",
          "INSERT INTO items VALUES (1, 5), (2, 15), (3, 25), (10, 1)",
          "CREATE TABLE summary (price_range TEXT PRIMARY KEY, n INTEGER)")
    scans = [
        ("SELECT count(*) FROM items WHERE price BETWEEN 10 AND 20",
         ["INSERT INTO items VALUES (4, 50)", "UPDATE items SET price = 30 WHERE id = 3",
          "DELETE FROM items WHERE id = 1"]),
        ("SELECT count(*) FROM items WHERE id < 5",
         ["INSERT INTO items VALUES (11, 15)", "UPDATE items SET price = 2 WHERE id = 10"]),
    ]
    for number, (scan, changes) in enumerate(scans):
        t1 = begin(cluster.connect(0), "SERIALIZABLE")
        (seen,) = run(t1, scan)[0]
        t2 = begin(cluster.connect(1), "SERIALIZABLE")
        cluster.settle()
        for statement in changes:
            run(t2, statement)
        t2.commit()
        run(t1, "INSERT INTO summary VALUES (?, ?)", (f"scan {number}", seen))
        t1.commit()
    assert committed_state(cluster, "SELECT * FROM summary ORDER BY price_range") == [
        ("scan 0", 1), ("scan 1", 3)
    ]


# --- the read-only anomaly (Fekete, O'Neil & O'Neil, SIGMOD Record 2004) ------------------

Accounts = dict[str, int]


def deposit(state: Accounts) -> None:
    """T1: 20 into savings."""
    state["savings"] += 20


def withdraw(state: Accounts) -> None:
    """T2: 10 from checking, plus a 1 penalty if checking + savings would go negative."""
    penalty = 1 if state["checking"] + state["savings"] - 10 < 0 else 0
    state["checking"] -= 10 + penalty


def serial_outcomes(report_seen: Accounts, final: Accounts, writers: list[Callable[[Accounts], None]]) -> list[str]:
    """The serial orders of the writers and the report that produce what was observed."""
    explained = []
    for order in itertools.permutations([*writers, None]):
        state = {"checking": 0, "savings": 0}
        seen = None
        for step in order:
            if step is None:
                seen = dict(state)
            else:
                step(state)
        if seen == report_seen and state == final:
            explained.append(" < ".join("report" if s is None else s.__name__ for s in order))
    return explained


def test_read_only_anomaly_fekete_snapshot_shows_an_impossible_state_serializable_aborts_the_writer(
    cluster: Cluster,
) -> None:
    """Checking and savings both at 0; T2 withdraws 10 and charges a penalty if overdrawn.

    T2 reads both balances, T1 deposits 20 into savings and commits, the read-only
    report T3 reads both balances (T1's deposit, no withdrawal) and commits, then T2
    commits a withdrawal with penalty. Under SNAPSHOT no serial order yields both T3's
    report and the final balances: the report shows a state that never existed in the
    serial world. Under SERIALIZABLE T2 aborts (it read savings, which T1 changed); the
    read-only T3 never aborts, and the retried T2 pays no penalty.
    """
    for level in LEVELS:
        table = f"accounts_{level.lower()}"
        setup(cluster, f"CREATE TABLE {table} (name TEXT PRIMARY KEY, balance INTEGER NOT NULL)",
              f"INSERT INTO {table} VALUES ('checking', 0), ('savings', 0)")
        balances = f"SELECT name, balance FROM {table} ORDER BY name"

        t2 = begin(cluster.connect(1), level)
        x = run(t2, f"SELECT balance FROM {table} WHERE name = 'checking'")[0][0]
        y = run(t2, f"SELECT balance FROM {table} WHERE name = 'savings'")[0][0]

        t1 = begin(cluster.connect(0), level)
        run(t1, f"UPDATE {table} SET balance = balance + 20 WHERE name = 'savings'")
        t1.commit()
        cluster.settle()

        t3 = begin(cluster.connect(0), level)
        report = dict(run(t3, balances))
        before = t3.last_commit_offset
        t3.commit()  # read-only: never aborts, appends nothing
        assert t3.last_commit_offset == before is None
        assert report == {"checking": 0, "savings": 20}

        penalty = 1 if x + y - 10 < 0 else 0
        assert penalty == 1  # T2 saw (0, 0): its snapshot predates the deposit
        run(t2, f"UPDATE {table} SET balance = balance - ? WHERE name = 'checking'", (10 + penalty,))
        if level == "SNAPSHOT":
            t2.commit()
            final = dict(committed_state(cluster, balances))
            assert final == {"checking": -11, "savings": 20}
            assert serial_outcomes(report, final, [deposit, withdraw]) == []
        else:
            assert_conflict(commit_fails(t2), table, r"\(name\)=\(savings\)")
            retry = begin(cluster.connect(1), level)
            cluster.settle()
            state = dict(run(retry, balances))
            penalty = 1 if state["checking"] + state["savings"] - 10 < 0 else 0
            run(retry, f"UPDATE {table} SET balance = balance - ? WHERE name = 'checking'", (10 + penalty,))
            retry.commit()
            final = dict(committed_state(cluster, balances))
            assert final == {"checking": -10, "savings": 20}
            assert serial_outcomes(report, final, [deposit, withdraw]) == ["deposit < report < withdraw"]

