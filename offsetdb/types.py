"""SQL column types: their Python values, coercion, and the primitive form kept on disk.

A value has three forms:

- *logical*, what users and the SQL engine see: ``int``, ``float``, ``Decimal``,
  ``str``, ``bool``, ``datetime.date``, ``datetime.datetime`` (naive, UTC), ``bytes``;
- *primitive*, what RocksDB state holds (through ``marshal``): the same, except DATE as
  days since 1970-01-01, TIMESTAMP as microseconds since the epoch and NUMERIC as its
  canonical decimal string, so that every stored value is an int, float, str, bytes,
  bool or None and encodes deterministically;
- *Avro*, in log records: see :mod:`offsetdb.schemas.codec`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from offsetdb import errors, numeric, textinput

EPOCH_DATE = dt.date(1970, 1, 1)
EPOCH = dt.datetime(1970, 1, 1)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class Kind(enum.Enum):
    """The type families offsetdb stores."""

    INTEGER = "INTEGER"
    BIGINT = "BIGINT"
    DOUBLE = "DOUBLE PRECISION"
    REAL = "REAL"
    NUMERIC = "NUMERIC"
    TEXT = "TEXT"
    VARCHAR = "VARCHAR"
    BOOLEAN = "BOOLEAN"
    DATE = "DATE"
    TIMESTAMP = "TIMESTAMP"
    BYTEA = "BYTEA"


@dataclass(frozen=True)
class SqlType:
    """A column type: its kind and optional modifiers (VARCHAR(n), NUMERIC(p, s))."""

    kind: Kind
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    def __str__(self) -> str:
        if self.kind is Kind.VARCHAR and self.length is not None:
            return f"VARCHAR({self.length})"
        if self.kind is Kind.NUMERIC and self.precision is not None:
            return f"NUMERIC({self.precision},{self.scale or 0})"
        return self.kind.value

    @property
    def python_type(self) -> type:
        """The Python class of this type's logical values."""
        return _PYTHON_TYPES[self.kind]


_PYTHON_TYPES: dict[Kind, type] = {
    Kind.INTEGER: int,
    Kind.BIGINT: int,
    Kind.DOUBLE: float,
    Kind.REAL: float,
    Kind.NUMERIC: decimal.Decimal,
    Kind.TEXT: str,
    Kind.VARCHAR: str,
    Kind.BOOLEAN: bool,
    Kind.DATE: dt.date,
    Kind.TIMESTAMP: dt.datetime,
    Kind.BYTEA: bytes,
}

# Names accepted in CREATE TABLE (lower case), as sqlglot's DataType.Type names or SQL.
_TYPE_NAMES: dict[str, Kind] = {
    "int": Kind.INTEGER,
    "integer": Kind.INTEGER,
    "int4": Kind.INTEGER,
    "smallint": Kind.INTEGER,
    "int2": Kind.INTEGER,
    "tinyint": Kind.INTEGER,
    "bigint": Kind.BIGINT,
    "int8": Kind.BIGINT,
    "double": Kind.DOUBLE,
    "double precision": Kind.DOUBLE,
    "float": Kind.DOUBLE,
    "float8": Kind.DOUBLE,
    "real": Kind.REAL,
    "float4": Kind.REAL,
    "numeric": Kind.NUMERIC,
    "decimal": Kind.NUMERIC,
    "text": Kind.TEXT,
    "string": Kind.TEXT,
    "varchar": Kind.VARCHAR,
    "char": Kind.VARCHAR,
    "nvarchar": Kind.VARCHAR,
    "nchar": Kind.VARCHAR,
    "character varying": Kind.VARCHAR,
    "boolean": Kind.BOOLEAN,
    "bool": Kind.BOOLEAN,
    "date": Kind.DATE,
    "timestamp": Kind.TIMESTAMP,
    "datetime": Kind.TIMESTAMP,
    "bytea": Kind.BYTEA,
    "blob": Kind.BYTEA,
    "varbinary": Kind.BYTEA,
    "binary": Kind.BYTEA,
}


def type_from_name(
    name: str, length: int | None = None, precision: int | None = None, scale: int | None = None
) -> SqlType:
    """The SqlType for a type name as written in SQL, or 0A000 naming it."""
    kind = _TYPE_NAMES.get(name.strip().lower())
    if kind is None:
        raise errors.not_supported(f"type {name.upper()}")
    if kind is Kind.VARCHAR:
        return SqlType(kind, length=length)
    if kind is Kind.NUMERIC:
        return SqlType(kind, precision=precision, scale=scale if precision is not None else None)
    return SqlType(kind)


