"""Running Kafka sources on a database, and the ``offsetdb_sources`` view.

The ingesters (:mod:`offsetdb.ingest.ingester`) know a small host protocol, not
databases; this module gives them one (:class:`DatabaseHost`: transactions of the
database's own sessions, its commit path and its fences) and runs one ingester thread
per RUNNING source (:class:`SourceRunner`). Which processes run sources:

- an embedded database: the process that has it open (``run_sources`` defaults to on);
- a Kafka database: the nodes started with ``run_sources=True`` (``offsetdb node
  --run-sources``). Several may run the same source; certification keeps each record
  exactly once (their batches conflict on the offset rows), and when one dies another
  goes on from the stored offsets.

The runner follows the catalog: every second (and at once after a CREATE/ALTER SOURCE
in this process) it reads the definitions at the newest snapshot, starts ingesters for
new or resumed sources and stops those of dropped or paused ones.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from offsetdb import errors
from offsetdb.ingest.ingester import Ingester, IngesterStats, SourceTransaction
from offsetdb.kafka_log import client_settings
from offsetdb.materializers.sources import SOURCES_VIEW, VIEW, PartitionOffset, SourceDefinition
from offsetdb.progress import TerminalProgress
from offsetdb.query import sourcecatalog
from offsetdb.query.session import Session
from offsetdb.query.transaction import Transaction, View

if TYPE_CHECKING:
    from offsetdb.query.database import Database

logger = logging.getLogger(__name__)

POLL_INTERVAL = 1.0


class DatabaseHost:
    """The :class:`~offsetdb.ingest.ingester.SourceHost` of an open database."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._session = Session(database)
        self.timeout = database.config.kafka_timeout

    def begin(self) -> Transaction:
        """A SERIALIZABLE transaction at the newest applied snapshot (pinned until :meth:`end`)."""
        return self._session.begin_transaction("SERIALIZABLE")

    def end(self, txn: SourceTransaction) -> None:
        """Unpin the transaction's snapshot."""
        assert isinstance(txn, Transaction)
        self._db.materializer.snapshots.unpin(txn.snapshot_offset)

    def definition(self, txn: SourceTransaction, name: str) -> SourceDefinition | None:
        """The source ``name`` as the transaction sees it."""
        assert isinstance(txn, Transaction)
        return sourcecatalog.definition(txn, name)

    def offsets(self, txn: SourceTransaction, name: str) -> dict[int, PartitionOffset]:
        """The stored offsets of ``name``."""
        assert isinstance(txn, Transaction)
        return sourcecatalog.offsets(txn, name)

    def commit(self, txn: SourceTransaction) -> int:
        """Commit through the database's writer; the commit offset."""
        assert isinstance(txn, Transaction)
        return self._session.commit_transaction(txn)

    def settle(self, txn_id: str) -> bool:
        """Whether ``txn_id`` committed (a fence makes the answer final)."""
        return self._db.resolve_outcome(txn_id, self.timeout).committed

    def kafka_settings(self, bootstrap: str | None) -> dict[str, Any]:
        """Client settings for a source's brokers (default: the database's own)."""
        if bootstrap is None:
            if self._db.kafka is None:
                raise errors.ProgrammingError(
                    "the source names no brokers and the database is not on Kafka: "
                    "CREATE SOURCE ... WITH (bootstrap = 'HOST:PORT')", "42601"
                )
            bootstrap = self._db.kafka.bootstrap
        return {
            "bootstrap.servers": bootstrap,
            "logger": logging.getLogger("offsetdb.kafka.client"),
            **client_settings(self._db.config.kafka),
        }


