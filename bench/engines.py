"""The databases a benchmark compares, behind one small :class:`Engine` protocol.

An engine knows how to make a fresh, empty database (a directory, or a database on a
Kafka broker), how to open a PEP 249 connection to it, and which errors mean "try
again". Every workload talks to engines only through this protocol and plain DB-API
calls with ``?`` parameters, so the same SQL runs on each. To add an engine
(PostgreSQL), write a class with these members and add it in :func:`build_engines`.

Engines whose databases can have several nodes (offsetdb on Kafka) also offer
:meth:`OffsetdbEngine.node_target`, which the ``visibility`` workload needs.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from bench.brokers import KafkaBackend


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
    # The statement opening an explicit read-modify-write transaction (``contention``).
    begin_read_write: str
    # What :meth:`is_retryable` accepts, in words, recorded with the results.
    retry_on: str

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

    def release(self) -> None:
        """Close what :meth:`create_database` kept open (called after every workload)."""
        ...

    def cleanup(self, *, keep: bool) -> None:
        """Remove what lives outside ``workdir`` (Kafka topics) unless ``keep``; at the end."""
        ...


class OffsetdbEngine:
    """offsetdb through its driver, ``offsetdb.connect``.

    ``synchronous`` is passed to the database: ``"normal"`` (the default here) writes the
    log without fsync on each commit, the durability of SQLite's ``synchronous=NORMAL``
    in WAL mode that the sqlite3 engine uses; ``"full"`` fsyncs every commit.

    ``backend`` is where databases are made: None for a directory under the run's
    temporary directory (the embedded log); a ``kafka://host:port`` URL for a new database
    per workload on that broker (log topic ``offsetdb.bench_<label>_<id>.log``), with
    this node's replica in a directory under the run's temporary directory and
    ``kafka_settings`` (librdkafka settings, e.g. ``fetch.wait.max.ms`` for Tansu) passed
    to every node as ``connect(kafka=...)``. ``synchronous`` does not apply there: a
    commit is durable when the broker acknowledges it (``acks=all``).

    On Kafka the node a database's first connection opens stays open until
    :meth:`release` (after the workload), as a server's node would: every later
    connection of the workload shares it. Otherwise each workload's first timed commit
    would pay the opening of a new node's idempotent producer (its ProducerId request,
    0.5-1 s with librdkafka), which no steady-state commit pays.
    """

    # Optimistic: reads never wait; certification decides at COMMIT.
    begin_read_write = "BEGIN"
    retry_on = "SQLSTATE 40001 (offsetdb.errors.SerializationFailure)"

    def __init__(
        self,
        synchronous: str = "normal",
        backend: str | None = None,
        *,
        kafka_settings: dict[str, str] | None = None,
        broker: KafkaBackend | None = None,
        name: str | None = None,
    ) -> None:
        self.synchronous = synchronous
        self.backend = backend.rstrip("/") if backend else None
        if self.backend is not None and not self.backend.startswith("kafka://"):
            raise ValueError(f"backend must be None or a kafka:// URL, not {backend!r}")
        self.is_kafka = self.backend is not None
        self.kafka_settings = dict(kafka_settings or {})
        self.broker = broker
        self.name = name or ("offsetdb-kafka" if self.is_kafka else "offsetdb")
        self._nodes: list[Any] = []  # connections holding this workload's nodes open
        self._databases: list[str] = []  # Kafka database names made by this engine

    def settings(self) -> dict[str, Any]:
        """Version and settings, recorded with the results."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            offsetdb_version = version("offsetdb")
        except PackageNotFoundError:
            offsetdb_version = "source tree"
        if not self.is_kafka:
            return {
                "version": offsetdb_version,
                "synchronous": self.synchronous,
                "backend": self.backend or "embedded",
            }
        from offsetdb.kafka_log import client_settings

        return {
            "version": offsetdb_version,
            "backend": "kafka",
            "url": self.backend,
            "durability": "acks=all (the broker's); synchronous does not apply",
            "broker": None if self.broker is None else self.broker.describe(),
            # What the nodes use: OFFSETDB_KAFKA_* variables overridden by the explicit ones.
            "client_settings": client_settings(self.kafka_settings),
        }

    def create_database(self, workdir: Path, label: str) -> str:
        """Name a new database: a directory under ``workdir`` or a database on the broker."""
        if self.backend is None:
            return str(workdir / label)
        database = f"bench_{label}_{uuid.uuid4().hex[:12]}"
        target = f"{self.backend}/{database}?data_dir={quote(str(workdir / database))}"
        self._databases.append(database)
        # The node stays open for the workload (see the class docstring).
        self._nodes.append(self.connect(target, autocommit=True))
        return target

    def node_target(self, target: str, data_dir: Path) -> str:
        """The same Kafka database as ``target``, seen by another node whose replica is ``data_dir``."""
        if not self.is_kafka:
            raise ValueError(f"{self.name} databases have a single node")
        parts = urlsplit(target)
        return urlunsplit(parts._replace(query=f"data_dir={quote(str(data_dir))}"))

    def connect_settings(self) -> dict[str, Any]:
        """The settings :meth:`connect` passes to ``offsetdb.connect`` (for another process)."""
        if self.is_kafka:
            return {"kafka": dict(self.kafka_settings)}
        return {"synchronous": self.synchronous}

    def connect(self, target: str, *, autocommit: bool) -> DBConnection:
        """Open ``offsetdb.connect(target)`` with this engine's settings."""
        import offsetdb

        return offsetdb.connect(target, autocommit=autocommit, **self.connect_settings())

    def is_retryable(self, exc: BaseException) -> bool:
        """A serialization failure (40001) leaves no trace and may be retried."""
        from offsetdb import errors

        return isinstance(exc, errors.SerializationFailure)

    def release(self) -> None:
        """Close the nodes the workload's databases kept open."""
        nodes, self._nodes = self._nodes, []
        for conn in nodes:
            conn.close()

    def cleanup(self, *, keep: bool) -> None:
        """Close every node; delete the log topics made on the broker, unless ``keep``."""
        self.release()
        if keep or not self._databases or self.backend is None:
            return
        from offsetdb.config import Config

        prefix = Config().topic_prefix
        topics = [f"{prefix}.{name}.log" for name in self._databases]
        self._databases = []
        _delete_topics(urlsplit(self.backend).netloc, topics, self.kafka_settings)


