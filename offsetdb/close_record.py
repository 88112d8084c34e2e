"""The clean-close record: what a closed database's MANIFEST held, checked at open.

RocksDB reads its MANIFEST the way it must after a crash: a record cut short at the end
is taken for an interrupted write and dropped. A MANIFEST cut short *after a clean
close* therefore opens without complaint, minus its newest edits — the flushes whose
WAL is already deleted — and with them rows of some column families and not of others.
The corruption corpus (tests/test_corruption.py) found exactly that: a wrong count, no
error.

So a clean close leaves ``offsetdb.closed`` beside the lock file: the name, size and
SHA-256 of the MANIFEST that CURRENT names, the record checksummed itself. (The WAL needs
no record: closing flushes every memtable, so what it still holds is in SST files too,
and RocksDB deletes it once it is obsolete.) The next open verifies them before RocksDB reads anything, then
removes the record once RocksDB is open (RocksDB starts a new MANIFEST at every open, so
the record describes one closed state only). A MANIFEST is append-only, so only its
recorded prefix is compared: a write landing after the record (a handle that outlived
the close) never reads as damage. A record whose MANIFEST is gone and replaced (the
directory was opened without this record's knowledge, by an older offsetdb or a RocksDB
tool) no longer describes anything and is ignored.

After a crash there is no record, and a MANIFEST or WAL cut short at a record boundary
is indistinguishable from the crash itself (docs/integrity.md).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from offsetdb import integrity

RECORD_FILE = "offsetdb.closed"
_FORMAT = 1


def write(path: str, rocks_path: str) -> None:
    """Record what the cleanly closed RocksDB under ``rocks_path`` left (durably)."""
    manifest = _current_manifest(rocks_path)
    if manifest is None:
        return
    with open(os.path.join(rocks_path, manifest), "rb") as handle:
        data = handle.read()
    files = {manifest: [len(data), hashlib.sha256(data).hexdigest()]}
    body = {"format": _FORMAT, "manifest": manifest, "files": files}
    text = json.dumps({**body, "sha256": _digest(body)}, sort_keys=True)
    target = os.path.join(path, RECORD_FILE)
    temporary = target + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    _sync_directory(path)


def verify(path: str, rocks_path: str) -> None:
    """Raise StorageCorrupted if a file changed since the clean close the record describes."""
    target = os.path.join(path, RECORD_FILE)
    try:
        with open(target, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return
    try:
        record = json.loads(raw.decode("utf-8"))
        body = {k: v for k, v in record.items() if k != "sha256"}
        intact = record.get("sha256") == _digest(body) and body.get("format") == _FORMAT
    except (ValueError, AttributeError):
        intact = False
    if not intact:
        raise integrity.damaged(
            rocks_path,
            f"offsetdb's clean-close record {target} is unreadable, so the MANIFEST cannot be "
            "checked against it; if `offsetdb check` finds nothing else, delete the record",
            target,
            at_open=True,
        )
    manifest = body["manifest"]
    if not os.path.exists(os.path.join(rocks_path, manifest)) and _current_manifest(rocks_path) != manifest:
        return  # opened since without this record's knowledge: it describes nothing now
    for name, (size, sha256) in sorted(body["files"].items()):
        file = os.path.join(rocks_path, name)
        try:
            with open(file, "rb") as handle:
                data = handle.read(size)
        except FileNotFoundError:
            data = None
        if data is None or len(data) < size:
            found = "is missing" if data is None else f"holds {len(data)} bytes"
            raise integrity.damaged(
                rocks_path, f"it {found}, but held {size} when the database was closed cleanly",
                file, at_open=True,
            )
        if hashlib.sha256(data).hexdigest() != sha256:
            raise integrity.damaged(
                rocks_path, "its bytes changed since the database was closed cleanly", file, at_open=True
            )


def consume(path: str) -> None:
    """Remove the record: RocksDB is open, its files are about to change."""
    try:
        os.unlink(os.path.join(path, RECORD_FILE))
    except FileNotFoundError:
        return
    _sync_directory(path)


def _current_manifest(rocks_path: str) -> str | None:
    try:
        with open(os.path.join(rocks_path, "CURRENT"), encoding="ascii", errors="replace") as handle:
            name = handle.read().strip()
    except FileNotFoundError:
        return None
    return name if name.startswith("MANIFEST-") else None


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _sync_directory(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
