"""The command line of ``python -m bench``: choose workloads and sizes, run, report."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench.engines import ENGINE_NAMES, build_engines
from bench.measure import Result
from bench.report import render_notes, render_table, to_json, write_json
from bench.workloads import WORKLOADS, EngineRun, Sizes

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"


def _positive(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m bench`` argument parser."""
    defaults = Sizes()
    names = [w.name for w in WORKLOADS]
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark offsetdb side by side with sqlite3 on the same machine and data.",
    )
    parser.add_argument(
        "--rows", type=_positive, default=defaults.rows, help="rows loaded (default: %(default)s)"
    )
    parser.add_argument(
        "--batch",
        type=_positive,
        default=defaults.batch,
        help="rows per commit in bulk_load (default: %(default)s)",
    )
    parser.add_argument(
        "--commits",
        type=_positive,
        default=defaults.commits,
        help="autocommit INSERTs per autocommit run (default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=_positive,
        default=defaults.threads,
        help="threads of autocommit_mt (default: %(default)s)",
    )
    parser.add_argument(
        "--selects",
        type=_positive,
        default=defaults.selects,
        help="point selects (default: %(default)s)",
    )
    parser.add_argument(
        "--scans",
        type=_positive,
        default=defaults.scans,
        help="repetitions of the filtered scan (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="seed of the generated rows and ids (default: %(default)s)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME[,NAME]",
        help=f"run only these workloads (repeatable): {', '.join(names)}",
    )
    parser.add_argument(
        "--engines",
        default=",".join(ENGINE_NAMES),
        help="comma-separated engines to run (default: %(default)s)",
    )
    parser.add_argument(
        "--offsetdb-synchronous",
        choices=("normal", "full"),
        default="normal",
        help="offsetdb durability: normal (no fsync per commit, as sqlite3's synchronous=NORMAL) or full",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help="where to write the results (default: bench/results/latest.json)",
    )
    parser.add_argument(
        "--tmpdir",
        type=Path,
        default=None,
        help="parent of the temporary database directories (default: the system's)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary database directories"
    )
    return parser


def _selected(only: list[str] | None) -> list[str]:
    names = [w.name for w in WORKLOADS]
    if not only:
        return names
    wanted = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise SystemExit(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(names)}")
    return [n for n in names if n in wanted]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected workloads on every engine; print and save the results.

    Returns 0 when every workload ran (whatever the figures), 1 when one failed.
    """
    args = build_parser().parse_args(argv)
    selected = _selected(args.only)
    sizes = Sizes(
        rows=args.rows,
        batch=args.batch,
        commits=args.commits,
        threads=args.threads,
        selects=args.selects,
        scans=args.scans,
        seed=args.seed,
    )
    engines = build_engines(
        [n.strip() for n in args.engines.split(",") if n.strip()],
        offsetdb_synchronous=args.offsetdb_synchronous,
    )
    if args.tmpdir is not None:
        args.tmpdir.mkdir(parents=True, exist_ok=True)
    runs = [
        EngineRun(e, Path(tempfile.mkdtemp(prefix=f"bench-{e.name}-", dir=args.tmpdir)))
        for e in engines
    ]
    print(
        f"offsetdb bench: {sizes.rows:,} rows loaded in batches of {sizes.batch:,} rows per commit; "
        f"{sizes.commits:,} autocommit INSERTs per run (1 and {sizes.threads} threads); "
        f"{sizes.selects:,} point selects; {sizes.scans} filtered scans",
        flush=True,
    )
    results: list[Result] = []
    try:
        for workload in WORKLOADS:
            if workload.name not in selected:
                continue
            for run in runs:
                try:
                    result = workload.run(run, sizes)
                except Exception as exc:  # noqa: BLE001 - one failure must not hide the rest
                    traceback.print_exc(file=sys.stderr)
                    result = Result(
                        workload=workload.name,
                        engine=run.engine.name,
                        unit="",
                        error=f"{type(exc).__name__}: {exc}",
                    )
                results.append(result)
                if result.error is None:
                    print(
                        f"  {workload.name:<14} {run.engine.name:<9} {result.throughput:>14,.0f} "
                        f"{result.unit:<10} p50 {result.p50_ms:8.3f} ms  p99 {result.p99_ms:8.3f} ms",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for run in runs:
            if args.keep:
                print(f"kept {run.engine.name} databases in {run.workdir}", file=sys.stderr)
            else:
                shutil.rmtree(run.workdir, ignore_errors=True)

    print()
    print(render_table(results), end="")
    print()
    print(render_notes(results), end="")
    meta = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sizes": vars(sizes),
        "workloads": selected,
        "engines": {run.engine.name: run.engine.settings() for run in runs},
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    write_json(args.json, to_json(results, meta))
    print(f"results written to {args.json}")
    return 1 if any(r.error is not None for r in results) else 0
