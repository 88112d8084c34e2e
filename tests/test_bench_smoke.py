"""The bench runs end to end with tiny sizes and reports every workload for both engines.

No timing is asserted: only that each figure exists and is positive.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = {
    "bulk_load",
    "autocommit_1t",
    "autocommit_mt",
    "point_select",
    "filtered_scan",
    "join_aggregate",
}
ENGINES = {"offsetdb", "sqlite3"}


def test_bench_reports_every_workload_for_both_engines(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--rows", "2000",
            "--batch", "500",
            "--commits", "80",
            "--threads", "4",
            "--selects", "200",
            "--scans", "2",
            "--json", str(out),
            "--tmpdir", str(tmp_path / "scratch"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    document = json.loads(out.read_text())
    results = {(r["workload"], r["engine"]): r for r in document["results"]}
    assert set(results) == {(w, e) for w in WORKLOADS for e in ENGINES}
    for key, result in results.items():
        assert result["error"] is None, key
        for figure in ("throughput", "seconds", "p50_ms", "p99_ms"):
            assert result[figure] > 0, (key, figure, result[figure])
        assert result["ops"] > 0, key
    assert document["check_mismatches"] == []
    assert {c["workload"] for c in document["comparisons"]} == WORKLOADS
    assert all(c["throughput_ratio"] > 0 for c in document["comparisons"])
    assert {t["workload"] for t in document["targets"]} == WORKLOADS - {"filtered_scan", "join_aggregate"}
    assert "workload" in completed.stdout and "vs sqlite3" in completed.stdout
    assert not list((tmp_path / "scratch").iterdir())  # temporary databases removed
