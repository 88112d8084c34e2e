"""Jepsen-style clients of one node, recording what they saw for the history checks.

Run as a node process (``python jepsen_worker.py --url URL --node n1 --incarnation 3
--out DIR``), or call :func:`run_clients` in-process (threads on the embedded backend).
Each client has its own connection and runs one workload until ``DIR/stop`` exists or its
transaction budget is spent:

- ``list``: Elle's list-append. A transaction is 1-4 micro-operations on a few keys,
  each a read of a key's list or an append of a value unique to that key. The lists are
  rows of ``lists (k, v)``, ``v`` a space-separated text. Every transaction goes to
  ``DIR/<process>.jsonl`` in :mod:`history_checker`'s format, twice: as ``info`` with
  its appends (reads unknown) before COMMIT, so that a kill -9 at any instant leaves its
  appends traceable, then with its outcome and reads once known.
- ``transfer``: the bank. Read two balances, move an amount if the payer has it.
- ``total``: the bank's reader. Sum every balance in one transaction; the sums go to
  ``DIR/<process>.totals`` (each must be the invariant total).
- ``claim``: uniqueness. Every claim client inserts the same primary keys, in the same
  order, into ``claims (k, owner)``; outcomes go to ``DIR/<process>.claims``.

Outcomes: ``ok`` once COMMIT returned; ``fail`` when the transaction certainly did not
commit (an abort, or an error before its record could be written); ``info`` when that is
unknown (08007 that could not be settled yet, or the process was killed mid-commit).
Prints ``ready`` once every client has its connection, and exits 0 when all are done.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import offsetdb
from offsetdb import errors

KEYS = 8
ACCOUNTS = 10
INITIAL_BALANCE = 100
TOTAL = ACCOUNTS * INITIAL_BALANCE
CLAIMS = 40

# Raised at COMMIT when the transaction certainly did not commit.
_NOT_COMMITTED = (
    errors.SerializationFailure,
    errors.SnapshotTooOld,
    errors.IntegrityError,
    errors.TransactionIdReused,
    errors.ConnectionFailure,
)


def setup(conn: Any) -> None:
    """Create the workloads' tables and rows (run once, before any client starts)."""
    cur = conn.cursor()
    cur.execute("CREATE TABLE lists (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    cur.executemany("INSERT INTO lists VALUES (?, '')", [(k,) for k in range(KEYS)])
    cur.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL)")
    cur.executemany(
        "INSERT INTO accounts VALUES (?, ?)", [(i, INITIAL_BALANCE) for i in range(ACCOUNTS)]
    )
    cur.execute("CREATE TABLE claims (k INTEGER PRIMARY KEY, owner TEXT NOT NULL)")
    conn.commit()


class Recorder:
    """Appends JSON lines to one file, flushed line by line (a kill -9 keeps them)."""

    def __init__(self, path: Path) -> None:
        self._file: TextIO = path.open("a")
        self._lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        self._file.close()


class Client:
    """One connection running one workload, with what it needs to record outcomes."""

    def __init__(
        self,
        connect: Callable[[], Any],
        process: str,
        value_base: int,
        out: Path,
        seed: int,
        isolation: str,
        budget: int,
        pace: float,
    ) -> None:
        self.conn = connect()
        self.process = process
        self.value_base = value_base  # values appended: value_base + 1, + 2, ...
        self.out = out
        self.rng = random.Random(seed)
        self.isolation = isolation
        self.budget = budget
        self.pace = pace
        self.done = 0

    def stopped(self) -> bool:
        """Whether to stop, after thinking for a while (``pace`` seconds on average)."""
        if self.pace and self.done:
            time.sleep(self.rng.expovariate(1 / self.pace))
        return self.done >= self.budget or (self.out / "stop").exists()

    def commit(self) -> str:
        """COMMIT, and say whether it happened: ``ok``, ``fail`` or ``info``."""
        try:
            self.conn.commit()
        except errors.CommitOutcomeUnknown as e:
            settled = self.settle(e.txn_id)
            sys.stderr.write(f"{self.process}: commit outcome unknown (08007), settled: {settled}\n")
            return settled
        except _NOT_COMMITTED:
            return "fail"
        return "ok"

    def settle(self, txn_id: str | None) -> str:
        """Ask the log whether an unknown commit happened (fencing it if it did not)."""
        if txn_id is None:
            return "info"
        try:
            _, committed, _ = self.conn.transaction_outcome(txn_id, settle=True)
        except errors.OperationalError:
            return "info"  # the log is still away: the checker treats it as unknown
        return "ok" if committed else "fail"

    def abandon(self) -> None:
        """Roll back after an error inside the transaction (before COMMIT)."""
        with contextlib.suppress(errors.Error):
            self.conn.rollback()

    def begin(self) -> Any:
        cur = self.conn.cursor()
        cur.execute(f"BEGIN ISOLATION LEVEL {self.isolation}")
        return cur


