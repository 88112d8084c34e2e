"""Damaged files are detected, never read as data: a seeded corruption corpus.

Two databases are built once: one closed cleanly (everything in SST files) and one left
as a crash leaves it (its last commits in RocksDB's WAL only, tests/corruption_worker.py).
Each case copies one, damages one file — a random byte flipped, or the file cut short —
and runs the same reads and writes as on the undamaged copy. Every case must end in a
clear error (StorageCorrupted, XX001/58030, naming a file and the remedy; and from then
on the database refuses work) or in exactly the undamaged answers. RocksDB may not
notice damage in bytes it never reads (padding, an OPTIONS file): then the answers must
be right, which is what is checked.

One allowance, written down in docs/integrity.md: a WAL cut short looks exactly like a
crash before the cut, so after one the database may hold a *prefix* of its commits —
consistent (every commit whole, state equal to a replay of its log), never a mix.

A bounded number of cases run by default; ``python -m pytest -m slow
tests/test_corruption.py`` runs many more. Cases are seeded: a failure names its seed.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import offsetdb
from offsetdb import errors
from offsetdb.materializers.check import check
from offsetdb.materializers.replay import copy_log
from offsetdb.query.database import digest, replay
from offsetdb.store import open_store

WORKER = Path(__file__).with_name("corruption_worker.py")
CRASH_BASE = 100_000
CRASH_COMMITS = 40
ACCOUNTS = 50

# (name, SQL). Steps named k_* depend on how many of the crash phase's commits survive.
STEPS: list[tuple[str, str]] = [
    ("events", "SELECT count(*), sum(id), sum(length(note)) FROM events WHERE id < 100000"),
    ("accounts", "SELECT id, balance, email FROM accounts WHERE id <> 0 ORDER BY id"),
    ("point 17", "SELECT note FROM events WHERE id = 17"),
    ("point 2999", "SELECT note FROM events WHERE id = 2999"),
    ("range", "SELECT id, note FROM events WHERE id BETWEEN 1000 AND 1010 ORDER BY id"),
    ("k_events", "SELECT count(*), min(id), max(id) FROM events WHERE id >= 100000"),
    ("k_balance", "SELECT balance FROM accounts WHERE id = 0"),
    ("update", "UPDATE accounts SET balance = balance + 7 WHERE id = 5"),
    ("duplicate email", "INSERT INTO accounts VALUES (999, 1, 'user3@example.com')"),
    ("after update", "SELECT balance FROM accounts WHERE id = 5"),
    ("balances", "SELECT count(*), sum(balance) FROM accounts WHERE id <> 0"),
]


# --- building the databases -------------------------------------------------------------


def build_clean(path: Path) -> None:
    """Accounts and 3,000 events written over three open/close cycles (several SSTs per
    column family), with updates and deletes; closed cleanly."""
    conn = offsetdb.connect(str(path), autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL, email TEXT UNIQUE)")
    cur.execute("CREATE TABLE events (id BIGINT PRIMARY KEY, note TEXT)")
    cur.executemany(
        "INSERT INTO accounts VALUES (?, ?, ?)",
        [(i, 1000 + i, f"user{i}@example.com") for i in range(ACCOUNTS)],
    )
    conn.close()
    for phase in range(3):
        conn = offsetdb.connect(str(path), autocommit=True)
        cur = conn.cursor()
        for batch in range(10):
            start = phase * 1000 + batch * 100
            cur.executemany(
                "INSERT INTO events VALUES (?, ?)",
                [(i, f"event {i} " + "x" * (i % 50)) for i in range(start, start + 100)],
            )
        cur.execute("UPDATE events SET note = note || '!' WHERE id % 7 = ?", (phase,))
        cur.execute("DELETE FROM events WHERE id % 97 = ?", (phase,))
        cur.execute("UPDATE accounts SET balance = balance - 1 WHERE id % 3 = ?", (phase,))
        conn.close()


def build_crashed(clean: Path, path: Path) -> None:
    """The clean database, then CRASH_COMMITS commits that exist only in the WAL."""
    shutil.copytree(clean, path)
    done = subprocess.run(
        [sys.executable, str(WORKER), str(path), str(CRASH_COMMITS)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.stdout.strip() == f"acked {CRASH_COMMITS}", done.stderr
    wal = [f for f in os.listdir(path / "rocksdb") if f.endswith(".log") and os.path.getsize(path / "rocksdb" / f)]
    assert wal, "the crash left no WAL to damage: the test would prove nothing"


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus")
    build_clean(root / "clean")
    build_crashed(root / "clean", root / "crashed")
    return {"clean": root / "clean", "crashed": root / "crashed"}


# --- running the steps ----------------------------------------------------------------


@dataclass
class Run:
    """What the steps returned, until the first StorageCorrupted (if any)."""

    results: list[tuple[str, Any]]
    damage: errors.StorageCorrupted | None = None
    refused_after: bool = True  # a statement after the damage was refused too


def run_steps(path: Path) -> Run:
    run = Run([])
    conn = None
    try:
        conn = offsetdb.connect(str(path), autocommit=True)
        cur = conn.cursor()
        for _, sql in STEPS:
            try:
                cur.execute(sql)
                run.results.append(("rows", cur.fetchall() if cur.description else cur.rowcount))
            except errors.StorageCorrupted:
                raise
            except offsetdb.Error as e:
                run.results.append(("error", e.sqlstate))
    except errors.StorageCorrupted as e:
        run.damage = e
        if conn is not None:
            try:
                conn.cursor().execute("SELECT count(*) FROM accounts")
                run.refused_after = False
            except errors.StorageCorrupted:
                pass
    finally:
        if conn is not None:
            with contextlib.suppress(errors.StorageCorrupted):
                conn.close()  # closing a damaged store may meet the damage again
    return run


def expected_with(reference: list[tuple[str, Any]], commits: int, survived: int) -> list[tuple[str, Any]]:
    """The reference answers as they would be had only ``survived`` crash commits happened."""
    out = list(reference)
    names = [name for name, _ in STEPS]
    k_events = names.index("k_events")
    out[k_events] = ("rows", [(survived, CRASH_BASE, CRASH_BASE + survived - 1) if survived else (0, None, None)])
    k_balance = names.index("k_balance")
    (balance,), = reference[k_balance][1]
    out[k_balance] = ("rows", [(balance - commits + survived,)])
    return out


# --- damage ---------------------------------------------------------------------------


def flip(file: Path, rng: random.Random) -> str:
    data = bytearray(file.read_bytes())
    position = rng.randrange(len(data))
    data[position] ^= rng.randrange(1, 256)
    file.write_bytes(bytes(data))
    return f"flipped byte {position} of {file.name} ({len(data)} bytes)"


def truncate(file: Path, rng: random.Random) -> str:
    size = file.stat().st_size
    cut = rng.randrange(size)
    with open(file, "r+b") as handle:
        handle.truncate(cut)
    return f"cut {file.name} from {size} to {cut} bytes"


def damage_log_record(path: Path, rng: random.Random) -> str:
    """Flip a byte of one stored log record, below RocksDB (which checksums the new block)."""
    store = open_store(str(path))
    try:
        it = store.log.iter()
        it.seek_to_last()
        end = int.from_bytes(it.key(), "big") + 1
        del it
        offset = rng.randrange(end)
        key = offset.to_bytes(8, "big")
        value = bytearray(store.log[key])
        position = rng.randrange(len(value))
        value[position] ^= rng.randrange(1, 256)
        store.log[key] = bytes(value)
    finally:
        store.close()
    return f"flipped byte {position} of log record {offset}"


FILE_KINDS: dict[str, Callable[[str], bool]] = {
    "sst": lambda name: name.endswith(".sst"),
    "wal": lambda name: name.endswith(".log"),
    "MANIFEST": lambda name: name.startswith("MANIFEST-"),
    "CURRENT": lambda name: name == "CURRENT",
    "OPTIONS": lambda name: name.startswith("OPTIONS-"),
    "other": lambda name: name in ("IDENTITY", "rocksdict-config.json"),
    "clean-close record": lambda name: name == "offsetdb.closed",
}

# (database, kind of file, damage)
COMBOS = [
    *[
        ("clean", kind, action)
        for kind in ("sst", "MANIFEST", "CURRENT", "OPTIONS", "other", "clean-close record")
        for action in ("flip", "truncate")
    ],
    ("clean", "log record", "flip"),
    *[("crashed", kind, action) for kind in ("wal", "sst", "MANIFEST") for action in ("flip", "truncate")],
]


def damage(path: Path, kind: str, action: str, rng: random.Random) -> str:
    if kind == "log record":
        return damage_log_record(path, rng)
    rocks = path if kind == "clean-close record" else path / "rocksdb"
    candidates = sorted(
        name for name in os.listdir(rocks) if FILE_KINDS[kind](name) and (rocks / name).stat().st_size
    )
    assert candidates, f"no {kind} file to damage in {sorted(os.listdir(rocks))}"
    file = rocks / rng.choice(candidates)
    return (flip if action == "flip" else truncate)(file, rng)


# --- the corpus -----------------------------------------------------------------------


@dataclass
class Tally:
    errors: int = 0
    correct: int = 0
    prefixes: int = 0


def run_corpus(
    databases: dict[str, Path], tmp_path: Path, db: str, kind: str, action: str, cases: int
) -> Tally:
    reference = run_steps(_copy(databases[db], tmp_path / "reference"))
    assert reference.damage is None and len(reference.results) == len(STEPS)
    assert reference.results[[name for name, _ in STEPS].index("duplicate email")] == ("error", "23505")
    commits = CRASH_COMMITS if db == "crashed" else 0
    tally = Tally()
    for case in range(cases):
        seed = f"{db}/{kind}/{action}/{case}"
        rng = random.Random(seed)
        path = _copy(databases[db], tmp_path / f"case{case}")
        what = damage(path, kind, action, rng)
        run = run_steps(path)
        context = f"case {seed}: {what}"
        survived = _survived(run, commits)
        expected = expected_with(reference.results, commits, survived)
        for (name, _), got, want in zip(STEPS, run.results, expected, strict=False):
            assert got == want, f"{context}: WRONG ANSWER at step {name!r}: {got!r}, undamaged {want!r}"
        if run.damage is not None:
            message = run.damage.message
            assert run.damage.sqlstate in ("XX001", "58030"), context
            assert "is damaged" in message and str(path) in message, f"{context}: unclear error {message!r}"
            assert "offsetdb replay" in message or "restore" in message, f"{context}: no remedy in {message!r}"
            assert run.refused_after, f"{context}: the database kept serving after {message!r}"
            tally.errors += 1
        else:
            assert len(run.results) == len(STEPS), context
            if survived != commits:
                # Only a WAL cut short may lose commits, and only as a crash would: a
                # prefix, applied whole, equal to a replay of what the log kept.
                assert (kind, action) == ("wal", "truncate"), f"{context}: {commits - survived} commits lost"
                assert digest(str(path)) == replay(str(path), str(tmp_path / f"replay{case}")), context
                tally.prefixes += 1
            else:
                tally.correct += 1
        if kind == "log record" and run.damage is None:
            # Served from intact state, but the log is the truth: a replay must refuse it.
            with pytest.raises(errors.StorageCorrupted):
                replay(str(path), str(tmp_path / f"replay{case}"))
        if run.damage is not None and kind in ("sst", "log record"):
            assert not check(str(path), replay=False).ok, f"{context}: check passed a damaged database"
        shutil.rmtree(path, ignore_errors=True)
    return tally


def _survived(run: Run, commits: int) -> int:
    names = [name for name, _ in STEPS]
    position = names.index("k_events")
    if len(run.results) <= position or run.results[position][0] != "rows":
        return commits
    count = run.results[position][1][0][0]
    return int(count)


def _copy(source: Path, target: Path) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    return target


@pytest.mark.parametrize(("db", "kind", "action"), COMBOS, ids=["-".join(c) for c in COMBOS])
def test_damaged_file_gives_a_clear_error_or_the_right_answer(
    databases: dict[str, Path], tmp_path: Path, db: str, kind: str, action: str
) -> None:
    run_corpus(databases, tmp_path, db, kind, action, cases=3)


@pytest.mark.slow
@pytest.mark.parametrize(("db", "kind", "action"), COMBOS, ids=["-".join(c) for c in COMBOS])
def test_damaged_file_corpus_long(
    databases: dict[str, Path], tmp_path: Path, db: str, kind: str, action: str
) -> None:
    tally = run_corpus(databases, tmp_path, db, kind, action, cases=40)
    print(f"{db}/{kind}/{action}: {tally}")


def test_a_flipped_byte_in_table_data_is_an_error_not_a_short_count(tmp_path: Path) -> None:
    """The issue's case: one flipped byte in the rows' SST made count(*) return 296 of 3000."""
    path = tmp_path / "db"
    conn = offsetdb.connect(str(path), autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    cur.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"value {i} " * 5) for i in range(3000)])
    conn.close()
    rocks = path / "rocksdb"
    largest = max((f for f in os.listdir(rocks) if f.endswith(".sst")), key=lambda f: (rocks / f).stat().st_size)
    data = bytearray((rocks / largest).read_bytes())
    data[len(data) // 2] ^= 0x10
    (rocks / largest).write_bytes(bytes(data))
    conn = offsetdb.connect(str(path), autocommit=True)
    try:
        with pytest.raises(errors.StorageCorrupted) as raised:
            conn.cursor().execute("SELECT count(*) FROM t")
        assert raised.value.sqlstate == "XX001"
        assert raised.value.file == str(rocks / largest)
        assert 'column family "data"' in raised.value.message
        assert f"offsetdb replay {path}" in raised.value.message
        # From now on the store refuses work, writes included, instead of answering.
        with pytest.raises(errors.StorageCorrupted):
            conn.cursor().execute("SELECT 1")
        with pytest.raises(errors.StorageCorrupted):
            conn.cursor().execute("INSERT INTO t VALUES (5000, 'x')")
    finally:
        conn.close()
    # The error's traceback holds the RocksDB iterator that met the damage, and with it
    # the store: released, the directory can be opened again in this process.
    del raised
    # The log is intact, so the remedy works: the rebuilt state is whole.
    replay(str(path), str(tmp_path / "rebuilt"))
    conn = offsetdb.connect(str(tmp_path / "rebuilt"))
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM t")
    assert cur.fetchall() == [(3000,)]
    conn.close()


def test_a_flipped_wal_byte_refuses_to_open_instead_of_dropping_commits(
    databases: dict[str, Path], tmp_path: Path
) -> None:
    """The issue's other case: a flipped WAL byte made RocksDB drop every commit after it."""
    path = _copy(databases["crashed"], tmp_path / "db")
    wal = next(f for f in sorted(os.listdir(path / "rocksdb")) if f.endswith(".log"))
    data = bytearray((path / "rocksdb" / wal).read_bytes())
    data[len(data) // 3] ^= 0x01
    (path / "rocksdb" / wal).write_bytes(bytes(data))
    with pytest.raises(errors.StorageCorrupted) as raised:
        offsetdb.connect(str(path))
    assert raised.value.file == str(path / "rocksdb" / wal)
    assert "write-ahead log" in raised.value.message and "restore" in raised.value.message


def test_a_damaged_log_record_not_yet_applied_is_refused_not_replayed(
    databases: dict[str, Path], tmp_path: Path
) -> None:
    """A log none of whose records is applied yet (a replay's copy): the damaged one stops
    the opening, where an undecodable record would have been rejected and skipped."""
    target = tmp_path / "target"
    copy_log(str(databases["clean"]), str(target))
    damage_log_record(target, random.Random(7))
    with pytest.raises(errors.StorageCorrupted) as raised:
        offsetdb.connect(str(target))
    assert 'column family "log"' in raised.value.message
    assert "does not match its checksum" in raised.value.message
    assert "restore" in raised.value.message


def test_replay_refuses_to_copy_a_damaged_log_record(databases: dict[str, Path], tmp_path: Path) -> None:
    source = _copy(databases["clean"], tmp_path / "source")
    damage_log_record(source, random.Random(11))
    with pytest.raises(errors.StorageCorrupted, match="does not match its checksum"):
        replay(str(source), str(tmp_path / "target"))


def test_reopening_while_a_handle_outlives_the_close_is_55006_not_damage(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "db"))
    held = store.data.iter()  # as an error's traceback can hold one after a damaged read
    store.close()
    with pytest.raises(errors.ObjectInUse, match="already open in this process"):
        open_store(str(tmp_path / "db"))
    del held
    open_store(str(tmp_path / "db")).close()
