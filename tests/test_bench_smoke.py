"""The bench runs end to end with tiny sizes and reports every workload for every engine.

No timing is asserted: only that each figure exists (and is positive where it must be),
and that the ``contention`` curve's outcome check (the counters sum to twice the
commits) passed at every point.
The Kafka engine runs against the test suite's broker (``kafka_broker``), with the
client settings it needs exported to the environment (``kafka_settings``), so the bench
and its node B process inherit them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from kafka_broker import Broker

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
VISIBILITY = {"visibility", "visibility_commit", "visibility_sync"}
HOT_KEYS = (50, 1)
CONTENTION_COMMITS = 40
CONTENTION_KAFKA_COMMITS = 20
TINY = [
    "--rows", "2000",
    "--batch", "500",
    "--commits", "80",
    "--threads", "4",
    "--selects", "200",
    "--scans", "2",
    "--hot-keys", ",".join(str(n) for n in HOT_KEYS),
    "--contention-commits", str(CONTENTION_COMMITS),
    "--contention-kafka-commits", str(CONTENTION_KAFKA_COMMITS),
]  # fmt: skip


def run_bench(
    tmp_path: Path, *options: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path / "results.json"
    completed = subprocess.run(
        [
            sys.executable, "-m", "bench", *TINY, *options,
            "--json", str(out), "--tmpdir", str(tmp_path / "scratch"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert not list((tmp_path / "scratch").iterdir())  # temporary databases removed
    return completed, json.loads(out.read_text())


def assert_figures(result: dict[str, Any], key: object) -> None:
    assert result["error"] is None and result["skipped"] is None, key
    for figure in ("throughput", "seconds", "p50_ms", "p99_ms"):
        assert result[figure] > 0, (key, figure, result[figure])
    assert result["ops"] > 0, key


def assert_contention_curve(
    document: dict[str, Any], stdout: str, commits_of: dict[str, int]
) -> None:
    """One result per engine and hot-key count, every figure there, the outcome check passed."""
    curve = {
        (r["details"].get("hot_keys"), r["engine"]): r
        for r in document["results"]
        if r["workload"] == "contention"
    }
    assert set(curve) == {(h, e) for h in HOT_KEYS for e in commits_of}
    for (hot_keys, engine), result in curve.items():
        key = ("contention", hot_keys, engine)
        assert_figures(result, key)
        commits = commits_of[engine]
        assert result["ops"] == commits and result["point"] == f"hot_keys={hot_keys}", key
        details = result["details"]
        assert details["aborts"] >= 0 and result["retries"] == details["aborts"], key
        assert details["attempts"] == commits + details["aborts"], key
        assert 0 <= details["abort_rate"] < 1, key
        assert details["rows"] == hot_keys, key
        # Every committed transfer incremented two counters once each: no lost update.
        assert result["check"] == result["expected"] == 2 * commits, key
    assert not [m for m in document["check_mismatches"] if m.startswith("contention")]
    compared = {
        (c["point"], c["engine"]) for c in document["comparisons"] if c["workload"] == "contention"
    }
    assert compared == {
        (f"hot_keys={h}", e) for h in HOT_KEYS for e in commits_of if e != "sqlite3"
    }
    assert "hot keys" in stdout and "abort rate" in stdout and "BEGIN IMMEDIATE" in stdout


def test_bench_reports_every_workload_for_both_engines(tmp_path: Path) -> None:
    completed, document = run_bench(tmp_path)
    assert_contention_curve(document, completed.stdout, dict.fromkeys(ENGINES, CONTENTION_COMMITS))
    results = {
        (r["workload"], r["engine"]): r
        for r in document["results"]
        if r["workload"] != "contention"
    }
    assert set(results) == {(w, e) for w in WORKLOADS | {"visibility"} for e in ENGINES}
    for key, result in results.items():
        if key[0] == "visibility":  # needs two nodes: not applicable to these engines
            assert result["skipped"] and result["error"] is None, key
            continue
        assert_figures(result, key)
    assert document["check_mismatches"] == []
    assert {c["workload"] for c in document["comparisons"]} == WORKLOADS | {"contention"}
    assert all(c["throughput_ratio"] > 0 for c in document["comparisons"])
    assert {t["workload"] for t in document["targets"]} == WORKLOADS - {
        "filtered_scan",
        "join_aggregate",
    }
    assert "workload" in completed.stdout and "vs sqlite3" in completed.stdout
    assert "not applicable" in completed.stdout
    assert document["meta"]["kafka"] is None


def test_bench_runs_the_kafka_engine_and_the_visibility_workload(
    tmp_path: Path, kafka_broker: Broker, kafka_settings: dict[str, str]
) -> None:
    commits = 30
    completed, document = run_bench(
        tmp_path,
        "--engines", "offsetdb-kafka,sqlite3",
        "--kafka", kafka_broker.bootstrap,
        "--visibility-commits", str(commits),
        "--visibility-syncs", "10",
    )  # fmt: skip
    assert_contention_curve(
        document,
        completed.stdout,
        {"offsetdb-kafka": CONTENTION_KAFKA_COMMITS, "sqlite3": CONTENTION_COMMITS},
    )
    results = {
        (r["workload"], r["engine"]): r
        for r in document["results"]
        if r["workload"] != "contention"
    }
    expected = {(w, e) for w in WORKLOADS for e in ("offsetdb-kafka", "sqlite3")}
    expected |= {(w, "offsetdb-kafka") for w in VISIBILITY} | {("visibility", "sqlite3")}
    assert set(results) == expected
    for key, result in results.items():
        if key == ("visibility", "sqlite3"):
            assert result["skipped"] and result["error"] is None
        elif key == ("visibility", "offsetdb-kafka"):
            # Visible on node B minus committed on node A: may be negative (B can apply
            # the record before A's commit returns), so only its presence is checked.
            assert result["error"] is None and result["skipped"] is None
            assert result["ops"] == commits and result["throughput"] > 0
            assert result["check"] == commits  # node B saw every row
            assert result["p99_ms"] >= result["p50_ms"]
        else:
            assert_figures(result, key)
    assert document["check_mismatches"] == []
    assert {c["workload"] for c in document["comparisons"]} == WORKLOADS | {"contention"}
    assert all(c["engine"] == "offsetdb-kafka" for c in document["comparisons"])
    kafka = document["meta"]["kafka"]
    assert kafka["bootstrap"] == kafka_broker.bootstrap and not kafka["started_by_bench"]
    settings = document["meta"]["engines"]["offsetdb-kafka"]["client_settings"]
    assert settings.items() >= kafka_settings.items()  # exported through OFFSETDB_KAFKA_*
    assert "offsetdb-kafka" in completed.stdout and "visibility_sync" in completed.stdout


def test_bench_measures_the_cdc_publisher_when_asked(tmp_path: Path) -> None:
    _, document = run_bench(tmp_path, "--only", "cdc", "--cdc-events", "3000", "--cdc-commits", "40")
    results = {(r["workload"], r["engine"]): r for r in document["results"]}
    assert set(results) == {
        ("cdc_throughput", "offsetdb"), ("cdc_throughput_avro", "offsetdb"), ("cdc_latency", "offsetdb"), ("cdc", "sqlite3")
    }  # fmt: skip
    for workload in ("cdc_throughput", "cdc_throughput_avro"):
        throughput = results[(workload, "offsetdb")]
        assert throughput["error"] is None and throughput["check"] == 3000 and throughput["throughput"] > 0
    latency = results[("cdc_latency", "offsetdb")]
    assert latency["error"] is None and latency["ops"] == 40 and latency["p99_ms"] >= latency["p50_ms"] > 0
    assert results[("cdc", "sqlite3")]["skipped"]



def test_bench_measures_kafka_ingestion_when_asked(tmp_path: Path) -> None:
    _, document = run_bench(
        tmp_path, "--only", "ingest", "--ingest-records", "3000", "--ingest-rate", "500", "--ingest-seconds", "2"
    )
    results = {(r["workload"], r["engine"]): r for r in document["results"]}
    assert set(results) == {
        ("ingest_json", "offsetdb"), ("ingest_avro", "offsetdb"), ("ingest_lag", "offsetdb"),
        ("ingest_json", "sqlite3"), ("ingest_avro", "sqlite3"),
    }  # fmt: skip
    for workload in ("ingest_json", "ingest_avro"):
        for engine in ("offsetdb", "sqlite3"):
            throughput = results[(workload, engine)]
            assert throughput["error"] is None and throughput["check"] == 3000 and throughput["throughput"] > 0
            assert throughput["details"]["cpu_seconds"] > 0
    lag = results[("ingest_lag", "offsetdb")]
    assert lag["error"] is None and lag["check"] == 1000 and lag["p99_ms"] >= lag["p50_ms"] > 0
