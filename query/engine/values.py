"""Runtime semantics of SQL values: comparison, arithmetic, casts and text forms.

Values are the logical Python values of :mod:`offsetdb.types` (plus intervals, see
:mod:`.datetimes`); NULL is ``None``. Every function here takes non-NULL operands: NULL
propagation is done once by the compiled closures that call them, which keeps these
functions small and the NULL rules in one place (:mod:`.expressions`).

Values of different Python types meet when a parameter's type is only known at run time
(PostgreSQL would have inferred it from context). The rules follow PostgreSQL's implicit
casts: int, float and Decimal compare and combine numerically (float wins, then Decimal);
a string meeting a typed value is parsed as that type (an "unknown"-typed literal); DATE
meets TIMESTAMP as midnight. Anything else is 42883 "operator does not exist", never a
silent False.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

from offsetdb import errors
from offsetdb.types import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, Kind, SqlType, coerce

from .datetimes import Interval, add_interval, interval_type_name, negate_interval

Decimal = decimal.Decimal
_NUM_SET = frozenset((int, float, Decimal))

INTEGER = SqlType(Kind.INTEGER)
BIGINT = SqlType(Kind.BIGINT)
DOUBLE = SqlType(Kind.DOUBLE)
NUMERIC = SqlType(Kind.NUMERIC)
TEXT = SqlType(Kind.TEXT)
BOOLEAN = SqlType(Kind.BOOLEAN)
DATE = SqlType(Kind.DATE)
TIMESTAMP = SqlType(Kind.TIMESTAMP)
BYTEA = SqlType(Kind.BYTEA)

INT_KINDS = frozenset((Kind.INTEGER, Kind.BIGINT))
FLOAT_KINDS = frozenset((Kind.DOUBLE, Kind.REAL))
NUMBER_KINDS = frozenset((Kind.INTEGER, Kind.BIGINT, Kind.DOUBLE, Kind.REAL, Kind.NUMERIC))
TEXT_KINDS = frozenset((Kind.TEXT, Kind.VARCHAR))
TIME_KINDS = frozenset((Kind.DATE, Kind.TIMESTAMP))


def category(t: SqlType | None) -> str | None:
    """The comparison family of a static type: num, text, bool, time, bytes (None: unknown)."""
    if t is None:
        return None
    k = t.kind
    if k in NUMBER_KINDS:
        return "num"
    if k in TEXT_KINDS:
        return "text"
    if k is Kind.BOOLEAN:
        return "bool"
    if k in TIME_KINDS:
        return "time"
    return "bytes"


def type_name(value: Any) -> str:
    """PostgreSQL's name for the type of a runtime value (for error messages)."""
    t = type(value)
    if t is bool:
        return "boolean"
    if t is int:
        return "bigint"
    if t is float:
        return "double precision"
    if t is Decimal:
        return "numeric"
    if t is str:
        return "text"
    if t is dt.datetime:
        return "timestamp without time zone"
    if t is dt.date:
        return "date"
    if t is bytes:
        return "bytea"
    if t is dt.timedelta or t is Interval:
        return interval_type_name()
    return t.__name__


def static_type_name(t: SqlType | None) -> str:
    """PostgreSQL's name for a static type (for error messages)."""
    if t is None:
        return "unknown"
    return {
        Kind.INTEGER: "integer",
        Kind.BIGINT: "bigint",
        Kind.DOUBLE: "double precision",
        Kind.REAL: "real",
        Kind.NUMERIC: "numeric",
        Kind.TEXT: "text",
        Kind.VARCHAR: "character varying",
        Kind.BOOLEAN: "boolean",
        Kind.DATE: "date",
        Kind.TIMESTAMP: "timestamp without time zone",
        Kind.BYTEA: "bytea",
    }[t.kind]


def type_of_value(value: Any) -> SqlType | None:
    """The SqlType a runtime value would have as a typed constant."""
    t = type(value)
    if t is int:
        return BIGINT
    if t is float:
        return DOUBLE
    if t is Decimal:
        return NUMERIC
    if t is str:
        return TEXT
    if t is bool:
        return BOOLEAN
    if t is dt.datetime:
        return TIMESTAMP
    if t is dt.date:
        return DATE
    if t is bytes:
        return BYTEA
    return None


def operator_error(a: Any, op: str, b: Any) -> errors.UndefinedFunction:
    """42883 for an operator applied to operands of types it does not accept."""
    return errors.UndefinedFunction(
        f"operator does not exist: {type_name(a)} {op} {type_name(b)}"
    )


