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
from collections.abc import Callable
from typing import Any

from offsetdb import errors, numeric
from offsetdb.textinput import parse_int
from offsetdb.types import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, Kind, SqlType, coerce
from offsetdb.types import to_text as text_of

from .datetimes import (
    Interval,
    add_interval,
    divide_interval,
    interval_type_name,
    multiply_interval,
    negate_interval,
    out_of_range_date,
)

Decimal = decimal.Decimal
_NUM_SET = frozenset((int, float, Decimal))

INTEGER = SqlType(Kind.INTEGER)
BIGINT = SqlType(Kind.BIGINT)
DOUBLE = SqlType(Kind.DOUBLE)
REAL = SqlType(Kind.REAL)
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
        return parse_int(text, "bigint")  # '1.5' against an integer is 22P02, as in PostgreSQL
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
        # float8 meets integer or numeric: PostgreSQL compares in float8 (the implicit
        # cast runs that way); int and numeric compare exactly, as Python does.
        if ta is float:
            return a, to_float(b)
        if tb is float:
            return to_float(a), b
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


def to_float(value: Any) -> float:
    """A number as float8 (22003 when a numeric is beyond float8's range)."""
    if type(value) is float:
        return value
    result = float(value)
    if math.isinf(result):
        raise errors.NumericValueOutOfRange("value out of range for type double precision")
    return result


def check_float(result: float, a: float, b: float, zero_ok: bool = False) -> float:
    """PostgreSQL's float8 overflow and underflow checks for ``a op b``.

    A NaN result (Infinity - Infinity, 0 * Infinity) is refused with 0A000: offsetdb
    does not hold NaN, whose ordering (above every number) Python does not follow.
    """
    if math.isinf(result) and not (math.isinf(a) or math.isinf(b)):
        raise errors.NumericValueOutOfRange("value out of range: overflow")
    if result == 0.0 and not zero_ok and a != 0.0 and b != 0.0 and math.isfinite(a) and math.isfinite(b):
        raise errors.NumericValueOutOfRange("value out of range: underflow")
    if result != result and a == a and b == b:
        raise errors.not_supported("NaN, the double precision result of this operation")
    return result


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
        return to_float(a), to_float(b)
    if ta is Decimal or tb is Decimal:
        return Decimal(a), Decimal(b)
    return a, b


def add(a: Any, b: Any) -> Any:
    """``a + b`` for non-NULL operands (numbers, date + integer, time + interval)."""
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta is int:
            return a + b
        if ta is Decimal:
            return numeric.add(a, b)
        if ta is float:
            return check_float(a + b, a, b, zero_ok=True)
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
    return add(x, y)


def sub(a: Any, b: Any) -> Any:
    """``a - b`` for non-NULL operands (numbers, dates, timestamps, intervals)."""
    ta = type(a)
    tb = type(b)
    if ta is tb:
        if ta is int:
            return a - b
        if ta is Decimal:
            return numeric.sub(a, b)
        if ta is float:
            return check_float(a - b, a, b, zero_ok=True)
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
    return sub(x, y)


def _date_shift(d: dt.date, days: int) -> dt.date:
    try:
        return d + dt.timedelta(days=days)
    except OverflowError:
        raise out_of_range_date() from None


def mul(a: Any, b: Any) -> Any:
    """``a * b`` for non-NULL numeric operands, or an interval and a number."""
    ta = type(a)
    tb = type(b)
    if ta in (dt.timedelta, Interval) and tb in _NUM_SET:
        return multiply_interval(a, to_float(b))
    if tb in (dt.timedelta, Interval) and ta in _NUM_SET:
        return multiply_interval(b, to_float(a))
    if ta is tb:
        if ta is int:
            return a * b
        if ta is Decimal:
            return numeric.mul(a, b)
        if ta is float:
            return check_float(a * b, a, b)
    x, y = _numeric_pair(a, b, "*")
    return mul(x, y)


def div(a: Any, b: Any) -> Any:
    """``a / b``: integer division truncates toward zero; zero divisors raise 22012."""
    ta = type(a)
    tb = type(b)
    if ta in (dt.timedelta, Interval) and tb in _NUM_SET:
        return divide_interval(a, to_float(b))
    if not (ta is tb and ta in _NUM_SET):
        a, b = _numeric_pair(a, b, "/")
        ta = type(a)
    if not b:
        raise errors.DivisionByZero("division by zero")
    if ta is int:
        q = abs(a) // abs(b)
        return q if (a < 0) == (b < 0) else -q
    if ta is Decimal:
        return numeric.div(a, b)
    return check_float(a / b, a, b)


