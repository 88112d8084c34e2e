r"""The RocksDB key space, in one place, with an order-preserving encoding.

Column families and their keys (``u64`` is 8 bytes big-endian; ``~off`` is
``2**64 - 1 - off``, so newer versions sort first)::

    log      u64 offset                                   -> u32 CRC-32(offset, record) + log record
                                                             (embedded backend; offsetdb/embedded_log.py)
    data     u64 table_id | key(pk values) | ~off          -> b"\x01" + marshal(row) | b"\x00"
    index    u64 table_id | u32 constraint | key(values) | ~off  -> pk key bytes | b""
    txns     b"o" u64 offset                               -> outcome record (marshal)
             b"t" txn id (utf-8)                           -> u64 offset
    meta     b"next_offset"                                -> u64, the next log offset to apply
                                                             (last applied + 1)
             b"format"                                     -> u32 on-disk format version
             b"log_checksums_from"                         -> u64, the first log offset stored
                                                             with its CRC (0 unless the log predates them)

``key(values)`` is :func:`encode_key`: each value a type tag then a memcomparable body, so
that byte order equals SQL order and the encoding of a tuple is never a prefix of
another's. A scan of one table is then a RocksDB range scan; a version lookup at snapshot
``S`` is one seek to ``table | key | ~S`` (the first entry at or after it, if it still has
the ``table | key`` prefix, is the newest version at or below ``S``).

The catalog lives in ``data`` under table id 0, keyed by table name, like any table.
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
from collections.abc import Sequence
from typing import Any

from offsetdb import errors

U64 = struct.Struct(">Q")
U32 = struct.Struct(">I")
MAX_U64 = 2**64 - 1

CATALOG_TABLE_ID = 0

# Type tags. NULL sorts first, as PostgreSQL's NULLS FIRST would for an index.
_NULL = 0x00
_FALSE = 0x01
_TRUE = 0x02
_INT = 0x03
_FLOAT = 0x04
_DEC_NEG = 0x05
_DEC_ZERO = 0x06
_DEC_POS = 0x07
_TEXT = 0x08
_BYTES = 0x09
_DATE = 0x0A
_TIMESTAMP = 0x0B

_EPOCH_DATE = dt.date(1970, 1, 1)
_EPOCH = dt.datetime(1970, 1, 1)


def u64(value: int) -> bytes:
    """Big-endian 8 bytes."""
    return U64.pack(value)


def inverted(offset: int) -> bytes:
    """``~offset`` as 8 bytes: larger offsets sort first."""
    return U64.pack(MAX_U64 - offset)


def _escaped(raw: bytes) -> bytes:
    # 0x00 inside the value becomes 0x00 0xFF; the terminator 0x00 0x01 sorts below it,
    # so a string sorts before any longer string it prefixes.
    return raw.replace(b"\x00", b"\x00\xff") + b"\x00\x01"


def _encode_int(value: int) -> bytes:
    return U64.pack(value + 2**63)


def _encode_float(value: float) -> bytes:
    if value == 0.0:
        value = 0.0  # -0.0 and 0.0 are equal in SQL, so they must encode the same
    bits = struct.unpack(">Q", struct.pack(">d", value))[0]
    bits = bits ^ MAX_U64 if bits & (1 << 63) else bits | (1 << 63)
    return U64.pack(bits)


def _encode_decimal(value: decimal.Decimal) -> bytes:
    if value.is_zero():
        return bytes([_DEC_ZERO])
    sign, digits, _ = value.normalize().as_tuple()
    exponent = value.normalize().adjusted() + 2**31  # biased, so it packs unsigned
    digit_bytes = bytes(48 + d for d in digits)
    if not sign:
        return bytes([_DEC_POS]) + U32.pack(exponent) + digit_bytes + b"\x00"
    # Negative: larger magnitude sorts first, so invert exponent and digits, and end
    # with 0xFF so that a shorter magnitude (closer to zero) sorts after a longer one.
    inverted_digits = bytes(255 - b for b in digit_bytes)
    return bytes([_DEC_NEG]) + U32.pack(2**32 - 1 - exponent) + inverted_digits + b"\xff"


def encode_value(value: Any) -> bytes:
    """One logical value, tagged and memcomparable."""
    if value is None:
        return bytes([_NULL])
    if value is True:
        return bytes([_TRUE])
    if value is False:
        return bytes([_FALSE])
    if isinstance(value, int):
        return bytes([_INT]) + _encode_int(value)
    if isinstance(value, float):
        return bytes([_FLOAT]) + _encode_float(value)
    if isinstance(value, str):
        return bytes([_TEXT]) + _escaped(value.encode())
    if isinstance(value, decimal.Decimal):
        return _encode_decimal(value)
    if isinstance(value, bytes):
        return bytes([_BYTES]) + _escaped(value)
    if isinstance(value, dt.datetime):
        delta = value - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return bytes([_TIMESTAMP]) + _encode_int(micros)
    if isinstance(value, dt.date):
        return bytes([_DATE]) + _encode_int((value - _EPOCH_DATE).days)
    raise errors.InternalError(f"cannot encode key value of type {type(value).__name__}")


def encode_key(values: Sequence[Any]) -> bytes:
    """A tuple of logical values as one memcomparable, prefix-free key."""
    if len(values) == 1:
        return encode_value(values[0])
    return b"".join(encode_value(v) for v in values)


def hidden_row_key(commit_offset: int, position: int) -> bytes:
    """The key of a row in a table without a primary key: where its INSERT committed.

    Assigned at apply time from the commit offset and the row's place among its
    transaction's writes, so every node derives the same key with no shared counter.
    """
    return bytes([_INT]) + _encode_int(commit_offset) + bytes([_INT]) + _encode_int(position)


# --- column family keys ---------------------------------------------------------------


def table_prefix(table_id: int) -> bytes:
    """Prefix of every version of every row of a table in ``data``."""
    return U64.pack(table_id)


def version_key(table_id: int, key: bytes, offset: int) -> bytes:
    """``data`` key of the version of row ``key`` written at ``offset``."""
    return U64.pack(table_id) + key + inverted(offset)


def index_prefix(table_id: int, constraint: int) -> bytes:
    """Prefix of one UNIQUE constraint's entries in ``index``."""
    return U64.pack(table_id) + U32.pack(constraint)


