"""Group commit: concurrent committers share one log append (and its fsync)."""

from __future__ import annotations

import threading
from pathlib import Path

import offsetdb
from offsetdb.query.database import Database


def test_commits_queued_during_an_append_share_the_next_one(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    setup = offsetdb.connect(path, autocommit=True)
    setup.cursor().execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    database = Database.acquire(path)
    writers = 8
    started = threading.Barrier(writers + 1)

    def insert(i: int) -> None:
        conn = offsetdb.connect(path, autocommit=True)
        started.wait()
        conn.cursor().execute("INSERT INTO t VALUES (?)", (i,))
        conn.close()

    appends_before = database.log.appends
    threads = [threading.Thread(target=insert, args=(i,)) for i in range(writers)]
    # Hold the log as a slow fsync would: every commit arrives while one append is due.
    with database.writer.exclusive():
        for t in threads:
            t.start()
        started.wait()
        while database.writer.queued < writers:
            threading.Event().wait(0.001)
    for t in threads:
        t.join()
    appends = database.log.appends - appends_before
    assert setup.cursor().execute("SELECT count(*) FROM t").fetchone() == (writers,)
    assert appends == 1, f"{writers} queued commits took {appends} appends"
    database.release()
    setup.close()