class SourceRunner:
    """Runs the database's RUNNING sources in this process, one ingester thread each."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._host = DatabaseHost(database)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._ingesters: dict[str, tuple[Ingester, threading.Thread, threading.Event]] = {}
        self._lock = threading.Lock()
        self.show_progress = False
        self._progress: dict[str, TerminalProgress] = {}
        self._ends_cache: dict[tuple[str | None, str], tuple[float, dict[int, int] | None]] = {}

    @property
    def running(self) -> bool:
        """Whether this process runs sources."""
        return self._thread is not None

    def start(self) -> None:
        """Start following the catalog (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="offsetdb-sources", daemon=True)
            self._thread.start()

    def poke(self) -> None:
        """Look at the catalog now (a source statement committed in this process)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop every ingester and the runner; waits for them."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            ingesters = list(self._ingesters.values())
            self._ingesters.clear()
        for _, _, stop in ingesters:
            stop.set()
        for _, thread, _ in ingesters:
            thread.join()

    def stats(self) -> dict[str, IngesterStats]:
        """What each ingester of this process has done, by source."""
        with self._lock:
            return {name: ingester.stats for name, (ingester, _, _) in self._ingesters.items()}

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._reconcile()
            except errors.Error as e:
                logger.warning("sources: %s", e.message)
            self._wake.wait(POLL_INTERVAL)
            self._wake.clear()

    def _reconcile(self) -> None:
        host = self._host
        txn = host.begin()
        try:
            wanted = {d.name for d in sourcecatalog.definitions(txn) if d.state == "RUNNING"}
        finally:
            host.end(txn)
        with self._lock:
            for name, (_, thread, stop) in list(self._ingesters.items()):
                if name not in wanted:
                    stop.set()
                if not thread.is_alive():
                    del self._ingesters[name]
            for name in wanted - set(self._ingesters):
                if self._stop.is_set():
                    return
                stop = threading.Event()
                ingester = Ingester(name, host, stop, on_batch=self._reporter(name))
                thread = threading.Thread(target=ingester.run, name=f"offsetdb-source-{name}", daemon=True)
                self._ingesters[name] = (ingester, thread, stop)
                thread.start()
                logger.info("source %s: ingesting", name)

    def _reporter(self, name: str) -> Any:
        started = time.monotonic()

        def report(stats: IngesterStats) -> None:
            if not self.show_progress:
                return
            progress = self._progress.get(name)
            if progress is None:
                progress = self._progress[name] = TerminalProgress(f"source {name}", min_seconds=1.0)
            lag = stats.lag or 0
            progress(stats.records, stats.records + lag, time.monotonic() - started)

        return report

    # --- the offsetdb_sources view -------------------------------------------------------

    def view(self) -> View:
        """The definition and row function of ``offsetdb_sources``."""
        return VIEW, self._view_rows

    def _view_rows(self, txn: Transaction) -> list[tuple[Any, ...]]:
        live = self.stats()
        rows = []
        for definition in sourcecatalog.definitions(txn):
            stored = sourcecatalog.offsets(txn, definition.name)
            stats = live.get(definition.name)
            if stats is not None:
                runner = stats.state
                ends: dict[int, int] | None = dict(stats.ends) or None
            else:
                runner = "not run by this node" if self.running else "sources are not run by this process"
                ends = self._broker_ends(definition)
            partitions = sorted(set(stored) | set(ends or {}))
            lag = None
            if ends is not None:
                lag = sum(max(0, ends[p] - (stored[p].next_offset if p in stored else 0)) for p in ends)
            rows.append(
                (
                    definition.name,
                    definition.topic,
                    definition.format,
                    definition.mode,
                    definition.into,
                    definition.state,
                    len(partitions),
                    " ".join(f"{p}:{stored[p].next_offset}" for p in sorted(stored)) or None,
                    " ".join(f"{p}:{ends[p]}" for p in sorted(ends)) if ends else None,
                    lag,
                    sum(s.records for s in stored.values()),
                    sum(s.rows_written for s in stored.values()),
                    sum(s.errors for s in stored.values()),
                    runner,
                )
            )
        return rows

    def _broker_ends(self, definition: SourceDefinition) -> dict[int, int] | None:
        """The high watermarks of a source's topic, asked of its brokers (cached 2 s)."""
        cache_key = (definition.bootstrap, definition.topic)
        cached = self._ends_cache.get(cache_key)
        if cached is not None and time.monotonic() - cached[0] < 2.0:
            return cached[1]
        ends: dict[int, int] | None = None
        try:
            settings = self._host.kafka_settings(definition.bootstrap)
            consumer = Consumer({**settings, "group.id": "offsetdb-sources-view", "socket.timeout.ms": 2000})
            try:
                topic = consumer.list_topics(timeout=2).topics.get(definition.topic)
                if topic is not None and topic.error is None:
                    ends = {}
                    for p in topic.partitions:
                        _, high = consumer.get_watermark_offsets(
                            TopicPartition(definition.topic, p), timeout=2, cached=False
                        )
                        ends[p] = high
            finally:
                consumer.close()
        except (KafkaException, errors.Error, RuntimeError):
            ends = None
        self._ends_cache[cache_key] = (time.monotonic(), ends)
        return ends


def views_of(runner: SourceRunner) -> dict[str, View]:
    """The system views a database's transactions see."""
    return {SOURCES_VIEW: runner.view()}