def _parse_as(text: str, other: Any) -> Any:
    """A string meeting a typed value: parse it as that value's type (22P02 if it can't)."""
    t = type(other)
    if t is int:
        try:
            return int(text.strip())
        except ValueError:
            # '1.5' against an integer: PostgreSQL resolves the literal as numeric.
            return coerce(text, NUMERIC)
    if t is dt.timedelta or t is Interval:
        from .datetimes import parse_interval

        return parse_interval(text)
    target = type_of_value(other)
    if target is None:
        raise operator_error(text, "=", other)
    return coerce(text, target)


def unify(a: Any, b: Any, op: str) -> tuple[Any, Any]:
    """Two non-NULL operands made comparable, or 42883 when no implicit cast joins them."""
    ta = type(a)
    tb = type(b)
    if ta is tb:
        return a, b
    if ta in _NUM_SET and tb in _NUM_SET:
        return a, b
    if ta is str:
        return _parse_as(a, b), b
    if tb is str:
        return a, _parse_as(b, a)
    if ta is dt.datetime and tb is dt.date:
        return a, dt.datetime(b.year, b.month, b.day)
    if ta is dt.date and tb is dt.datetime:
        return dt.datetime(a.year, a.month, a.day), b
    if ta in (dt.timedelta, Interval) and tb in (dt.timedelta, Interval):
        return _interval_key(a), _interval_key(b)
    raise operator_error(a, op, b)


def _interval_key(v: Any) -> Any:
    # PostgreSQL compares intervals as if a month were 30 days.
    if type(v) is Interval:
        return dt.timedelta(days=v.months * 30 + v.days, microseconds=v.micros)
    return v


def sql_eq(a: Any, b: Any) -> bool:
    """``a = b`` for non-NULL operands."""
    if type(a) is type(b):
        return bool(a == b)
    a, b = unify(a, b, "=")
    return bool(a == b)


def sql_lt(a: Any, b: Any) -> bool:
    """``a < b`` for non-NULL operands."""
    if type(a) is not type(b):
        a, b = unify(a, b, "<")
    return bool(a < b)


def sql_le(a: Any, b: Any) -> bool:
    """``a <= b`` for non-NULL operands."""
    if type(a) is not type(b):
        a, b = unify(a, b, "<=")
    return bool(a <= b)


def sql_gt(a: Any, b: Any) -> bool:
    """``a > b`` for non-NULL operands."""
    if type(a) is not type(b):
        a, b = unify(a, b, ">")
    return bool(a > b)


def sql_ge(a: Any, b: Any) -> bool:
    """``a >= b`` for non-NULL operands."""
    if type(a) is not type(b):
        a, b = unify(a, b, ">=")
    return bool(a >= b)


def sql_ne(a: Any, b: Any) -> bool:
    """``a <> b`` for non-NULL operands."""
    return not sql_eq(a, b)


# --- arithmetic -----------------------------------------------------------------------


def check_int(value: int, t: SqlType | None) -> int:
    """``value`` if it fits the integer type ``t`` (BIGINT when unknown), else 22003."""
    if t is not None and t.kind is Kind.INTEGER:
        if INT32_MIN <= value <= INT32_MAX:
            return value
        raise errors.NumericValueOutOfRange("integer out of range")
    if INT64_MIN <= value <= INT64_MAX:
        return value
    raise errors.NumericValueOutOfRange("bigint out of range")


def _numeric_pair(a: Any, b: Any, op: str) -> tuple[Any, Any]:
    """Operands of a mixed-type numeric operation converted to one Python type."""
    ta = type(a)
    tb = type(b)
    if ta is str:
        a = _parse_as(a, b)
        ta = type(a)
    elif tb is str:
        b = _parse_as(b, a)
        tb = type(b)
    if ta not in _NUM_SET or tb not in _NUM_SET:
        raise operator_error(a, op, b)
    if ta is float or tb is float:
        return float(a), float(b)
    if ta is Decimal or tb is Decimal:
        return Decimal(a), Decimal(b)
    return a, b


def add(a: Any, b: Any) -> Any:
    """``a + b`` for non-NULL operands (numbers, date + integer, time + interval)."""
    ta = type(a)
    tb = type(b)
    if ta is tb and ta in _NUM_SET:
        return a + b
    if ta is dt.date and tb is int:
        return _date_shift(a, b)
    if ta is int and tb is dt.date:
        return _date_shift(b, a)
    if tb in (dt.timedelta, Interval) and ta in (dt.date, dt.datetime):
        return add_interval(a, b)
    if ta in (dt.timedelta, Interval) and tb in (dt.date, dt.datetime):
        return add_interval(b, a)
    if ta in (dt.timedelta, Interval) and tb in (dt.timedelta, Interval):
        return Interval.of(a) + Interval.of(b)
    x, y = _numeric_pair(a, b, "+")
    return x + y


