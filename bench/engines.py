"""The databases a benchmark compares, behind one small :class:`Engine` protocol.

An engine knows how to make a fresh, empty database (a directory, or later a Kafka
topic), how to open a PEP 249 connection to it, and which errors mean "try again".
Every workload talks to engines only through this protocol and plain DB-API calls with
``?`` parameters, so the same SQL runs on each. To add an engine (the Kafka backend of
offsetdb, PostgreSQL), write a class with these members and add it in
:func:`build_engines`.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any, Protocol


class DBConnection(Protocol):
    """The part of a PEP 249 connection the workloads use."""

    def cursor(self) -> Any:
        """Open a cursor."""
        ...

    def commit(self) -> None:
        """Commit the open transaction."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


class Engine(Protocol):
    """A database under test."""

    name: str

    def settings(self) -> dict[str, Any]:
        """Version and settings, recorded with the results."""
        ...

    def create_database(self, workdir: Path, label: str) -> str:
        """Make a new, empty database for one workload; return what :meth:`connect` takes.

        ``workdir`` is a fresh temporary directory owned by this engine's run.
        """
        ...

    def connect(self, target: str, *, autocommit: bool) -> DBConnection:
        """Open a connection; with ``autocommit`` every statement commits by itself."""
        ...

    def is_retryable(self, exc: BaseException) -> bool:
        """Tell whether ``exc`` means the operation may simply be run again."""
        ...


class OffsetdbEngine:
    """offsetdb through its driver, ``offsetdb.connect``.

    ``synchronous`` is passed to the database: ``"normal"`` (the default here) writes the
    log without fsync on each commit, the durability of SQLite's ``synchronous=NORMAL``
    in WAL mode that the sqlite3 engine uses; ``"full"`` fsyncs every commit.

    ``backend`` is where databases are made: None for a directory under the run's
    temporary directory (the embedded log); a ``kafka://host:port`` URL will give each
    database its own name under that broker once the driver supports it.
    """

    name = "offsetdb"

    def __init__(self, synchronous: str = "normal", backend: str | None = None) -> None:
        self.synchronous = synchronous
        self.backend = backend

    def settings(self) -> dict[str, Any]:
        """Version and settings, recorded with the results."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            offsetdb_version = version("offsetdb")
        except PackageNotFoundError:
            offsetdb_version = "source tree"
        return {
            "version": offsetdb_version,
            "synchronous": self.synchronous,
            "backend": self.backend or "embedded",
        }

    def create_database(self, workdir: Path, label: str) -> str:
        """Name a new database: a directory under ``workdir`` or a database on the broker."""
        if self.backend is not None:
            return f"{self.backend.rstrip('/')}/bench_{label}_{uuid.uuid4().hex[:12]}"
        return str(workdir / label)

    def connect(self, target: str, *, autocommit: bool) -> DBConnection:
        """Open ``offsetdb.connect(target)`` with this engine's durability setting."""
        import offsetdb

        return offsetdb.connect(target, autocommit=autocommit, synchronous=self.synchronous)

    def is_retryable(self, exc: BaseException) -> bool:
        """A serialization failure (40001) leaves no trace and may be retried."""
        from offsetdb import errors

        return isinstance(exc, errors.SerializationFailure)


class Sqlite3Engine:
    """Python's sqlite3: WAL mode, ``synchronous=NORMAL``, a busy timeout for writers.

    The tables are created with the same SQL as offsetdb's, so ``BIGINT PRIMARY KEY`` is
    a separate unique index rather than SQLite's rowid alias (``INTEGER PRIMARY KEY``).
    """

    name = "sqlite3"

    def __init__(self, busy_timeout_ms: int = 10_000) -> None:
        self.busy_timeout_ms = busy_timeout_ms

    def settings(self) -> dict[str, Any]:
        """Version and settings, recorded with the results."""
        return {
            "version": sqlite3.sqlite_version,
            "journal_mode": "wal",
            "synchronous": "normal",
            "busy_timeout_ms": self.busy_timeout_ms,
        }

    def create_database(self, workdir: Path, label: str) -> str:
        """Name a new database file under ``workdir``, switched to WAL mode."""
        path = workdir / f"{label}.sqlite"
        conn = sqlite3.connect(path)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()
        return str(path)

    def connect(self, target: str, *, autocommit: bool) -> DBConnection:
        """Open the file; ``autocommit`` disables the module's implicit transactions."""
        conn = sqlite3.connect(
            target,
            isolation_level=None if autocommit else "DEFERRED",
            timeout=self.busy_timeout_ms / 1000.0,
            check_same_thread=False,
        )
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
        return conn

    def is_retryable(self, exc: BaseException) -> bool:
        """SQLITE_BUSY past the busy timeout ("database is locked") may be retried."""
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


ENGINE_NAMES = ("offsetdb", "sqlite3")
BASELINE = "sqlite3"


def build_engines(names: list[str], *, offsetdb_synchronous: str) -> list[Engine]:
    """The engines called ``names``, in that order.

    A ``--backend kafka://...`` option would pass its URL here as
    ``OffsetdbEngine(backend=url)``.
    """
    engines: list[Engine] = []
    for name in names:
        if name == "offsetdb":
            engines.append(OffsetdbEngine(synchronous=offsetdb_synchronous))
        elif name == "sqlite3":
            engines.append(Sqlite3Engine())
        else:
            raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINE_NAMES)}")
    return engines
