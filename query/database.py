"""An open database in this process: the store, the log, the materializer and the writer.

Connections to the same directory share one :class:`Database` (RocksDB admits one
owner per directory, and sharing the materializer is what makes commits visible to
every connection at once). It is opened by the first ``connect`` and closed with the
last connection.

Two backends: the embedded log lives in the directory itself and committers apply it
as they append; a Kafka log is shared by every node of the database, so the directory
holds this node's replica and a :class:`~offsetdb.materializers.follower.LogFollower`
thread applies the log as it grows, whoever appended to it.
"""

from __future__ import annotations

import os
import threading
import uuid
from dataclasses import dataclass

from offsetdb import errors, integrity
from offsetdb.config import Config
from offsetdb.embedded_log import EmbeddedLog
from offsetdb.ingest.writer import TransactionWriter
from offsetdb.kafka_log import KafkaLog, KafkaTarget
from offsetdb.materializers.applier import Materializer, Outcome
from offsetdb.materializers.follower import LogFollower, catch_up_at_open
from offsetdb.materializers.replay import Digest, copy_log, state_digest
from offsetdb.progress import TerminalProgress
from offsetdb.schemas.codec import encode_log_record
from offsetdb.store import Store, open_store

_IDENTITY_KEY = b"log_identity"


@dataclass(frozen=True)
class ReplicationStatus:
    """How far this node's replica is behind its log."""

    applied_offset: int
    log_end: int  # one past the newest offset, as the broker reports it (informative only)
    error: str | None = None  # why this node stopped applying, if it did

    @property
    def lag(self) -> int:
        """Records in the log this node has not applied yet."""
        return max(0, self.log_end - 1 - self.applied_offset)

    def __str__(self) -> str:
        text = f"applied offset {self.applied_offset}, log end {self.log_end}, lag {self.lag} records"
        return text if self.error is None else f"{text}; STOPPED: {self.error}"

_registry: dict[str, Database] = {}
_registry_lock = threading.Lock()