# --- coercion: any Python value to a column's logical value ---------------------------


def coerce(value: Any, sql_type: SqlType, column: str = "?") -> Any:
    """Convert ``value`` to ``sql_type``'s logical form, or raise a DataError naming it.

    ``None`` passes through (NOT NULL is checked by the caller). Strings are parsed
    (``'42'`` into INTEGER, ``'2024-01-31'`` into DATE), as PostgreSQL does for literals.
    """
    if value is None:
        return None
    try:
        return _COERCE[sql_type.kind](value, sql_type)
    except errors.Error:
        raise
    except (ValueError, TypeError, ArithmeticError, OverflowError) as e:
        shown = value if not isinstance(value, bytes) else value[:20]
        raise errors.InvalidTextRepresentation(
            f"invalid input for column {column} of type {sql_type}: {shown!r}"
        ) from e


def _int_type_name(t: SqlType) -> str:
    return "integer" if t.kind is Kind.INTEGER else "bigint"


def _to_int(value: Any, t: SqlType) -> int:
    if isinstance(value, int):  # bool included
        result = int(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise errors.NumericValueOutOfRange(f"{_int_type_name(t)} out of range")
        result = int(round(value))  # PostgreSQL's float-to-int cast is rint: halves to even
    elif isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise errors.NumericValueOutOfRange(f"{_int_type_name(t)} out of range")
        if value.adjusted() > 40:
            raise errors.NumericValueOutOfRange(f"{_int_type_name(t)} out of range")
        result = int(numeric.round_to(value, 0))  # numeric-to-int: halves away from zero
    elif isinstance(value, str):
        result = textinput.parse_int(value, _int_type_name(t))
        lo, hi = (INT32_MIN, INT32_MAX) if t.kind is Kind.INTEGER else (INT64_MIN, INT64_MAX)
        if not lo <= result <= hi:
            raise errors.NumericValueOutOfRange(
                f'value "{value}" is out of range for type {_int_type_name(t)}'
            )
        return result
    else:
        raise TypeError(type(value))
    lo, hi = (INT32_MIN, INT32_MAX) if t.kind is Kind.INTEGER else (INT64_MIN, INT64_MAX)
    if not lo <= result <= hi:
        raise errors.NumericValueOutOfRange(f"{_int_type_name(t)} out of range")
    return result


def _to_float(value: Any, t: SqlType) -> float:
    name = "real" if t.kind is Kind.REAL else "double precision"
    if isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
        if isinstance(value, decimal.Decimal) and not value.is_finite():
            raise errors.not_supported(f"the numeric value {value}")
        result = float(value)
        if math.isinf(result) and not (isinstance(value, float)):
            raise errors.NumericValueOutOfRange(f"value out of range for type {name}")
    elif isinstance(value, str):
        result = textinput.parse_float(value, name)
    else:
        raise TypeError(type(value))
    if math.isnan(result):
        # PostgreSQL orders NaN above every number and makes it equal to itself; Python's
        # comparisons say neither, so a stored NaN could give wrong answers. Refused.
        raise errors.not_supported(f"NaN in a {t} value")
    if t.kind is Kind.REAL:
        result = to_float4(result)
    return result


_FLOAT4 = struct.Struct("<f")


def to_float4(value: float) -> float:
    """``value`` rounded to single precision (22003 past its range), as REAL holds it."""
    if not math.isfinite(value):
        return value
    try:
        return float(_FLOAT4.unpack(_FLOAT4.pack(value))[0])
    except OverflowError:
        raise errors.NumericValueOutOfRange("value out of range: overflow") from None


def float4_display(value: float) -> float:
    """A REAL value as PostgreSQL shows it: the shortest decimal that reads back to it.

    A REAL holding 0.1 is the double 0.10000000149011612; PostgreSQL prints it as 0.1,
    and drivers read 0.1. Comparisons use the stored value; only output goes through here.
    """
    if not math.isfinite(value) or value == 0:
        return value
    for digits in range(1, 10):
        shorter = float(f"{value:.{digits}g}")
        if to_float4(shorter) == value:
            return shorter
    return value


def _to_decimal(value: Any, t: SqlType) -> decimal.Decimal:
    if isinstance(value, bool):
        raise TypeError(bool)
    if isinstance(value, float):
        result = numeric.from_float(value)
    elif isinstance(value, int):
        result = numeric.from_int(value)
    elif isinstance(value, decimal.Decimal):
        result = numeric.normalize(decimal.Decimal(value))
    elif isinstance(value, str):
        result = numeric.parse(value)
    else:
        raise TypeError(type(value))
    if t.scale is not None:
        result = numeric.round_to(result, t.scale)
    if t.precision is not None and not result.is_zero():
        integer_digits = result.adjusted() + 1
        if integer_digits > t.precision - (t.scale or 0):
            raise errors.NumericValueOutOfRange(
                f"numeric field overflow: a field with precision {t.precision}, scale "
                f"{t.scale or 0} must round to an absolute value less than "
                f"10^{t.precision - (t.scale or 0)}"
            )
    return result


def _to_text(value: Any, t: SqlType) -> str:
    if isinstance(value, str):
        result = value if type(value) is str else value[:]  # a subclass's slice is a str
    else:
        result = to_text(value)
    if t.length is not None and len(result) > t.length:
        raise errors.StringDataRightTruncation(
            f"value too long for type character varying({t.length})"
        )
    return result


def to_text(value: Any) -> str:
    """PostgreSQL's text output of a non-NULL logical value (what ``::text`` gives)."""
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value)
    if t is float:
        return float_text(value)
    if t is decimal.Decimal:
        return numeric.to_text(value)
    if t is dt.datetime:
        return timestamp_text(value)
    if t is dt.date:
        return value.isoformat()
    if t is bytes:
        return "\\x" + value.hex()
    raise TypeError(t)


