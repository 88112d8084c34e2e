"""``offsetdb check DIR``: verify every file of a database, and its state against its log.

Three steps, each reported as a line (docs/integrity.md says what to do about each):

1. **open** — the directory is opened read-only (nothing is written to a database
   under examination; the WAL is replayed in memory), with RocksDB's checks at open:
   the MANIFEST's and the WAL's record checksums, every SST file's size and footer;
2. **files** — every entry of every column family is read with checksum verification,
   so every block of every live SST file and everything recovered from the WAL is
   checked; the log's records are read through their frames
   (:mod:`offsetdb.embedded_log`), and must be dense from offset 0;
3. **state** — the log is replayed into a scratch directory up to the applied offset,
   and the state digest (:func:`~offsetdb.materializers.replay.state_digest`: every
   table and every certification decision) is compared with the database's own.

A replica of a Kafka database keeps no log of its own: the state step is skipped, and
``offsetdb digest`` against another node is the comparison to make.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from offsetdb import errors, integrity
from offsetdb.config import Config
from offsetdb.embedded_log import EmbeddedLog, checksums_from, unframe
from offsetdb.keys import U64, log_key
from offsetdb.materializers.applier import Materializer
from offsetdb.materializers.replay import Digest, state_digest
from offsetdb.store import COLUMN_FAMILIES, Store, open_store, read_options

# (step, done, total, elapsed seconds) -> None; total is an estimate while scanning files.
Progress = Callable[[str, int, int, float], None]


@dataclass
class CheckReport:
    """What ``offsetdb check`` found: one line per step, and the problems."""

    path: str
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    remedies: list[str] = field(default_factory=list)  # what to do, once each

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong."""
        return not self.problems

    def passed(self, step: str, text: str) -> None:
        """Record a step that found nothing wrong."""
        self.lines.append(f"{step:<8} ok: {text}")

    def failed(self, step: str, text: str, remedy: str = "") -> None:
        """Record a problem, and what to do about it."""
        self.lines.append(f"{step:<8} DAMAGED: {text}")
        self.problems.append(text)
        if remedy and remedy not in self.remedies:
            self.remedies.append(remedy)

    def noted(self, step: str, text: str) -> None:
        """Record something worth knowing that is not a problem."""
        self.lines.append(f"{step:<8} note: {text}")


def check(
    path: str,
    scratch: str | None = None,
    replay: bool = True,
    progress: Progress | None = None,
) -> CheckReport:
    """Verify the database in ``path``; ``scratch`` is where the replay is built.

    ``path`` must not be open in another process (nor in this one).
    """
    report = CheckReport(path)
    try:
        store = open_store(path, read_only=True)
    except errors.StorageCorrupted as e:
        report.failed("open", e.finding, e.remedy)
        return report
    try:
        report.passed("open", "MANIFEST, WAL and SST metadata passed RocksDB's checks at open")
        identity = integrity.get(store.meta, b"log_identity")
        embedded = identity is None or identity == b"embedded"
        intact = _check_files(store, report, embedded, progress)
        if not embedded:
            report.noted(
                "state",
                f"a replica of {identity.decode() if identity else 'a Kafka log'}: its log is "
                "in Kafka, so compare `offsetdb digest` with another node instead of a replay",
            )
        elif not intact:
            report.noted("state", "not compared: damaged files above")
        elif replay:
            _check_state(store, report, scratch, progress)
        else:
            report.noted("state", "not compared (--no-replay)")
    finally:
        store.close()
    return report


def _check_files(store: Store, report: CheckReport, embedded: bool, progress: Progress | None) -> bool:
    """Read every entry of every column family; False if anything was damaged."""
    intact = True
    for name in COLUMN_FAMILIES:
        try:
            if name == "log":
                if embedded:
                    report.passed("log", _check_log(store, progress))
                continue
            entries = _scan(store, name, progress)
            report.passed(name, f"{entries:,} entries, every block verified")
        except errors.StorageCorrupted as e:
            report.failed(name, e.finding, e.remedy)
            intact = False
    return intact


