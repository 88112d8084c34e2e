"""offsetdb load: CSV files in batches, each batch one transaction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import offsetdb
from offsetdb.ingest.bulk import load_csv


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_csv_loads_in_batches_with_defaults_and_nulls(tmp_path: Path) -> None:
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    conn.cursor().execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, born DATE, tag TEXT DEFAULT 'new')")
    conn.autocommit = False
    csv_file = write_csv(
        tmp_path / "t.csv",
        ["name,id,born"] + [f'"name, {i}",{i},2020-01-{i % 28 + 1:02d}' for i in range(25)] + [",99,"],
    )
    seen: list[tuple[int, int]] = []
    result = load_csv(conn, "t", str(csv_file), batch_size=10, progress=lambda d, t, _: seen.append((d, t)))
    assert (result.rows, result.batches) == (26, 3)
    assert seen[-1][0] == seen[-1][1]
    cur = conn.cursor()
    assert cur.execute("SELECT name, born, tag FROM t WHERE id = 3").fetchone()[0] == "name, 3"
    assert cur.execute("SELECT name, born, tag FROM t WHERE id = 99").fetchone() == (None, None, "new")
    conn.close()


def test_failed_batch_names_its_lines_and_keeps_earlier_batches(tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    conn = offsetdb.connect(db, autocommit=True)
    conn.cursor().execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.close()
    csv_file = write_csv(tmp_path / "t.csv", ["id,v"] + [f"{i},x" for i in range(5)] + ["2,again"])
    result = subprocess.run(
        [sys.executable, "-m", "offsetdb.cli", "load", db, "t", str(csv_file), "--batch", "5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "ERROR 23505" in result.stderr and "line 7" in result.stderr and "(id)=(2)" in result.stderr
    conn = offsetdb.connect(db)
    assert conn.cursor().execute("SELECT count(*) FROM t").fetchone() == (5,)
    conn.close()
