"""Commits to a database and exits without closing it, as a crash would: the WAL keeps them.

Usage: python corruption_worker.py DATA_DIR COMMITS

Each commit ``i`` inserts event ``100000 + i`` and adds 1 to account 0's balance, so any
prefix of the commits leaves a state that says which prefix it is (tests/test_corruption.py).
Prints ``acked N`` after the last commit returned, then ``os._exit``: no close, no flush,
everything since the last clean close lives in RocksDB's WAL only.
"""

from __future__ import annotations

import os
import sys

import offsetdb

CRASH_BASE = 100_000


def main() -> None:
    path, commits = sys.argv[1], int(sys.argv[2])
    conn = offsetdb.connect(path)
    cur = conn.cursor()
    for i in range(commits):
        cur.execute("INSERT INTO events VALUES (?, ?)", (CRASH_BASE + i, f"after the last close {i} " * 3))
        cur.execute("UPDATE accounts SET balance = balance + 1 WHERE id = 0")
        conn.commit()
    sys.stdout.write(f"acked {commits}\n")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