def _delete_topics(bootstrap: str, topics: list[str], settings: dict[str, str]) -> None:
    """Delete ``topics`` (best effort: a broker that refuses only leaves them behind)."""
    import sys

    from confluent_kafka.admin import AdminClient

    from offsetdb.kafka_log import client_settings

    # Connection settings only (security, SASL, TLS): consumer and producer settings would
    # only make librdkafka warn on an admin client.
    connection = {
        k: v
        for k, v in client_settings(settings).items()
        if k.startswith(("security.", "sasl.", "ssl.", "socket.", "client.", "broker."))
    }
    admin = AdminClient({"bootstrap.servers": bootstrap, **connection})
    failed = []
    for topic, future in admin.delete_topics(topics, operation_timeout=30).items():
        try:
            future.result(timeout=60)
        except Exception as exc:  # noqa: BLE001 - reported, never fatal
            failed.append(f"{topic}: {exc}")
    if failed:
        print(f"could not delete {len(failed)} bench topic(s): {failed[0]}", file=sys.stderr)


class Sqlite3Engine:
    """Python's sqlite3: WAL mode, ``synchronous=NORMAL``, a busy timeout for writers.

    The tables are created with the same SQL as offsetdb's, so ``BIGINT PRIMARY KEY`` is
    a separate unique index rather than SQLite's rowid alias (``INTEGER PRIMARY KEY``).
    """

    name = "sqlite3"
    # The write lock at BEGIN, as SQLite advises for read-modify-write: a deferred
    # transaction that reads first would fail its first write with SQLITE_BUSY whenever
    # another writer committed since its read began, whatever rows either touched.
    begin_read_write = "BEGIN IMMEDIATE"
    retry_on = "SQLITE_BUSY past busy_timeout ('database is locked')"

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

    def release(self) -> None:
        """Nothing stays open between workloads."""

    def cleanup(self, *, keep: bool) -> None:
        """Everything lives in the run's directory."""


ENGINE_NAMES = ("offsetdb", "offsetdb-kafka", "sqlite3")
DEFAULT_ENGINES = ("offsetdb", "sqlite3")
KAFKA_ENGINE = "offsetdb-kafka"
BASELINE = "sqlite3"


def build_engines(
    names: list[str], *, offsetdb_synchronous: str, kafka: KafkaBackend | None = None
) -> list[Engine]:
    """The engines called ``names``, in that order.

    ``offsetdb-kafka`` needs ``kafka``, the broker its databases go to.
    """
    engines: list[Engine] = []
    for name in names:
        if name == "offsetdb":
            engines.append(OffsetdbEngine(synchronous=offsetdb_synchronous))
        elif name == KAFKA_ENGINE:
            if kafka is None:
                raise ValueError(f"{KAFKA_ENGINE} needs a Kafka broker")
            engines.append(
                OffsetdbEngine(
                    backend=f"kafka://{kafka.bootstrap}",
                    kafka_settings=kafka.client_settings,
                    broker=kafka,
                    name=KAFKA_ENGINE,
                )
            )
        elif name == "sqlite3":
            engines.append(Sqlite3Engine())
        else:
            raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINE_NAMES)}")
    return engines