class Database:
    """One database directory, opened once per process and shared by its connections."""

    def __init__(self, path: str, config: Config, kafka: KafkaTarget | None = None) -> None:
        self.path = path
        self.config = config
        self.kafka = kafka
        self.store: Store = open_store(path)
        self.follower: LogFollower | None = None
        self.log: EmbeddedLog | KafkaLog | None = None
        try:
            if kafka is None:
                self._open_embedded()
            else:
                self._open_kafka(kafka)
            from offsetdb.query.sources import SourceRunner, views_of

            self.sources = SourceRunner(self)
            self.views = views_of(self.sources)
            run = config.run_sources if config.run_sources is not None else kafka is None
            if run:
                self.sources.start()
        except BaseException as e:
            # A bare RocksDB "Corruption:" met while opening: the file, the remedy.
            damage = integrity.from_rocksdb(e, self.store.rocks_path)
            if self.follower is not None:
                self.follower.stop()
                self.follower = None
            if self.log is not None:
                self.log.close()
            # Drop every holder of RocksDB handles, so that the directory unlocks.
            self.__dict__.pop("writer", None)
            self.__dict__.pop("materializer", None)
            self.store.close()
            if damage is not None and damage is not e:
                raise damage from e
            raise
        self._references = 0

    def _open_embedded(self) -> None:
        self._claim_directory("embedded")
        self.log = log = EmbeddedLog(
            self.store.db, self.store.log, sync=self.config.synchronous == "full"
        )
        progress = TerminalProgress("applying log")
        self.materializer = Materializer(self.store, log, self.config, progress)
        # Records appended but not applied before a crash are applied now, before any
        # reader can take a snapshot.
        self.materializer.catch_up()
        progress.finish()
        self.writer = TransactionWriter(log, after_append=lambda _: self.materializer.catch_up())
        self.max_record_bytes: int | None = None
        # A commit's outcome is known when its append returns: nothing to wait for.
        self.commit_timeout: float | None = None
        self._record_settings()

    def _open_kafka(self, target: KafkaTarget) -> None:
        self.log = log = KafkaLog(target, self.config)
        self._claim_directory(f"kafka:{log.topic}")
        self.materializer = materializer = Materializer(self.store, log, self.config)
        progress = TerminalProgress(f"replaying {log.topic}")
        catch_up_at_open(
            materializer, log, lambda: materializer.next_offset, progress, self.config.kafka_timeout
        )
        progress.finish()
        self.follower = LogFollower(materializer, name=f"offsetdb-follow-{target.database}")
        self.follower.start()
        self.writer = TransactionWriter(log, after_append=materializer.apply_appended)
        self.max_record_bytes = log.max_record_bytes
        self.commit_timeout = self.config.kafka_timeout
        self._record_settings()

    def _record_settings(self) -> None:
        """Put the settings that decide outcomes in the log, if no node has yet.

        Nodes opening a new database at once may each append theirs; the first in the
        log holds everywhere, so no two nodes certify with different windows.
        """
        if self.materializer.settings is not None:
            return
        record = encode_log_record(
            {"certification_window": self.config.certification_window}, "DatabaseSettings"
        )
        self.wait_for(self.writer.append(record), self.commit_timeout or 30.0)

    def _claim_directory(self, identity: str) -> None:
        """Bind the directory to one log, so a replica is never fed another database's log."""
        meta = self.store.meta
        stored = meta.get(_IDENTITY_KEY)
        if stored is None:
            # Directories written before identities were recorded hold embedded databases.
            fresh = meta.get(b"next_offset") is None
            stored = identity.encode() if fresh else b"embedded"
            meta.put(_IDENTITY_KEY, stored)
        if stored.decode() != identity:
            raise errors.CannotConnect(
                f"{self.path} holds the database of log {stored.decode()!r}, not of "
                f"{identity!r}; use another data directory"
            )

    # --- waiting for the log --------------------------------------------------------------

    def catch_up(self) -> None:
        """Apply (embedded) or wait for (Kafka) every record this node knows is in the log."""
        if self.follower is None:
            self.materializer.catch_up()
        else:
            self.wait_for(self.log_end() - 1, self.config.kafka_timeout)

    def log_end(self) -> int:
        """One past the newest offset this node knows to be in the log."""
        assert self.log is not None
        return self.log.end_offset()

    def wait_for(self, offset: int, timeout: float | None) -> int:
        """Wait until this node has applied ``offset``; returns the applied offset.

        Raises SyncTimeout (57014) when ``timeout`` seconds pass first.
        """
        materializer = self.materializer
        if not materializer.wait_applied(offset, timeout):
            raise errors.SyncTimeout(
                f"offset {offset} was not applied on this node within {timeout:g}s "
                f"(applied up to {materializer.applied_offset}); the log may be unreachable "
                "or this node far behind"
            )
        return materializer.applied_offset

    def replication_status(self) -> ReplicationStatus:
        """The applied offset of this node against the log's end (a broker hint on Kafka)."""
        materializer = self.materializer
        log = self.log
        end = log.end_hint() if isinstance(log, KafkaLog) else self.log_end()
        error: str | None = None
        try:
            materializer.check_healthy()
        except errors.Error as e:
            error = e.message
        if error is None and self.follower is not None and self.follower.error is not None:
            error = str(self.follower.error)
        return ReplicationStatus(materializer.applied_offset, end, error)

    def sync(self, timeout: float | None) -> int:
        """Wait until everything committed before this call is applied here (a strong read).

        Appends a sync marker and waits for it: the marker's offset lies after every
        commit acknowledged before, whoever made it, with no trust in broker watermarks.
        """
        record = encode_log_record({"marker_id": uuid.uuid4().hex}, "SyncMarker")
        try:
            offset = self.writer.append(record)
        except errors.CommitOutcomeUnknown as e:
            # A marker has no outcome to settle: the sync simply did not happen.
            raise errors.ConnectionFailure(f"sync could not append its marker: {e.message}") from e
        return self.wait_for(offset, timeout)

    def resolve_outcome(self, txn_id: str, timeout: float | None) -> Outcome:
        """The final outcome of ``txn_id``, appending a fence for it if it is not applied.

        Once the fence is applied, a record of ``txn_id`` that reaches the log later is
        refused by every node, so "not before the fence" means "never committed".
        """
        materializer = self.materializer
        offset = materializer.offset_of_txn(txn_id)
        if offset is None:
            fence = encode_log_record({"txn_id": txn_id}, "Fence")
            self.wait_for(self.writer.append(fence), timeout)
            offset = materializer.offset_of_txn(txn_id)
            assert offset is not None, "an applied fence settles its transaction"
        return materializer.outcome(offset)

    def digest(self) -> Digest:
        """The state digest at the newest applied offset."""
        materializer = self.materializer
        snapshot = materializer.applied_offset
        return state_digest(self.store, materializer.catalog.at(snapshot), snapshot)

    @classmethod
    def acquire(
        cls, path: str, config: Config | None = None, kafka: KafkaTarget | None = None
    ) -> Database:
        """The open database for ``path`` in this process, opening it if needed.

        With ``kafka``, ``path`` is this node's replica of that Kafka database.
        """
        key = os.path.realpath(path)
        with _registry_lock:
            database = _registry.get(key)
            if database is None:
                database = cls(key, config or Config(), kafka)
                _registry[key] = database
            elif (database.kafka and database.kafka.database) != (kafka and kafka.database):
                raise errors.InterfaceError(
                    f"{path} is already open in this process for another database"
                )
            elif config is not None and config != database.config:
                raise errors.InterfaceError(
                    f"{path} is already open in this process with other settings "
                    f"({database.config}); open it with the same settings, or none"
                )
            database._references += 1
            return database

    def retain(self) -> None:
        """Take one more reference (a subscription outliving its connection's calls)."""
        with _registry_lock:
            self._references += 1

    def log_reader(self) -> EmbeddedLog | KafkaLog:
        """A reader of the log for a follower besides the materializer (close it after).

        The embedded log's reads are independent of each other, so it is its own reader;
        on Kafka each reader needs a consumer of its own.
        """
        assert self.log is not None
        return self.log.reader() if isinstance(self.log, KafkaLog) else self.log

    def release(self) -> None:
        """Drop one reference; the last one closes the database."""
        with _registry_lock:
            self._references -= 1
            if self._references > 0:
                return
            _registry.pop(self.path, None)
        # Ingesters write through this database: they stop before anything they use closes.
        self.sources.stop()
        if self.follower is not None:
            self.follower.stop()
            self.follower = None  # it holds the materializer, and so RocksDB handles
        assert self.log is not None
        self.log.close()
        self.materializer.gc.wait_idle()
        # Drop every holder of RocksDB handles before closing, so the directory unlocks.
        del self.writer, self.materializer, self.log
        self.store.close()


def replay(source: str, target: str) -> Digest:
    """Rebuild database ``source`` into the empty directory ``target`` from its log alone.

    Copies the log, then opens ``target``, which applies every record from offset 0
    (with progress on a terminal); returns the rebuilt state's digest, to compare with
    ``source``'s. ``source`` must not be open in this or another process.
    """
    progress = TerminalProgress("copying log")
    copy_log(source, target, progress)
    progress.finish()
    # A replay applies the log it copied and nothing else: no source runs in it.
    database = Database.acquire(target, Config(run_sources=False))
    try:
        return database.digest()
    finally:
        database.release()


def digest(path: str) -> Digest:
    """The state digest of the database in directory ``path``."""
    with _registry_lock:
        open_here = os.path.realpath(path) in _registry
    # Opened only to be hashed: no source may write into it meanwhile.
    database = Database.acquire(path, None if open_here else Config(run_sources=False))
    try:
        return database.digest()
    finally:
        database.release()
