"""kill -9 at random instants during a write load; after each restart every acknowledged
commit is present, nothing is half-applied, and state equals a fresh replay of the log."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import offsetdb
from offsetdb.query.database import digest, replay

WORKER = Path(__file__).with_name("crash_worker.py")
ACCOUNTS, INITIAL_BALANCE = 20, 1000


def run_and_kill(path: Path, seed: int, after: float, during_startup: bool = False) -> set[int]:
    """Start the worker, SIGKILL it ``after`` seconds into its load; return acked ids.

    With ``during_startup`` the clock starts at spawn instead, so the kill can land while
    the worker opens the database: recovery, catch-up and set-up are killed too.
    """
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(path), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if not during_startup:
        first = proc.stdout.readline()
        if first.strip() != "ready":
            proc.kill()
            raise AssertionError(
                f"worker failed to start: {first!r} {proc.stderr.read() if proc.stderr else ''}"
            )
    time.sleep(after)
    os.kill(proc.pid, signal.SIGKILL)
    out, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err
    acked = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[:2] == ["ack", "insert"]:
            acked.add(int(parts[2]))
    return acked


def check_state(path: Path, acked: set[int]) -> int:
    conn = offsetdb.connect(str(path))
    cur = conn.cursor()
    cur.execute("SELECT id FROM events")
    present = {row[0] for row in cur.fetchall()}
    missing = acked - present
    assert not missing, f"{len(missing)} acknowledged inserts lost, e.g. {sorted(missing)[:5]}"
    cur.execute("SELECT count(*), sum(balance) FROM accounts")
    count, total = cur.fetchone()
    assert (count, total) == (ACCOUNTS, ACCOUNTS * INITIAL_BALANCE), "a transfer was half-applied"
    conn.close()
    return len(present)


def kill_restart_cycles(tmp_path: Path, cycles: int, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "db"
    acked: set[int] = set()
    for cycle in range(cycles):
        if cycle % 4 == 3:
            acked |= run_and_kill(path, seed * 1000 + cycle, rng.uniform(0.0, 1.5), during_startup=True)
        else:
            acked |= run_and_kill(path, seed * 1000 + cycle, rng.uniform(0.05, 0.8))
        check_state(path, acked)
    assert acked, "the worker never acknowledged a commit: the test proved nothing"
    original = digest(str(path))
    rebuilt = replay(str(path), str(tmp_path / "replayed"))
    assert rebuilt == original


def test_kill_9_during_writes_keeps_every_acknowledged_commit(tmp_path: Path) -> None:
    kill_restart_cycles(tmp_path, cycles=12, seed=1)


@pytest.mark.slow
def test_kill_9_soak(tmp_path: Path) -> None:
    kill_restart_cycles(tmp_path, cycles=200, seed=2)