def _scan(store: Store, name: str, progress: Progress | None) -> int:
    cf = getattr(store, name)
    options = read_options()
    estimate = cf.property_int_value("rocksdb.estimate-num-keys") or 0
    it = cf.iter(options)
    it.seek_to_first()
    entries = 0
    started = time.monotonic()
    while it.valid():
        entries += 1
        if progress is not None and entries % 10_000 == 0:
            progress(f"verifying {name}", entries, max(entries, estimate), time.monotonic() - started)
        it.next()
    integrity.check_iterator(it, store.rocks_path)
    return entries


def _check_log(store: Store, progress: Progress | None) -> str:
    """Every log record against its frame, and the offsets dense from 0."""
    framed_from = checksums_from(store.meta)
    it = store.log.iter(read_options())
    it.seek_to_first()
    offset = 0
    end = _log_end(store)
    started = time.monotonic()
    while it.valid():
        if it.key() != log_key(offset):
            found = U64.unpack(it.key())[0] if len(it.key()) == 8 else it.key().hex()
            raise integrity.damaged(
                store.rocks_path,
                f"the log has a hole: offset {offset} is missing (the next record is {found})",
                column_family="log",
            )
        if framed_from is not None and offset >= framed_from:
            unframe(offset, it.value(), store.rocks_path)
        offset += 1
        if progress is not None and offset % 10_000 == 0:
            progress("verifying log", offset, end, time.monotonic() - started)
        it.next()
    integrity.check_iterator(it, store.rocks_path)
    legacy = min(offset, framed_from if framed_from is not None else offset)
    text = f"{offset:,} records, dense from offset 0, every checksum verified"
    if legacy:
        text += (
            f" ({legacy:,} written before log records had checksums: RocksDB's block "
            "checksums cover those)"
        )
    return text


def _log_end(store: Store) -> int:
    it = store.log.iter()
    it.seek_to_last()
    return U64.unpack(it.key())[0] + 1 if it.valid() else 0


def _check_state(store: Store, report: CheckReport, scratch: str | None, progress: Progress | None) -> None:
    """Compare the state digest with that of a replay of the log up to the applied offset."""
    log = EmbeddedLog(store.db, store.log, read_only=True)
    try:
        materializer = Materializer(store, log, Config())
        applied = materializer.applied_offset
        live = state_digest(store, materializer.catalog.at(applied), applied)
        del materializer
        replayed = _replay(log, applied, scratch, progress)
    except errors.StorageCorrupted as e:
        report.failed("state", e.finding, e.remedy)
        return
    finally:
        log.close()
    behind = log.end_offset() - 1 - applied
    if replayed != live:
        report.failed(
            "state",
            f"the state differs from a replay of its own log at offset {applied}: digest "
            f"{live.sha256} ({live.rows:,} rows) here, {replayed.sha256} ({replayed.rows:,} "
            "rows) replayed",
            f"The log can rebuild the state: `offsetdb replay {store.path} NEW_DIR`, then use "
            f"NEW_DIR in place of {store.path}.",
        )
        return
    text = f"digest {live.sha256[:16]}… at offset {applied} ({live.rows:,} rows) equals a replay of the log"
    report.passed("state", text)
    if behind > 0:
        report.noted("state", f"{behind:,} records appended after the applied offset: opening applies them")


def _replay(source: EmbeddedLog, until: int, scratch: str | None, progress: Progress | None) -> Digest:
    """The digest of a fresh replay of ``source`` up to offset ``until``, built under ``scratch``."""
    directory = tempfile.mkdtemp(prefix="offsetdb-check-", dir=scratch)
    try:
        target = open_store(directory)
        try:
            log = EmbeddedLog(target.db, target.log, sync=False)
            copied, started = 0, time.monotonic()
            while copied <= until:
                entries = source.read(copied, min(10_000, until + 1 - copied), timeout=0)
                log.append([entry.value for entry in entries])
                copied += len(entries)
                if progress is not None:
                    progress("copying log", copied, until + 1, time.monotonic() - started)

            def applying(done: int, total: int, elapsed: float) -> None:
                if progress is not None:
                    progress("replaying log", done, total, elapsed)

            materializer = Materializer(target, log, Config(), applying)
            materializer.catch_up(until)
            materializer.gc.wait_idle()
            digest = state_digest(target, materializer.catalog.at(until), until)
            log.close()
            del materializer, log
            return digest
        finally:
            target.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
