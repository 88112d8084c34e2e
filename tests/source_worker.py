"""A process that has a database open and runs its sources, until killed (source crash tests).

``python source_worker.py TARGET [DATA_DIR]``: opens TARGET (a directory, or a kafka://
URL with DATA_DIR) with ``run_sources=True``, prints ``ready`` once open, then
``ingested N`` (records its ingesters committed) every 0.1 s while they run. The tests
kill it with SIGKILL at random moments.
"""

from __future__ import annotations

import signal
import sys
import threading

import offsetdb


def main() -> None:
    target = sys.argv[1]
    data_dir = sys.argv[2] if len(sys.argv) > 2 else None
    conn = offsetdb.connect(target, autocommit=True, data_dir=data_dir, run_sources=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("ready", flush=True)
    runner = conn._check_open().sources
    while not stop.wait(0.1):
        done = sum(stats.records for stats in runner.stats().values())
        print(f"ingested {done}", flush=True)
    conn.close()


if __name__ == "__main__":
    main()
