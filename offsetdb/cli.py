"""The ``offsetdb`` command: one argparse parser with a subcommand per tool.

Each subcommand is a :class:`Subcommand` in :data:`SUBCOMMANDS`, registered with
:func:`register`: a help line, a function that adds its arguments to its parser and a
function that runs it and returns the exit status. To add one (``digest``, ``replay``),
write those two functions and register them at the bottom of this module, beside ``sql``.

``offsetdb sql [DIR] [-c SQL] [-f FILE]`` opens a database (a directory, by default
``./offsetdb-data``, or a ``kafka://`` URL with ``--data-dir``; or what ``--config``
names) in autocommit mode and then:

- runs each ``-c`` string and ``-f`` script in the order given, or else
- reads a script from standard input when it is not a terminal, or else
- starts the interactive prompt (see :mod:`offsetdb.repl`).

A script stops at its first error; the exit status is then 1, else 0. Results go to
standard output, errors to standard error as ``ERROR <sqlstate>: <message>``.

``offsetdb node --db kafka://... --data-dir DIR`` keeps a replica warm without a prompt
and logs its lag.

``offsetdb demo [TARGET]`` runs the online-shop example (:mod:`offsetdb.examples.orders`):
concurrent order transactions on a fresh database, then a verification of its invariants.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import offsetdb
from offsetdb import errors, repl
from offsetdb.config import NodeConfig, load_node_config
from offsetdb.progress import TerminalProgress

DEFAULT_DATA_DIR = "./offsetdb-data"


@dataclass(frozen=True)
class Subcommand:
    """One ``offsetdb`` subcommand: its help line, argument setup and entry point."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


SUBCOMMANDS: dict[str, Subcommand] = {}


def register(
    name: str,
    help: str,  # noqa: A002 - argparse's own word for it
    configure: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int],
) -> None:
    """Add subcommand ``name``; it appears in ``offsetdb --help`` in registration order."""
    if name in SUBCOMMANDS:
        raise ValueError(f"subcommand {name!r} is already registered")
    SUBCOMMANDS[name] = Subcommand(help, configure, run)