def sub(a: Any, b: Any) -> Any:
    """``a - b`` for non-NULL operands (numbers, dates, timestamps, intervals)."""
    ta = type(a)
    tb = type(b)
    if ta is tb and ta in _NUM_SET:
        return a - b
    if ta is dt.date and tb is int:
        return _date_shift(a, -b)
    if ta is dt.date and tb is dt.date:
        return (a - b).days
    if ta in (dt.date, dt.datetime) and tb in (dt.timedelta, Interval):
        return add_interval(a, negate_interval(b))
    if ta in (dt.date, dt.datetime) and tb in (dt.date, dt.datetime):
        x, y = unify(a, b, "-")
        return x - y
    if ta in (dt.timedelta, Interval) and tb in (dt.timedelta, Interval):
        return Interval.of(a) + Interval.of(negate_interval(b))
    x, y = _numeric_pair(a, b, "-")
    return x - y


def _date_shift(d: dt.date, days: int) -> dt.date:
    try:
        return d + dt.timedelta(days=days)
    except OverflowError:
        raise errors.DataError("date out of range", sqlstate="22008") from None


def mul(a: Any, b: Any) -> Any:
    """``a * b`` for non-NULL numeric operands."""
    if type(a) is type(b) and type(a) in _NUM_SET:
        return a * b
    x, y = _numeric_pair(a, b, "*")
    return x * y


def div(a: Any, b: Any) -> Any:
    """``a / b``: integer division truncates toward zero; zero divisors raise 22012."""
    ta = type(a)
    tb = type(b)
    if not (ta is tb and ta in _NUM_SET):
        a, b = _numeric_pair(a, b, "/")
        ta = type(a)
    if not b:
        raise errors.DivisionByZero("division by zero")
    if ta is int:
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q
    return a / b


def mod(a: Any, b: Any) -> Any:
    """``a % b``: the sign follows the dividend, as in PostgreSQL."""
    ta = type(a)
    tb = type(b)
    if not (ta is tb and ta in _NUM_SET):
        a, b = _numeric_pair(a, b, "%")
        ta = type(a)
    if not b:
        raise errors.DivisionByZero("division by zero")
    if ta is int:
        r = abs(a) % abs(b)
        return r if a >= 0 else -r
    if ta is float:
        return math.fmod(a, b)
    return a % b  # Decimal's % already truncates toward zero


def neg(a: Any) -> Any:
    """``-a`` for a non-NULL number or interval."""
    if type(a) in _NUM_SET:
        return -a
    if type(a) in (dt.timedelta, Interval):
        return negate_interval(a)
    raise errors.UndefinedFunction(f"operator does not exist: - {type_name(a)}")


def power(a: Any, b: Any) -> Any:
    """``a ^ b``: double precision unless an operand is numeric (then numeric)."""
    x, y = _numeric_pair(a, b, "^")
    if x == 0 and y < 0:
        raise errors.DataError(
            "zero raised to a negative power is undefined", sqlstate="2201F"
        )
    if isinstance(x, Decimal):
        if x < 0 and y != y.to_integral_value():
            raise errors.DataError(
                "a negative number raised to a non-integer power yields a complex result",
                sqlstate="2201F",
            )
        return x**y
    try:
        result = math.pow(float(x), float(y))
    except ValueError:
        raise errors.DataError(
            "a negative number raised to a non-integer power yields a complex result",
            sqlstate="2201F",
        ) from None
    except OverflowError:
        raise errors.NumericValueOutOfRange("value out of range: overflow") from None
    return result


# --- text forms and casts -------------------------------------------------------------


def to_text(value: Any) -> str:
    """PostgreSQL's text output of a non-NULL value (what ``::text`` and ``||`` give)."""
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value)
    if t is float:
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        if math.isnan(value):
            return "NaN"
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if t is Decimal:
        return format(value, "f")
    if t is dt.datetime:
        return value.isoformat(sep=" ")
    if t is dt.date:
        return value.isoformat()
    if t is bytes:
        return "\\x" + value.hex()
    if t is dt.timedelta or t is Interval:
        return str(Interval.of(value))
    return str(value)


def cast(value: Any, target: SqlType) -> Any:
    """An explicit ``CAST(value AS target)`` of a non-NULL value (PostgreSQL rules)."""
    kind = target.kind
    if kind in TEXT_KINDS:
        text = to_text(value)
        # An explicit cast to VARCHAR(n) truncates; only assignment raises 22001.
        if target.length is not None:
            text = text[: target.length]
        return text
    if kind is Kind.BOOLEAN and type(value) is int:
        return value != 0
    if kind in INT_KINDS and type(value) is str:
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            raise errors.InvalidTextRepresentation(
                f'invalid input syntax for type {static_type_name(target)}: "{value}"'
            ) from None
        return check_int(number, target)
    if type(value) in (dt.timedelta, Interval):
        raise errors.not_supported(f"cast from interval to {static_type_name(target)}")
    return coerce(value, target)