def log_key(offset: int) -> bytes:
    """``log`` key of a record."""
    return U64.pack(offset)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def _unescape(data: bytes, start: int) -> tuple[bytes, int]:
    out = bytearray()
    i = start
    while True:
        byte = data[i]
        if byte == 0:
            if data[i + 1] == 0x01:
                return bytes(out), i + 2
            out.append(0)
            i += 2
        else:
            out.append(byte)
            i += 1


def decode_key(data: bytes) -> tuple[Any, ...]:
    """The logical values of a key made by :func:`encode_key` (for messages and tools)."""
    values: list[Any] = []
    i = 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag == _NULL:
            values.append(None)
        elif tag in (_TRUE, _FALSE):
            values.append(tag == _TRUE)
        elif tag in (_INT, _DATE, _TIMESTAMP):
            number = U64.unpack(data[i : i + 8])[0] - 2**63
            i += 8
            if tag == _INT:
                values.append(number)
            elif tag == _DATE:
                values.append(_EPOCH_DATE + dt.timedelta(days=number))
            else:
                values.append(_EPOCH + dt.timedelta(microseconds=number))
        elif tag == _FLOAT:
            bits = U64.unpack(data[i : i + 8])[0]
            i += 8
            bits = bits & ~(1 << 63) if bits & (1 << 63) else bits ^ MAX_U64
            values.append(struct.unpack(">d", U64.pack(bits))[0])
        elif tag == _DEC_ZERO:
            values.append(decimal.Decimal(0))
        elif tag in (_DEC_POS, _DEC_NEG):
            raw_exponent = U32.unpack(data[i : i + 4])[0]
            i += 4
            end = data.index(b"\x00" if tag == _DEC_POS else b"\xff", i)
            digits = data[i:end]
            i = end + 1
            if tag == _DEC_NEG:
                digits = bytes(255 - b for b in digits)
                raw_exponent = 2**32 - 1 - raw_exponent
            exponent = raw_exponent - 2**31
            text = digits.decode()
            number_text = f"{'-' if tag == _DEC_NEG else ''}0.{text}E{exponent + 1}"
            values.append(decimal.Decimal(number_text).normalize())
        elif tag in (_TEXT, _BYTES):
            raw, i = _unescape(data, i)
            values.append(raw.decode() if tag == _TEXT else raw)
        else:
            raise errors.InternalError(f"corrupt key: unknown tag {tag:#x} at byte {i - 1}")
    return tuple(values)


def describe_key(columns: Sequence[str], key: bytes) -> str:
    """``(a, b)=(1, 'x')``, PostgreSQL's way of naming a key in messages."""
    try:
        values = decode_key(key)
    except (errors.Error, IndexError, ValueError, struct.error):
        return f"(key)=({key.hex()})"
    shown = ", ".join(str(v) for v in values)
    return f"({', '.join(columns)})=({shown})"
