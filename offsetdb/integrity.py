"""Damaged files are detected, never read as data.

RocksDB checksums every block of every file it writes (SST blocks with XXH3, WAL and
MANIFEST records with CRC32C) and verifies them when it reads them. Two things stood
between that and offsetdb's users, and this module removes both:

- an iterator that meets a damaged block does not raise: it only stops, and asking
  ``status()`` is the one way to tell "the end" from "a damaged block". A scan that did
  not ask returned a prefix of a table as if it were the whole table;
- a failed read raises a bare ``Exception("Corruption: ...")``, which no caller
  recognised as damage.

So every read path asks (:func:`check_iterator` where an iterator stops, :func:`get` for
point reads) and turns what RocksDB reports into :class:`~offsetdb.errors.StorageCorrupted`
(SQLSTATE XX001) naming the file, what it holds and the remedy. The first damage found
in a store is remembered (:func:`raise_if_damaged`): from then on the node refuses work
on that store (new transactions, appends, applying the log) until it is reopened, so no
answer and no commit is computed from a store known to be damaged.

What is verified when, and what to do, is written for users in docs/integrity.md.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from typing import Any, Protocol

from offsetdb import errors

# What each column family holds, for messages (layout: offsetdb/keys.py).
_HOLDS = {
    "log": "the embedded log itself",
    "data": "table rows, derived from the log",
    "index": "unique-index entries, derived from the log",
    "txns": "transaction outcomes, derived from the log",
    "meta": "the applied offset and settings, derived from the log",
}
_FILE_KINDS = (
    (re.compile(r"^\d+\.log$"), "RocksDB's write-ahead log"),
    (re.compile(r"^MANIFEST-\d+$"), "RocksDB's MANIFEST, the list of its files"),
    (re.compile(r"^CURRENT$"), "RocksDB's CURRENT, which names the MANIFEST"),
    (re.compile(r"^OPTIONS-\d+$"), "RocksDB's OPTIONS"),
)
_PATH = re.compile(r"(?:^|\s)(\S*?(?:\d+\.(?:sst|log|blob)|MANIFEST-\d+|CURRENT|OPTIONS-\d+))(?=[\s:.,]|$)")

FileOwner = Callable[[int], "str | None"]  # SST file number -> column family name

_lock = threading.Lock()
_owners: dict[str, FileOwner] = {}
_damage: dict[str, errors.StorageCorrupted] = {}


class _Iterator(Protocol):
    def status(self) -> Any: ...


def register(rocks_dir: str, owner: FileOwner | None) -> None:
    """A store at ``rocks_dir`` was opened: forget damage found before, name its files."""
    key = os.path.realpath(rocks_dir)
    with _lock:
        _damage.pop(key, None)
        if owner is None:
            _owners.pop(key, None)
        else:
            _owners[key] = owner


def unregister(rocks_dir: str) -> None:
    """The store at ``rocks_dir`` was closed."""
    key = os.path.realpath(rocks_dir)
    with _lock:
        _owners.pop(key, None)
        _damage.pop(key, None)


def raise_if_damaged(rocks_dir: str) -> None:
    """Refuse work on a store where damage was found: raise that damage again."""
    if _damage:
        found = _damage.get(os.path.realpath(rocks_dir))
        if found is not None:
            raise errors.StorageCorrupted(
                found.message, found.sqlstate, found.file, found.finding, found.remedy
            )


def damaged(
    rocks_dir: str,
    detail: str,
    file: str | None = None,
    column_family: str | None = None,
    *,
    io_error: bool = False,
    at_open: bool = False,
) -> errors.StorageCorrupted:
    """The error for damage found in the store at ``rocks_dir``, remembered for the store.

    ``detail`` says what failed (RocksDB's words, or the log frame's); ``file`` is the
    damaged file when known; ``column_family`` what it holds when known otherwise.
    """
    key = os.path.realpath(rocks_dir)
    directory = os.path.dirname(key)
    if file is not None:
        file = os.path.abspath(file)
        if column_family is None:
            column_family = _owner_of(key, file)
    what = _describe(file, column_family)
    where = f"{file} ({what})" if file is not None else f"a file under {key} ({what})"
    finding = f"{where} failed its check: {detail.strip().rstrip('.')}"
    remedy = _remedy(directory, column_family, at_open)
    check = "" if at_open else f" `offsetdb check {directory}` lists every damaged file."
    message = (
        f'database directory "{directory}" is damaged: {finding}. offsetdb stopped serving '
        f"this database rather than answer from damaged data. {remedy}{check}"
    )
    sqlstate = "58030" if io_error else None
    with _lock:
        # A copy that is never raised: a raised error's traceback holds the frames (and
        # RocksDB iterators) it passed through, which would keep the store open.
        _damage.setdefault(key, errors.StorageCorrupted(message, sqlstate, file, finding, remedy))
    return errors.StorageCorrupted(message, sqlstate, file, finding, remedy)


def from_rocksdb(exc: BaseException, rocks_dir: str, *, at_open: bool = False) -> errors.Error | None:
    """The offsetdb error for what RocksDB raised, or None if it is not about stored data.

    RocksDB reports damage as ``Corruption: ...`` and a file it cannot read (missing, or
    failing to read) as ``IO error: ...``; rocksdict raises both as plain ``Exception``.
    Other I/O errors (a full disk) are not damage and are left as they are.
    """
    if isinstance(exc, errors.Error):
        return exc
    text = str(exc)
    if "lock hold by current process" in text:
        return errors.ObjectInUse(
            f'database directory "{os.path.dirname(os.path.realpath(rocks_dir))}" is already '
            "open in this process; use that connection, or close it first"
        )
    corruption = text.startswith("Corruption:")
    unreadable = text.startswith("IO error:") and any(
        sign in text.lower() for sign in ("no such file", "read", "input/output error")
    )
    if not corruption and not unreadable:
        return None
    match = _PATH.search(text)
    file = match.group(1) if match else (_file_from_info_log(rocks_dir) if at_open else None)
    return damaged(rocks_dir, text, file, io_error=not corruption, at_open=at_open)


def check_iterator(it: _Iterator, source: str | Any) -> None:
    """Call where an iterator stopped: raise if it stopped on damage rather than at the end.

    ``source`` is the RocksDB directory, or the column family read (asked for its path
    only on damage, so that the check costs one status call).
    """
    try:
        it.status()
    except Exception as e:  # noqa: BLE001 - rocksdict raises Exception with RocksDB's status
        rocks_dir = source if isinstance(source, str) else source.path()
        converted = from_rocksdb(e, rocks_dir)
        raise (converted or errors.InternalError(f"reading {rocks_dir} failed: {e}")) from e


def get(cf: Any, key: bytes) -> bytes | None:
    """``cf.get(key)``, with damage reported as StorageCorrupted."""
    try:
        value: bytes | None = cf.get(key)
    except Exception as e:
        converted = from_rocksdb(e, cf.path())
        if converted is None:
            raise
        raise converted from e
    return value


def _owner_of(rocks_dir: str, file: str) -> str | None:
    match = re.fullmatch(r"(\d+)\.sst", os.path.basename(file))
    owner = _owners.get(rocks_dir)
    if match is None or owner is None:
        return None
    try:
        return owner(int(match.group(1)))
    except Exception:  # noqa: BLE001 - naming the owner is best effort, the damage is not
        return None


def _describe(file: str | None, column_family: str | None) -> str:
    if column_family is not None:
        return f'column family "{column_family}": {_HOLDS.get(column_family, "offsetdb data")}'
    name = os.path.basename(file) if file is not None else ""
    for pattern, kind in _FILE_KINDS:
        if pattern.match(name):
            return kind
    return "RocksDB data" if file is None or name.endswith(".sst") else "a RocksDB file"


def _remedy(directory: str, column_family: str | None, at_open: bool) -> str:
    rebuild = (
        f"`offsetdb replay {directory} NEW_DIR` rebuilds the state from the log into NEW_DIR, "
        f"to use in place of {directory} (a Kafka node: empty {directory} and restart it, "
        "it rebuilds from the Kafka log)"
    )
    if at_open:
        return (
            f"To recover: a Kafka node: empty {directory} and restart it, it rebuilds from "
            f"the Kafka log; an embedded database: restore {directory} from a backup."
        )
    if column_family == "log":
        return (
            "The log itself is damaged, so the state cannot be rebuilt from it: restore "
            f"{directory} from a backup."
        )
    if column_family is not None:
        return f"The log can rebuild this: {rebuild}."
    return f"If the log is intact, {rebuild}; if not, restore {directory} from a backup."


def _file_from_info_log(rocks_dir: str) -> str | None:
    """The file RocksDB's info LOG blames for a failed open (the WAL names only itself there)."""
    try:
        with open(os.path.join(rocks_dir, "LOG"), "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 65536))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        if "Corruption" in line or "dropping" in line:
            match = _PATH.search(line)
            if match:
                return match.group(1)
    return None