def float_text(value: float) -> str:
    """float8 output: the shortest round-trip digits, exponent form below 1e-4 or from 1e15."""
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    text = repr(value)
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    digits = mantissa.lstrip("-").replace(".", "")
    # position of the decimal point relative to the digit string
    point = (mantissa.lstrip("-").index(".") if "." in mantissa else len(mantissa.lstrip("-")))
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    decimal_exponent = point + exponent - 1
    sign = "-" if value < 0 else ""
    if decimal_exponent < -4 or decimal_exponent >= 15:
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if decimal_exponent < 0 else '+'}{abs(decimal_exponent):02d}"
    if decimal_exponent < 0:
        return f"{sign}0.{'0' * (-decimal_exponent - 1)}{digits}"
    whole = digits[: decimal_exponent + 1].ljust(decimal_exponent + 1, "0")
    fraction = digits[decimal_exponent + 1 :]
    return f"{sign}{whole}{'.' + fraction if fraction else ''}"


def timestamp_text(value: dt.datetime) -> str:
    """Timestamp output: ISO with a blank, fractional seconds without trailing zeros."""
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d} "
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text


def _to_bool(value: Any, t: SqlType) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return textinput.parse_bool(value)
    raise ValueError(value)


def _to_date(value: Any, t: SqlType) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return dt.date(value.year, value.month, value.day)
    if isinstance(value, str):
        return textinput.parse_date(value)
    raise TypeError(type(value))


def _to_timestamp(value: Any, t: SqlType) -> dt.datetime:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return dt.datetime(
            value.year, value.month, value.day, value.hour, value.minute, value.second,
            value.microsecond,
        )
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        return textinput.parse_timestamp(value)
    raise TypeError(type(value))


def _to_bytes(value: Any, t: SqlType) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return value if type(value) is bytes else bytes(value)
    if isinstance(value, str):
        if value.startswith("\\x"):
            try:
                return bytes.fromhex(value[2:])
            except ValueError:
                raise errors.InvalidTextRepresentation(
                    f'invalid hexadecimal data in bytea input: "{value[:40]}"'
                ) from None
        return value.encode()
    raise TypeError(type(value))


_COERCE: dict[Kind, Callable[[Any, SqlType], Any]] = {
    Kind.INTEGER: _to_int,
    Kind.BIGINT: _to_int,
    Kind.DOUBLE: _to_float,
    Kind.REAL: _to_float,
    Kind.NUMERIC: _to_decimal,
    Kind.TEXT: _to_text,
    Kind.VARCHAR: _to_text,
    Kind.BOOLEAN: _to_bool,
    Kind.DATE: _to_date,
    Kind.TIMESTAMP: _to_timestamp,
    Kind.BYTEA: _to_bytes,
}