def build_parser() -> argparse.ArgumentParser:
    """Build the ``offsetdb`` parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="offsetdb",
        description="offsetdb: a SQL database whose only source of truth is a log.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, sub in SUBCOMMANDS.items():
        sub_parser = subparsers.add_parser(name, help=sub.help, description=sub.help)
        sub.configure(sub_parser)
        sub_parser.set_defaults(_run=sub.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``offsetdb`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns the process exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args._run
    try:
        return run(args)
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return 130
    except BrokenPipeError:
        # the reader went away (``offsetdb sql ... | head``): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("offsetdb")
    except Exception:  # noqa: BLE001 - running from a source tree that is not installed
        return "unknown"


# --- opening a database ------------------------------------------------------------------


def _add_database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="with a kafka:// URL: this node's replica directory (an empty one is rebuilt from the log)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="node config (TOML: db, data_dir, [settings], [kafka]; see infra/node.toml); "
        "options given here override it",
    )


def _connect(
    args: argparse.Namespace, database: str | None, autocommit: bool, **overrides: Any
) -> offsetdb.Connection:
    """Open the database the arguments name, with the config file's settings.

    ``overrides`` are settings the command decides (None: the config file's, or the default).
    """
    try:
        node = load_node_config(args.config) if args.config else NodeConfig(None, None, {})
    except ValueError as e:
        raise errors.InterfaceError(str(e)) from e
    target = database or node.db or DEFAULT_DATA_DIR
    data_dir = args.data_dir or node.data_dir
    if not target.startswith("kafka://"):
        if args.data_dir:
            raise errors.InterfaceError("--data-dir is for kafka:// URLs; name the directory itself")
        data_dir = None
    settings = {**node.settings, **{k: v for k, v in overrides.items() if v is not None}}
    return offsetdb.connect(target, autocommit=autocommit, data_dir=data_dir, **settings)


# --- offsetdb sql -----------------------------------------------------------------------


class _AppendInput(argparse.Action):
    """Collect ``-c`` and ``-f`` into one list of ``(kind, value)``, keeping their order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        inputs = list(getattr(namespace, self.dest) or [])
        inputs.append((self.const, values))
        setattr(namespace, self.dest, inputs)


def _configure_sql(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "database",
        nargs="?",
        metavar="DIR",
        help=f"data directory or kafka://host:port/db URL (default: {DEFAULT_DATA_DIR})",
    )
    _add_database_options(parser)
    parser.add_argument(
        "-c",
        "--command",
        dest="inputs",
        action=_AppendInput,
        const="command",
        metavar="SQL",
        help="run SQL statement(s) or one backslash command, then exit (repeatable)",
    )
    parser.add_argument(
        "-f",
        "--file",
        dest="inputs",
        action=_AppendInput,
        const="file",
        metavar="FILE",
        help="run the script FILE ('-' for standard input), then exit (repeatable)",
    )
    parser.add_argument(
        "--timing",
        action="store_true",
        default=None,
        help="print each statement's execution time (default: on at the prompt only)",
    )


def _print_error(exc: BaseException) -> None:
    sqlstate = getattr(exc, "sqlstate", None) or "XX000"
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    sys.stdout.flush()
    sys.stderr.write(f"ERROR {sqlstate}: {message}\n")
    sys.stderr.flush()


def _read_lines(kind: str, value: str) -> list[str]:
    if kind == "command":
        return value.split("\n")
    if value == "-":
        return sys.stdin.read().split("\n")
    with open(value, encoding="utf-8") as script:
        return script.read().split("\n")


def _run_sql(args: argparse.Namespace) -> int:
    """Run ``offsetdb sql``: connect, then run the inputs or the interactive prompt."""
    inputs: list[tuple[str, str]] = args.inputs or []
    interactive = not inputs and sys.stdin.isatty()
    # read the script files first, so that a missing one fails before anything runs
    try:
        scripts = [_read_lines(kind, value) for kind, value in inputs]
    except OSError as exc:
        sys.stderr.write(f"offsetdb sql: {exc.filename}: {exc.strerror}\n")
        return 1
    try:
        conn = _connect(args, args.database, autocommit=True)
    except errors.Error as exc:
        _print_error(exc)
        return 1
    except Exception as exc:  # noqa: BLE001 - report any failure to open, then exit 1
        _print_error(errors.OperationalError(f"could not open {args.database}: {exc}"))
        return 1
    timing = interactive if args.timing is None else args.timing
    session = repl.Session(conn, sys.stdout, sys.stderr, timing=timing, interactive=interactive)
    try:
        if interactive:
            banner = (
                f'offsetdb {_version()} ({args.database or DEFAULT_DATA_DIR})\nType "\\?" for help, "\\q" to quit.\n\n'
            )
            return repl.run_interactive(session, banner=banner)
        if not scripts:
            scripts = [sys.stdin.read().split("\n")]
        for lines in scripts:
            status = repl.run_script(session, lines)
            if status != 0 or session.quit_requested:
                return status
        return 0
    finally:
        try:
            conn.close()
        except errors.Error as exc:
            _print_error(exc)


register(
    "sql",
    "run SQL: the interactive prompt, a -c command, a -f script, or a script on stdin",
    _configure_sql,
    _run_sql,
)


# --- offsetdb digest / replay -------------------------------------------------------------


def _configure_digest(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("database", nargs="?", metavar="DIR", help="data directory or kafka:// URL")
    _add_database_options(parser)
    parser.add_argument(
        "--sync",
        action="store_true",
        help="(kafka) first apply everything committed before the command (a sync marker)",
    )


def _run_digest(args: argparse.Namespace) -> int:
    """Print the state digest of a database: sha256, applied offset, row count."""
    try:
        conn = _connect(args, args.database, autocommit=True)
        try:
            if args.sync:
                conn.sync()
            print(conn.state_digest())
        finally:
            conn.close()
    except errors.Error as exc:
        _print_error(exc)
        return 1
    return 0


def _configure_replay(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE", help="data directory whose log to replay")
    parser.add_argument("target", metavar="TARGET", help="empty directory to rebuild into")


def _run_replay(args: argparse.Namespace) -> int:
    """Rebuild SOURCE into TARGET from its log alone; print both digests; 0 if equal."""
    from offsetdb.query.database import digest, replay

    try:
        original = digest(args.source)
        rebuilt = replay(args.source, args.target)
    except errors.Error as exc:
        _print_error(exc)
        return 1
    print(f"source   {original}")
    print(f"replayed {rebuilt}")
    if rebuilt != original:
        sys.stderr.write("replayed state differs from the source\n")
        return 1
    return 0


register("digest", "print a hash of every table's contents at the applied offset", _configure_digest, _run_digest)
register(
    "replay",
    "rebuild a database from its log alone into an empty directory and compare digests",
    _configure_replay,
    _run_replay,
)


# --- offsetdb check -------------------------------------------------------------------------


def _configure_check(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("database", metavar="DIR", help="data directory (not open elsewhere)")
    parser.add_argument(
        "--scratch", metavar="DIR",
        help="where to build the replay of the log (default: the system's temporary directory)",
    )
    parser.add_argument(
        "--no-replay", action="store_true",
        help="verify the files only; skip comparing the state with a replay of the log",
    )


class _StepProgress:
    """One TerminalProgress line per step of a long check."""

    def __init__(self) -> None:
        self._step: str | None = None
        self._line: TerminalProgress | None = None

    def __call__(self, step: str, done: int, total: int, elapsed: float) -> None:
        if step != self._step:
            self.finish()
            self._step, self._line = step, TerminalProgress(step)
        assert self._line is not None
        self._line(done, total, elapsed)

    def finish(self) -> None:
        if self._line is not None:
            self._line.finish()
        self._step, self._line = None, None


def _run_check(args: argparse.Namespace) -> int:
    """Verify every file of a database and its state against a replay; 0 if all is well."""
    from offsetdb.materializers.check import check

    progress = _StepProgress()
    try:
        report = check(args.database, args.scratch, replay=not args.no_replay, progress=progress)
    except errors.Error as exc:
        progress.finish()
        _print_error(exc)
        return 1
    progress.finish()
    print(f"offsetdb check {args.database}")
    for line in report.lines:
        print(f"  {line}")
    if report.ok:
        print("OK")
        return 0
    print(f"DAMAGED: {len(report.problems)} problem(s)")
    for remedy in report.remedies:
        print(remedy)
    print("See docs/integrity.md for what each check means.")
    return 1


register(
    "check",
    "verify every file of a database (checksums, log records) and its state against a replay of its log",
    _configure_check,
    _run_check,
)


# --- offsetdb load -------------------------------------------------------------------------


def _configure_load(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("database", metavar="DIR", help="data directory or kafka:// URL")
    _add_database_options(parser)
    parser.add_argument("table", metavar="TABLE", help="table to load into (must exist)")
    parser.add_argument("file", metavar="FILE.csv", help="CSV file; its first line names the columns")
    parser.add_argument("--batch", type=int, default=10_000, help="rows per transaction (default 10000)")
    parser.add_argument("--no-header", action="store_true", help="the file has no header line")


def _run_load(args: argparse.Namespace) -> int:
    """Load a CSV file in batches, one transaction each, with progress on a terminal."""
    from offsetdb.ingest.bulk import load_csv
    progress = TerminalProgress(f"loading {args.file}", min_seconds=0.5, unit="bytes")

    try:
        conn = _connect(args, args.database, autocommit=False)
    except errors.Error as exc:
        _print_error(exc)
        return 1
    try:
        result = load_csv(conn, args.table, args.file, args.batch, not args.no_header, progress)
    except errors.Error as exc:
        progress.finish()
        _print_error(exc)
        return 1
    except OSError as exc:
        progress.finish()
        sys.stderr.write(f"offsetdb load: {exc.filename}: {exc.strerror}\n")
        return 1
    finally:
        conn.close()
    progress.finish()
    print(
        f"COPY {result.rows}  ({result.batches} transactions, {result.seconds:.2f} s, "
        f"{result.rows_per_second:,.0f} rows/s)"
    )
    return 0


register("load", "bulk-load a CSV file into a table, in batches, with progress", _configure_load, _run_load)


# --- offsetdb node -------------------------------------------------------------------------


def _configure_node(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL", help="kafka://host:port/db (or from --config)")
    _add_database_options(parser)
    parser.add_argument(
        "--run-sources", action="store_true", default=None,
        help="also run the database's Kafka sources (docs/ingest.md); several nodes may",
    )
    parser.add_argument(
        "--status-every", type=float, default=10.0, metavar="SECONDS",
        help="how often to log the applied offset and the lag (default 10)",
    )


def _run_node(args: argparse.Namespace) -> int:
    """Keep a replica of a Kafka database up to date until SIGTERM/SIGINT; log its lag."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    log = logging.getLogger("offsetdb.node")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        conn = _connect(args, args.db, autocommit=True, run_sources=args.run_sources)
    except errors.Error as exc:
        _print_error(exc)
        return 1
    try:
        status = conn.replication_status()
        log.info("node up: %s", status)
        database = conn._check_open()
        database.sources.show_progress = database.sources.running
        previous = status
        while not stop.wait(args.status_every):
            status = conn.replication_status()
            rate = (status.applied_offset - previous.applied_offset) / args.status_every
            log.info("%s, applying %.0f records/s", status, rate)
            for name, stats in database.sources.stats().items():
                log.info(
                    "source %s: %s, %d records (%d rows, %d errors), lag %s",
                    name, stats.state, stats.records, stats.rows, stats.errors,
                    "unknown" if stats.lag is None else stats.lag,
                )
            previous = status
            if status.error:
                return 1
        log.info("stopping: %s", conn.replication_status())
        return 0
    finally:
        conn.close()


register("node", "run a headless node: keep a replica of a Kafka database warm and log its lag", _configure_node, _run_node)


# --- offsetdb sources ----------------------------------------------------------------------


def _configure_sources(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("database", nargs="?", metavar="URL", help="data directory or kafka:// URL")
    _add_database_options(parser)


def _run_sources(args: argparse.Namespace) -> int:
    """Print offsetdb_sources: every Kafka source, its offsets, the broker's ends and the lag."""
    try:
        conn = _connect(args, args.database, autocommit=True, run_sources=False)
    except errors.Error as exc:
        _print_error(exc)
        return 1
    try:
        if args.database and args.database.startswith("kafka://"):
            conn.sync()  # show what every node has committed, not only what this one applied
        cursor = conn.cursor()
        cursor.execute("SELECT * FROM offsetdb_sources ORDER BY name")
        headers = [d[0] for d in cursor.description or []]
        sys.stdout.write(repl.format_table(headers, cursor.fetchall()))
        return 0
    except errors.Error as exc:
        _print_error(exc)
        return 1
    finally:
        conn.close()


register(
    "sources",
    "list the Kafka sources (offsetdb_sources): state, partitions, offsets, broker ends, lag, errors",
    _configure_sources,
    _run_sources,
)


# --- offsetdb subscribe / cdc --------------------------------------------------------------


def _tables_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    tables = [t.strip() for t in text.split(",") if t.strip()]
    return tables or None


def _configure_subscribe(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("database", nargs="?", metavar="DIR", help="data directory or kafka:// URL")
    _add_database_options(parser)
    parser.add_argument("--tables", metavar="A,B", help="tables to follow (default: all)")
    parser.add_argument(
        "--from-offset", type=int, metavar="N",
        help="resume after log offset N (no snapshot); -1 for the whole history",
    )
    parser.add_argument("--no-snapshot", action="store_true", help="start at the present without the tables' rows")
    parser.add_argument("--progress", action="store_true", help='also print {"progress": X} marks when quiet')
    parser.add_argument(
        "--timeout", type=float, metavar="SECONDS",
        help="exit after this long with nothing to print (default: run until interrupted)",
    )


def _run_subscribe(args: argparse.Namespace) -> int:
    """Print one JSON line per committed change (snapshot rows first) until interrupted."""
    from offsetdb.changelines import json_lines

    try:
        conn = _connect(args, args.database, autocommit=True)
    except errors.Error as exc:
        _print_error(exc)
        return 1
    subscription = None
    try:
        subscription = conn.subscribe(
            _tables_list(args.tables),
            from_offset=args.from_offset,
            snapshot=not args.no_snapshot,
            timeout=args.timeout,
        )
        for item in subscription:
            for line in json_lines(item, progress=args.progress):
                sys.stdout.write(line + "\n")
            sys.stdout.flush()
        return 0
    except KeyboardInterrupt:
        return 0
    except errors.Error as exc:
        _print_error(exc)
        return 1
    finally:
        if subscription is not None:
            position = subscription.position
            subscription.close()
            if position is not None:
                sys.stderr.write(f"delivered up to offset {position} (resume with --from-offset {position})\n")
        conn.close()


register(
    "subscribe",
    "print every committed change (after a snapshot of the tables) as JSON lines, until interrupted",
    _configure_subscribe,
    _run_subscribe,
)


def _configure_cdc(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("database", nargs="?", metavar="URL", help="data directory or kafka:// URL")
    _add_database_options(parser)
    parser.add_argument("--topic-prefix", required=True, metavar="PREFIX", help="topics are PREFIX.<table>, PREFIX.transaction, PREFIX.progress")
    parser.add_argument("--tables", metavar="A,B", help="tables to publish (default: all)")
    parser.add_argument(
        "--kafka", metavar="HOST:PORT",
        help="the brokers to publish to (default: the database's own, for a kafka:// URL)",
    )
    parser.add_argument("--format", choices=("json", "avro"), default="json", help="json (Kafka Connect JSON with schemas; default) or avro")
    parser.add_argument("--schema-registry", metavar="URL", help="with --format avro: the schema registry's URL (http(s)://HOST:PORT)")
    parser.add_argument("--publisher-id", metavar="ID", help="names the transactional id (default: the topic prefix)")
    parser.add_argument("--no-snapshot", action="store_true", help="a new publisher starts without the tables' rows")
    parser.add_argument("--from-offset", type=int, metavar="N", help="with --no-snapshot: a new publisher publishes what follows offset N (-1: all history)")
    parser.add_argument("--partitions", type=int, default=1, metavar="N", help="partitions of the table topics it creates (default 1)")
    parser.add_argument("--heartbeat", type=float, default=5.0, metavar="SECONDS", help="seconds between progress records when idle (default 5)")


def _run_cdc(args: argparse.Namespace) -> int:
    """Publish every committed change to Kafka, exactly once, until SIGTERM/SIGINT."""
    from offsetdb.materializers.publisher import PublisherFenced
    from offsetdb.query.cdc import publisher_for

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    log = logging.getLogger("offsetdb.cdc")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        conn = _connect(args, args.database, autocommit=True)
    except errors.Error as exc:
        _print_error(exc)
        return 1
    try:
        last = [0.0]

        def report(stats: object) -> None:
            now = time.monotonic()
            if now - last[0] >= 10:
                last[0] = now
                log.info("published %s", stats)

        publisher = publisher_for(
            conn,
            topic_prefix=args.topic_prefix,
            bootstrap=args.kafka,
            tables=_tables_list(args.tables),
            publisher_id=args.publisher_id,
            snapshot=not args.no_snapshot,
            from_offset=args.from_offset,
            partitions=args.partitions,
            heartbeat_interval=args.heartbeat,
            format=args.format,
            schema_registry=args.schema_registry,
            on_commit=report,
            show_progress=True,
        )
        log.info("publishing %s to %s with prefix %s", args.database, publisher.settings.bootstrap, args.topic_prefix)
        publisher.run(stop)
        log.info("stopped: %s", publisher.stats)
        return 0
    except PublisherFenced as exc:
        _print_error(exc)
        return 1
    except errors.Error as exc:
        _print_error(exc)
        return 1
    finally:
        conn.close()


register(
    "cdc",
    "publish every committed change to Kafka topics (Debezium envelopes), exactly once, until stopped",
    _configure_cdc,
    _run_cdc,
)


# --- offsetdb demo -------------------------------------------------------------------------


def _configure_demo(parser: argparse.ArgumentParser) -> None:
    from offsetdb.examples import orders

    parser.add_argument(
        "database",
        nargs="?",
        metavar="TARGET",
        help="an empty data directory or a kafka://host:port/db URL (default: a fresh temporary directory)",
    )
    _add_database_options(parser)
    orders.add_arguments(parser)


def _run_demo(args: argparse.Namespace) -> int:
    """Run the online-shop example (examples/orders.py): concurrent orders, then verification."""
    from offsetdb.examples import orders

    try:
        sizes = orders.sizes_from_args(args)
    except ValueError as exc:
        sys.stderr.write(f"offsetdb demo: {exc}\n")
        return 2
    target = args.database
    if target is None and args.config is None:
        target = tempfile.mkdtemp(prefix="offsetdb-demo-")
    where = target or f"the database of {args.config}"
    try:
        report = orders.run(lambda: _connect(args, target, autocommit=False), sizes, where=where)
    except errors.Error as exc:
        _print_error(exc)
        return 1
    return 0 if report.ok else 1


register(
    "demo",
    "run the online-shop example: concurrent order transactions, conflict retries, then a verification",
    _configure_demo,
    _run_demo,
)


if __name__ == "__main__":
    # ``python -m offsetdb.cli``: run the registry of the importable module, so that
    # subcommands registered from elsewhere with ``offsetdb.cli.register`` are included.
    from offsetdb.cli import main as _main

    sys.exit(_main())