def list_append(client: Client) -> None:
    """Elle's list-append transactions until stopped."""
    history = Recorder(client.out / f"{client.process}.jsonl")
    counter = 0
    while not client.stopped():
        client.done += 1
        txn_id = f"{client.process}-{client.done}"
        plan: list[tuple[str, int]] = []
        for _ in range(client.rng.randint(1, 4)):
            key = min(int(client.rng.expovariate(0.4)), KEYS - 1)  # a few hot keys
            plan.append(("r" if client.rng.random() < 0.5 else "append", key))
        ops: list[list[Any]] = []
        for kind, key in plan:
            if kind == "append":
                counter += 1
                ops.append(["append", key, client.value_base + counter])
            else:
                ops.append(["r", key, None])
        entry = {"id": txn_id, "process": client.process, "ops": ops, "outcome": "info"}
        try:
            cur = client.begin()
            for op in ops:
                if op[0] == "append":
                    cur.execute(
                        "UPDATE lists SET v = v || ? WHERE k = ?", (f" {op[2]}", op[1])
                    )
                else:
                    cur.execute("SELECT v FROM lists WHERE k = ?", (op[1],))
                    op[2] = [int(x) for x in cur.fetchone()[0].split()]
        except errors.Error:
            client.abandon()
            entry["outcome"] = "fail"
            history.write(entry)
            continue
        history.write({**entry, "ops": [[o[0], o[1], None if o[0] == "r" else o[2]] for o in ops]})
        entry["outcome"] = client.commit()
        history.write(entry)
    history.close()


def transfer(client: Client) -> None:
    """Bank transfers between random accounts until stopped."""
    while not client.stopped():
        client.done += 1
        a, b = client.rng.sample(range(ACCOUNTS), 2)
        amount = client.rng.randint(1, 30)
        try:
            cur = client.begin()
            cur.execute("SELECT balance FROM accounts WHERE id = ?", (a,))
            balance = cur.fetchone()[0]
            if balance < amount:
                client.conn.rollback()
                continue
            cur.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", (amount, a))
            cur.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, b))
        except errors.Error:
            client.abandon()
            continue
        client.commit()


def total(client: Client) -> None:
    """Read the sum of all balances in one transaction, again and again, until stopped."""
    totals = Recorder(client.out / f"{client.process}.totals")
    while not client.stopped():
        client.done += 1
        try:
            cur = client.begin()
            cur.execute("SELECT sum(balance), count(*) FROM accounts")
            total_, count = cur.fetchone()
            offset = cur.snapshot_offset
            client.conn.commit()  # read-only: never aborts
        except errors.Error as e:
            client.abandon()
            totals.write({"error": f"{e.sqlstate}: {e}"})
            continue
        totals.write({"total": int(total_), "count": count, "offset": offset})
    totals.close()


def claim(client: Client) -> None:
    """Insert the shared sequence of claim keys; each key can be won once."""
    claims = Recorder(client.out / f"{client.process}.claims")
    for key in range(CLAIMS):
        if client.stopped():
            break
        client.done += 1
        try:
            cur = client.begin()
            cur.execute("INSERT INTO claims VALUES (?, ?)", (key, client.process))
        except errors.Error:
            client.abandon()
            claims.write({"k": key, "outcome": "fail"})
            continue
        claims.write({"k": key, "outcome": "info"})
        claims.write({"k": key, "outcome": client.commit()})
    claims.close()


def _run(workload: Callable[[Client], None], client: Client) -> None:
    try:
        workload(client)
    finally:
        client.conn.close()


WORKLOADS: dict[str, Callable[[Client], None]] = {
    "list": list_append,
    "transfer": transfer,
    "total": total,
    "claim": claim,
}


def start_clients(
    connect: Callable[[], Any],
    node: str,
    incarnation: int,
    out: Path,
    mix: dict[str, int],
    *,
    seed: int,
    isolation: str = "SERIALIZABLE",
    budget: int = 100,
    pace: float = 0.0,
) -> list[threading.Thread]:
    """Open one connection per client of ``mix`` (workload -> clients) and start them.

    Each client runs at most ``budget`` transactions, thinking ``pace`` seconds on
    average between two (readers a fifth of that). Process names are
    ``<node>.<incarnation>-<workload><i>``; appended values are unique per incarnation
    (``incarnation`` must be unique across the whole test).
    """
    threads = []
    number = 0
    for workload, count in mix.items():
        for i in range(count):
            number += 1
            client = Client(
                connect,
                f"{node}.{incarnation}-{workload}{i}",
                incarnation * 1_000_000 + number * 10_000,
                out,
                seed * 100 + number,
                isolation,
                budget,
                pace / 5 if workload == "total" else pace,
            )
            threads.append(
                threading.Thread(
                    target=_run, args=(WORKLOADS[workload], client), name=client.process
                )
            )
    for thread in threads:
        thread.start()
    return threads


def main() -> None:
    """Run one node's clients (see the module docstring)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--incarnation", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--isolation", default="SERIALIZABLE")
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--pace", type=float, default=0.0)
    parser.add_argument("--mix", default="list=2,transfer=1,total=1,claim=1")
    parser.add_argument("--kafka-timeout", type=float, default=3.0)
    args = parser.parse_args()
    mix = {name: int(n) for name, n in (part.split("=") for part in args.mix.split(","))}
    settings: dict[str, Any] = {}
    if args.url.startswith("kafka://"):
        settings["kafka_timeout"] = args.kafka_timeout

    def connect() -> Any:
        return offsetdb.connect(args.url, **settings)

    threads = start_clients(
        connect, args.node, args.incarnation, args.out, mix,
        seed=args.seed, isolation=args.isolation, budget=args.budget, pace=args.pace,
    )  # fmt: skip
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