# --- primitive form (RocksDB state) ---------------------------------------------------


def _date_to_days(value: dt.date) -> int:
    return (value - EPOCH_DATE).days


def _days_to_date(days: int) -> dt.date:
    return EPOCH_DATE + dt.timedelta(days=days)


def _timestamp_to_micros(value: dt.datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _micros_to_timestamp(micros: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=micros)


def _decimal_to_str(value: decimal.Decimal) -> str:
    return str(value)


_TO_PRIMITIVE: dict[Kind, Callable[[Any], Any]] = {
    Kind.DATE: _date_to_days,
    Kind.TIMESTAMP: _timestamp_to_micros,
    Kind.NUMERIC: _decimal_to_str,
}
_FROM_PRIMITIVE: dict[Kind, Callable[[Any], Any]] = {
    Kind.DATE: _days_to_date,
    Kind.TIMESTAMP: _micros_to_timestamp,
    Kind.NUMERIC: decimal.Decimal,
}


def row_converters(
    types: tuple[SqlType, ...],
) -> tuple[Callable[[tuple[Any, ...]], tuple[Any, ...]], Callable[[tuple[Any, ...]], tuple[Any, ...]]]:
    """Functions turning a logical row into its primitive form and back, for these types.

    Built once per table version; when no column needs conversion both are the same
    identity function (callers test ``to is from`` to skip the call altogether).
    """
    to_fns = [(_TO_PRIMITIVE.get(t.kind), i) for i, t in enumerate(types)]
    from_fns = [(_FROM_PRIMITIVE.get(t.kind), i) for i, t in enumerate(types)]
    to_active = [(f, i) for f, i in to_fns if f is not None]
    from_active = [(f, i) for f, i in from_fns if f is not None]
    if not to_active:

        def identity(row: tuple[Any, ...]) -> tuple[Any, ...]:
            return row

        return identity, identity

    def to_primitive(row: tuple[Any, ...]) -> tuple[Any, ...]:
        out = list(row)
        for fn, i in to_active:
            if out[i] is not None:
                out[i] = fn(out[i])
        return tuple(out)

    def from_primitive(row: tuple[Any, ...]) -> tuple[Any, ...]:
        out = list(row)
        for fn, i in from_active:
            if out[i] is not None:
                out[i] = fn(out[i])
        return tuple(out)

    return to_primitive, from_primitive


def row_coercer(
    types: tuple[SqlType, ...], names: tuple[str, ...], not_null: tuple[bool, ...], table: str
) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A function that coerces a whole row to these column types and checks NOT NULL.

    Built once per table version. Values already of the column's Python type (the
    common case for parameters) pass with one type check, without a call to
    :func:`coerce`; integers get their range check inline.
    """
    # ``fast`` is Any, not ``type | None``: compared with ``type(value)`` it must not narrow
    # ``value`` for the bounds check that follows.
    specs: list[tuple[SqlType, str, bool, Any, tuple[int, int] | None]] = []
    for sql_type, name, required in zip(types, names, not_null, strict=True):
        plain = sql_type.length is None and sql_type.scale is None and sql_type.precision is None
        fast: Any = sql_type.python_type if plain else None
        if sql_type.kind in (Kind.DATE, Kind.TIMESTAMP):
            fast = None  # datetime is a subclass of date: always go through coerce
        bounds: tuple[int, int] | None = None
        if sql_type.kind is Kind.INTEGER:
            bounds = (INT32_MIN, INT32_MAX)
        elif sql_type.kind is Kind.BIGINT:
            bounds = (INT64_MIN, INT64_MAX)
        specs.append((sql_type, name, required, fast, bounds))

    def coerce_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
        out: list[Any] = []
        value: Any
        for value, (sql_type, name, required, fast, bounds) in zip(row, specs, strict=True):
            if value is None:
                if required:
                    raise errors.NotNullViolation(
                        f'null value in column "{name}" of relation "{table}" violates '
                        "not-null constraint"
                    )
            elif (
                type(value) is not fast
                or (bounds is not None and not bounds[0] <= value <= bounds[1])
                or value != value  # NaN: coerce refuses it
            ):
                value = coerce(value, sql_type, name)
            out.append(value)
        return tuple(out)

    return coerce_row
