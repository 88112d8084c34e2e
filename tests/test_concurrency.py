"""Concurrent transfers and audits on one database: the invariant holds at every snapshot,
and the final state equals a fresh replay of the log."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import offsetdb
from offsetdb.query.database import replay

ACCOUNTS, INITIAL = 10, 100


def test_concurrent_transfers_keep_the_total_and_replay_identically(tmp_path: Path) -> None:
    path = str(tmp_path / "bank")
    setup = offsetdb.connect(path, autocommit=True)
    cur = setup.cursor()
    cur.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)")
    cur.executemany("INSERT INTO accounts VALUES (?, ?)", [(i, INITIAL) for i in range(ACCOUNTS)])
    committed = aborted = 0
    totals: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def transfer(seed: int) -> None:
        nonlocal committed, aborted
        rng = random.Random(seed)
        conn = offsetdb.connect(path)
        c = conn.cursor()
        for _ in range(60):
            a, b = rng.sample(range(ACCOUNTS), 2)
            amount = rng.randint(1, 20)
            try:
                (balance,) = c.execute("SELECT balance FROM accounts WHERE id = ?", (a,)).fetchone()
                if balance >= amount:
                    c.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", (amount, a))
                    c.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, b))
                conn.commit()
                with lock:
                    committed += 1
            except offsetdb.SerializationFailure:
                conn.rollback()
                with lock:
                    aborted += 1
        conn.close()

    def audit() -> None:
        conn = offsetdb.connect(path)
        c = conn.cursor()
        while not stop.is_set():
            (total,) = c.execute("SELECT sum(balance) FROM accounts").fetchone()
            (negative,) = c.execute("SELECT count(*) FROM accounts WHERE balance < 0").fetchone()
            conn.commit()
            with lock:
                totals.append(total)
            assert negative == 0
        conn.close()

    writers = [threading.Thread(target=transfer, args=(s,)) for s in range(4)]
    auditor = threading.Thread(target=audit)
    auditor.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    stop.set()
    auditor.join()

    assert committed > 0 and totals, "the workload did nothing"
    assert set(totals) == {ACCOUNTS * INITIAL}
    assert cur.execute("SELECT sum(balance) FROM accounts").fetchone() == (ACCOUNTS * INITIAL,)
    digest = setup.state_digest()
    setup.close()
    assert replay(path, str(tmp_path / "replayed")) == digest