def mod(a: Any, b: Any) -> Any:
    """``a % b``: the sign follows the dividend, as in PostgreSQL."""
    ta = type(a)
    tb = type(b)
    if not (ta is tb and ta in _NUM_SET):
        a, b = _numeric_pair(a, b, "%")
        ta = type(a)
    if ta is float:
        # float8 has no % operator in PostgreSQL; mod() of floats is not defined either
        raise operator_error(a, "%", b)
    if not b:
        raise errors.DivisionByZero("division by zero")
    if ta is int:
        r = abs(a) % abs(b)
        return r if a >= 0 else -r
    return numeric.mod(a, b)


def neg(a: Any) -> Any:
    """``-a`` for a non-NULL number or interval."""
    ta = type(a)
    if ta is int or ta is float:
        return -a
    if ta is Decimal:
        return numeric.neg(a)
    if ta in (dt.timedelta, Interval):
        return negate_interval(a)
    raise errors.UndefinedFunction(f"operator does not exist: - {type_name(a)}")


def power(a: Any, b: Any) -> Any:
    """``a ^ b``: double precision unless an operand is numeric (then numeric)."""
    x, y = _numeric_pair(a, b, "^")
    if isinstance(x, Decimal):
        return numeric.power(x, y)
    x, y = float(x), float(y)
    if x == 0 and y < 0:
        raise errors.DataError(
            "zero raised to a negative power is undefined", sqlstate="2201F"
        )
    try:
        result = math.pow(x, y)
    except ValueError:
        raise errors.DataError(
            "a negative number raised to a non-integer power yields a complex result",
            sqlstate="2201F",
        ) from None
    except OverflowError:
        raise errors.NumericValueOutOfRange("value out of range: overflow") from None
    if result == 0.0 and x != 0.0 and not math.isinf(y):
        raise errors.NumericValueOutOfRange("value out of range: underflow")
    return result


# --- implicit conversions (CASE, COALESCE, UNION, VALUES branches) ----------------------


def converter(source: SqlType | None, target: SqlType | None) -> Callable[[Any], Any] | None:
    """A function converting non-NULL values of ``source`` to ``target``, or None if none is needed.

    What PostgreSQL's implicit casts do when branches of different types meet in one
    result column: integers and numerics become float8 beside a float8, integers become
    numeric beside a numeric, a date becomes a timestamp. An unknown source (a NULL, a
    string literal, a parameter) is converted by its run-time value.
    """
    if target is None:
        return None
    tk = target.kind
    sk = source.kind if source is not None else None
    if sk is tk or (sk in INT_KINDS and tk in INT_KINDS) or (sk in TEXT_KINDS and tk in TEXT_KINDS):
        return None
    if sk in FLOAT_KINDS and tk in FLOAT_KINDS:
        return None
    if sk is None:
        return lambda v: implicit_convert(v, target)
    if tk in FLOAT_KINDS and sk in NUMBER_KINDS:
        return to_float
    if tk is Kind.NUMERIC and sk in INT_KINDS:
        return numeric.from_int
    if tk is Kind.TIMESTAMP and sk is Kind.DATE:
        return _date_to_timestamp
    return None


def _date_to_timestamp(value: dt.date) -> dt.datetime:
    return dt.datetime(value.year, value.month, value.day)


def implicit_convert(value: Any, target: SqlType) -> Any:
    """A run-time value of unknown static type converted to ``target`` (for branches)."""
    if value is None:
        return None
    t = type(value)
    kind = target.kind
    if t is target.python_type and not (t is int and kind is Kind.NUMERIC):
        return value
    if t is str or kind in TEXT_KINDS:
        return coerce(value, target) if t is str else value
    if kind in FLOAT_KINDS and t in _NUM_SET:
        return to_float(value)
    if kind is Kind.NUMERIC and t is int:
        return numeric.from_int(value)
    if kind is Kind.TIMESTAMP and t is dt.date:
        return _date_to_timestamp(value)
    return value


# --- text forms and casts -------------------------------------------------------------


def to_text(value: Any) -> str:
    """PostgreSQL's text output of a non-NULL value (what ``::text`` and ``||`` give)."""
    t = type(value)
    if t is str:
        return value
    if t is dt.timedelta or t is Interval:
        return str(Interval.of(value))
    return text_of(value)


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
        number = parse_int(value, static_type_name(target))
        if not (INT32_MIN <= number <= INT32_MAX if kind is Kind.INTEGER else INT64_MIN <= number <= INT64_MAX):
            raise errors.NumericValueOutOfRange(
                f'value "{value}" is out of range for type {static_type_name(target)}'
            )
        return number
    if type(value) in (dt.timedelta, Interval):
        raise errors.not_supported(f"cast from interval to {static_type_name(target)}")
    return coerce(value, target)
