"""An open database in this process: the store, the log, the materializer and the writer.

Connections to the same directory share one :class:`Database` (RocksDB admits one
owner per directory, and sharing the materializer is what makes commits visible to
every connection at once). It is opened by the first ``connect`` and closed with the
last connection.
"""

from __future__ import annotations

import os
import threading

from offsetdb import errors
from offsetdb.config import Config
from offsetdb.embedded_log import EmbeddedLog
from offsetdb.ingest.writer import TransactionWriter
from offsetdb.materializers.applier import Materializer
from offsetdb.materializers.replay import Digest, copy_log, state_digest
from offsetdb.progress import TerminalProgress
from offsetdb.store import Store, open_store

_registry: dict[str, Database] = {}
_registry_lock = threading.Lock()


class Database:
    """One database directory, opened once per process and shared by its connections."""

    def __init__(self, path: str, config: Config) -> None:
        self.path = path
        self.config = config
        self.store: Store = open_store(path)
        try:
            self.log = EmbeddedLog(
                self.store.db, self.store.log, sync=config.synchronous == "full"
            )
            progress = TerminalProgress("applying log")
            self.materializer = Materializer(self.store, self.log, config, progress)
            # Records appended but not applied before a crash are applied now, before any
            # reader can take a snapshot.
            self.materializer.catch_up()
            progress.finish()
            self.writer = TransactionWriter(self.log, after_append=self.materializer.catch_up)
        except BaseException:
            self.store.close()
            raise
        self._references = 0

    def digest(self) -> Digest:
        """The state digest at the newest applied offset."""
        materializer = self.materializer
        snapshot = materializer.applied_offset
        return state_digest(self.store, materializer.catalog.at(snapshot), snapshot)

    @classmethod
    def acquire(cls, path: str, config: Config | None = None) -> Database:
        """The open database for ``path`` in this process, opening it if needed."""
        key = os.path.realpath(path)
        with _registry_lock:
            database = _registry.get(key)
            if database is None:
                database = cls(key, config or Config())
                _registry[key] = database
            elif config is not None and config != database.config:
                raise errors.InterfaceError(
                    f"{path} is already open in this process with other settings "
                    f"({database.config}); open it with the same settings, or none"
                )
            database._references += 1
            return database

    def release(self) -> None:
        """Drop one reference; the last one closes the database."""
        with _registry_lock:
            self._references -= 1
            if self._references > 0:
                return
            _registry.pop(self.path, None)
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
    database = Database.acquire(target)
    try:
        return database.digest()
    finally:
        database.release()


def digest(path: str) -> Digest:
    """The state digest of the database in directory ``path``."""
    database = Database.acquire(path)
    try:
        return database.digest()
    finally:
        database.release()
