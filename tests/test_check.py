"""``offsetdb check DIR``: every file verified, every log record's checksum, the state
against a replay of the log; exit 1 with the damage and the remedy when anything is wrong.
Also: databases written before log records had checksums still open and check clean."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka_broker import Broker

import offsetdb
from offsetdb.embedded_log import CHECKSUMS_FROM_KEY
from offsetdb.keys import encode_key, version_key
from offsetdb.materializers import mvcc
from offsetdb.materializers.check import check
from offsetdb.store import open_store

CLI = [sys.executable, "-m", "offsetdb.cli"]


def run_check(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "check", str(db), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    conn = offsetdb.connect(str(path), autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    for start in range(0, 2000, 500):
        cur.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i} " * 4) for i in range(start, start + 500)])
    cur.execute("UPDATE t SET v = 'changed' WHERE id % 10 = 0")
    conn.close()
    return path


def test_a_healthy_database_checks_ok_and_exits_0(db: Path) -> None:
    result = run_check(db)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"offsetdb check {db}"
    for step in ("open", "log", "data", "index", "txns", "meta", "state"):
        assert any(line.split()[0] == step and " ok: " in line for line in lines[1:-1]), (step, lines)
    assert "7 records, dense from offset 0, every checksum verified" in result.stdout
    assert "equals a replay of the log" in result.stdout and "(2,000 rows)" in result.stdout
    assert lines[-1] == "OK"


def test_a_damaged_table_file_is_named_with_the_rebuild_remedy(db: Path) -> None:
    rocks = db / "rocksdb"
    largest = max((f for f in os.listdir(rocks) if f.endswith(".sst")), key=lambda f: (rocks / f).stat().st_size)
    data = bytearray((rocks / largest).read_bytes())
    data[len(data) // 2] ^= 0x40
    (rocks / largest).write_bytes(bytes(data))
    result = run_check(db)
    assert result.returncode == 1
    assert f'data     DAMAGED: {rocks / largest} (column family "data": table rows' in result.stdout
    assert "state    note: not compared: damaged files above" in result.stdout
    assert f"`offsetdb replay {db} NEW_DIR` rebuilds the state from the log" in result.stdout
    assert result.stdout.splitlines()[-1] == "See docs/integrity.md for what each check means."


def test_state_that_differs_from_a_replay_of_its_log_is_reported(db: Path) -> None:
    # Intact files, wrong content: a row version no record of the log wrote.
    store = open_store(str(db))
    table_id = max(int.from_bytes(key[:8], "big") for key, _ in store.data.items())
    store.data[version_key(table_id, encode_key([7]), 4)] = mvcc.encode_row((7, "not from the log"))
    store.close()
    result = run_check(db)
    assert result.returncode == 1
    assert "state    DAMAGED: the state differs from a replay of its own log at offset" in result.stdout
    assert f"`offsetdb replay {db} NEW_DIR`" in result.stdout


def test_a_damaged_log_record_is_found_by_its_checksum(db: Path) -> None:
    store = open_store(str(db))
    key = (3).to_bytes(8, "big")
    value = bytearray(store.log[key])
    value[len(value) // 2] ^= 0x01
    store.log[key] = bytes(value)
    store.close()
    result = run_check(db)
    assert result.returncode == 1
    assert "log      DAMAGED:" in result.stdout
    assert "log record 3" in result.stdout and "does not match its checksum" in result.stdout
    assert "restore" in result.stdout


def test_a_database_that_cannot_be_opened_is_reported_at_open(db: Path) -> None:
    current = db / "rocksdb" / "CURRENT"
    current.write_bytes(b"MANIFEST-99999" + current.read_bytes()[14:])
    result = run_check(db)
    assert result.returncode == 1
    assert "open     DAMAGED:" in result.stdout
    assert "restore" in result.stdout


def test_check_writes_nothing_to_the_database(db: Path) -> None:
    before = {name: (db / "rocksdb" / name).read_bytes() for name in os.listdir(db / "rocksdb") if name != "LOG"}
    assert run_check(db).returncode == 0
    after = {name: (db / "rocksdb" / name).read_bytes() for name in os.listdir(db / "rocksdb") if name != "LOG"}
    assert before.keys() == after.keys()
    assert all(before[name] == after[name] for name in before), "check modified the database"


def test_a_database_without_log_checksums_opens_and_checks_clean(db: Path) -> None:
    """Written before log records had frames: records below the recorded boundary are read
    as they are; records appended from then on are framed."""
    store = open_store(str(db))
    unframed = {key: value[4:] for key, value in store.log.items()}
    for key, value in unframed.items():
        store.log[key] = value
    del store.meta[CHECKSUMS_FROM_KEY]
    store.meta[b"format"] = (1).to_bytes(4, "big")
    store.close()
    conn = offsetdb.connect(str(db), autocommit=True)
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM t")
    assert cur.fetchall() == [(2000,)]
    cur.execute("INSERT INTO t VALUES (5000, 'after the upgrade')")
    conn.close()
    result = run_check(db)
    assert result.returncode == 0, result.stdout
    assert "8 records, dense from offset 0, every checksum verified (7 written before log records had checksums" in result.stdout
    store = open_store(str(db))
    assert int.from_bytes(store.meta[CHECKSUMS_FROM_KEY], "big") == 7
    assert int.from_bytes(store.meta[b"format"], "big") == 2  # older offsetdb now refuse it
    store.close()


def test_a_newer_on_disk_format_is_refused_with_the_remedy(db: Path) -> None:
    store = open_store(str(db))
    store.meta[b"format"] = (3).to_bytes(4, "big")
    store.close()
    with pytest.raises(offsetdb.OperationalError, match="holds on-disk format 3; this offsetdb reads formats 1, 2: upgrade"):
        offsetdb.connect(str(db))


def test_check_reports_progress_of_its_long_steps(db: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    report = check(str(db), progress=lambda step, done, total, _: seen.append((step, done, total)))
    assert report.ok, report.lines
    steps = [step for step, _, _ in seen]
    assert "copying log" in steps and "replaying log" in steps
    assert seen[-1][1] == seen[-1][2], "the last report of a step is its end"


def test_a_kafka_replica_has_its_files_checked_and_is_pointed_at_digest(
    tmp_path: Path, kafka_broker: Broker, kafka_settings: dict[str, str]
) -> None:
    url = f"kafka://{kafka_broker.bootstrap}/check{uuid.uuid4().hex[:12]}?data_dir={tmp_path / 'replica'}"
    conn = offsetdb.connect(url, autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    cur.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    conn.close()
    report = check(str(tmp_path / "replica"))
    assert report.ok, report.lines
    assert not any(line.startswith("log ") for line in report.lines), "a replica holds no log"
    assert any(line.startswith("data     ok: ") for line in report.lines)
    assert any(line.startswith("state    note: a replica of kafka:") and "offsetdb digest" in line for line in report.lines)
