"""A write load for crash tests: run as a subprocess, killed with SIGKILL at random.

Usage: python crash_worker.py DATA_DIR WORKER_SEED

Prints ``ready`` once set up, then one line per acknowledged commit:
``ack insert ID`` after an INSERT of row ID committed, ``ack transfer`` after a transfer.
A line is printed (and flushed) only after ``commit()`` returned, so every printed
line is a promise the database must keep after any crash.
"""

from __future__ import annotations

import random
import sys
import threading

import offsetdb

ACCOUNTS = 20
INITIAL_BALANCE = 1000


def setup(path: str) -> None:
    conn = offsetdb.connect(path, autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL)")
    cur.execute(
        "CREATE TABLE IF NOT EXISTS events (id BIGINT PRIMARY KEY, worker INTEGER, note TEXT, amount NUMERIC(12,2))"
    )
    cur.execute("SELECT count(*) FROM accounts")
    if cur.fetchone()[0] == 0:
        cur.executemany(
            "INSERT INTO accounts VALUES (?, ?)", [(i, INITIAL_BALANCE) for i in range(ACCOUNTS)]
        )
    conn.close()


def inserter(path: str, worker: int, seed: int, out: threading.Lock) -> None:
    rng = random.Random(seed)
    conn = offsetdb.connect(path)
    cur = conn.cursor()
    base = (seed * 100 + worker) * 10_000_000
    n = 0
    while True:
        batch = [base + n + i for i in range(rng.randint(1, 20))]
        n += len(batch)
        cur.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?)",
            [(i, worker, "x" * rng.randint(0, 200), rng.randint(0, 10**6) / 100) for i in batch],
        )
        if rng.random() < 0.2:
            cur.execute("UPDATE events SET note = 'updated' WHERE id = ?", (batch[0],))
        conn.commit()
        with out:
            for i in batch:
                sys.stdout.write(f"ack insert {i}\n")
            sys.stdout.flush()


def transferer(path: str, seed: int, out: threading.Lock) -> None:
    rng = random.Random(seed)
    conn = offsetdb.connect(path)
    cur = conn.cursor()
    while True:
        a, b = rng.sample(range(ACCOUNTS), 2)
        amount = rng.randint(1, 50)
        try:
            cur.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", (amount, a))
            cur.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, b))
            conn.commit()
        except offsetdb.OperationalError as e:
            if getattr(e, "sqlstate", "") != "40001":
                raise
            conn.rollback()
            continue
        with out:
            sys.stdout.write("ack transfer\n")
            sys.stdout.flush()


def main() -> None:
    path, seed = sys.argv[1], int(sys.argv[2])
    setup(path)
    out = threading.Lock()
    threads = [
        threading.Thread(target=inserter, args=(path, w, seed, out), daemon=True) for w in range(3)
    ] + [threading.Thread(target=transferer, args=(path, seed + 1000 * t, out), daemon=True) for t in range(2)]
    with out:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
