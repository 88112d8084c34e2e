"""PostgreSQL's NUMERIC on Python's ``Decimal``: exact arithmetic and PostgreSQL's scales.

Python's decimal module rounds every result to the thread's context precision (28
significant digits by default), which silently turned ``1e28 + 1`` into ``1e28`` and made
``quantize`` fail on large values. PostgreSQL's NUMERIC is exact up to 131072 digits
before the decimal point and 16383 after, and chooses the scale of inexact results
(division, square roots, logarithms, powers) by fixed rules. This module is the one
place those rules live; every NUMERIC operation in offsetdb goes through it, with the
explicit :data:`CONTEXT` (never the thread's own context, which belongs to the caller).

The scale rules are PostgreSQL's (``src/backend/utils/adt/numeric.c``): a value's
*display scale* (dscale) is its number of digits after the point; addition keeps the
larger scale, multiplication adds them, and inexact operations aim at 16 significant
digits (``NUMERIC_MIN_SIG_DIGITS``) but never fewer fractional digits than an input has
and never more than 1000. Weights are counted in PostgreSQL's base-10000 digits, since
that is what its estimates use.

>>> div(Decimal(1), Decimal(3))
Decimal('0.33333333333333333333')
>>> add(Decimal("1e28"), Decimal(1))
Decimal('10000000000000000000000000001')
"""

from __future__ import annotations

import decimal
import math
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from offsetdb import errors

# Limits of PostgreSQL's numeric format.
MAX_INTEGER_DIGITS = 131072
MAX_SCALE = 16383
MAX_DISPLAY_SCALE = 1000  # NUMERIC_MAX_DISPLAY_SCALE: inexact results stop here
MIN_SIG_DIGITS = 16  # NUMERIC_MIN_SIG_DIGITS
_DEC_DIGITS = 4  # decimal digits per base-10000 digit

# Exact for every value PostgreSQL can hold: + and * never round below this precision.
CONTEXT = decimal.Context(
    prec=MAX_INTEGER_DIGITS + MAX_SCALE + 8,
    rounding=ROUND_HALF_UP,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

_ONE = Decimal(1)
_ZERO = Decimal(0)


def scale_of(value: Decimal) -> int:
    """The display scale: digits after the decimal point (never negative)."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return -exponent if exponent < 0 else 0


def normalize(value: Decimal) -> Decimal:
    """``value`` as PostgreSQL holds it: no negative zero, no positive exponent.

    Raises 22003 when it exceeds the numeric format (131072 integer digits), and rounds
    to 16383 fractional digits, PostgreSQL's largest scale.
    """
    if not value.is_finite():
        raise errors.NumericValueOutOfRange("value overflows numeric format")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent > 0:
        value = value.quantize(_ONE, context=CONTEXT)
    elif exponent < -MAX_SCALE:
        value = value.quantize(Decimal(1).scaleb(-MAX_SCALE), context=CONTEXT)
    if value.is_zero():
        return value.copy_abs()
    if value.adjusted() >= MAX_INTEGER_DIGITS:
        raise errors.NumericValueOutOfRange("value overflows numeric format")
    return value


def round_to(value: Decimal, scale: int, rounding: str = ROUND_HALF_UP) -> Decimal:
    """``value`` with exactly ``scale`` fractional digits (negative: tens, hundreds...).

    Halves round away from zero, as PostgreSQL's ``round``. A negative scale still gives
    an integer-valued result with scale 0 (``round(1234.5, -2)`` is ``1200``).
    """
    quantum = Decimal(1).scaleb(-scale)
    result = value.quantize(quantum, rounding=rounding, context=CONTEXT)
    return normalize(result)


def add(a: Decimal, b: Decimal) -> Decimal:
    """``a + b``, exact."""
    return normalize(CONTEXT.add(a, b))


def sub(a: Decimal, b: Decimal) -> Decimal:
    """``a - b``, exact."""
    return normalize(CONTEXT.subtract(a, b))


def mul(a: Decimal, b: Decimal) -> Decimal:
    """``a * b``, exact (its scale is the sum of the operands' scales)."""
    return normalize(CONTEXT.multiply(a, b))


def neg(a: Decimal) -> Decimal:
    """``-a`` (never negative zero)."""
    return normalize(CONTEXT.minus(a))


def _weight_and_first_digit(value: Decimal) -> tuple[int, int]:
    """PostgreSQL's base-10000 weight of ``value`` and its leading base-10000 digit."""
    if value.is_zero():
        return 0, 0
    magnitude = value.copy_abs()
    weight = magnitude.adjusted() // _DEC_DIGITS
    first = int(magnitude.scaleb(-_DEC_DIGITS * weight, context=CONTEXT))
    return weight, first


def div_scale(a: Decimal, b: Decimal) -> int:
    """The result scale PostgreSQL picks for ``a / b`` (``select_div_scale``)."""
    weight1, first1 = _weight_and_first_digit(a)
    weight2, first2 = _weight_and_first_digit(b)
    qweight = weight1 - weight2
    if first1 <= first2:
        qweight -= 1
    scale = MIN_SIG_DIGITS - qweight * _DEC_DIGITS
    scale = max(scale, scale_of(a), scale_of(b), 0)
    return min(scale, MAX_DISPLAY_SCALE)


def divide_to(a: Decimal, b: Decimal, scale: int) -> Decimal:
    """``a / b`` rounded half away from zero to ``scale`` digits (22012 when b is 0)."""
    if b.is_zero():
        raise errors.DivisionByZero("division by zero")
    if a.is_zero():
        return normalize(_ZERO.quantize(Decimal(1).scaleb(-scale), context=CONTEXT))
    # Enough significant digits for every digit down to ``scale``, plus one to round on;
    # truncating there and then rounding half-up gives the correctly rounded quotient.
    integer_digits = max(a.adjusted() - b.adjusted() + 2, 1)
    context = decimal.Context(
        prec=integer_digits + scale + 2,
        rounding=ROUND_DOWN,
        Emax=decimal.MAX_EMAX,
        Emin=decimal.MIN_EMIN,
        traps=CONTEXT.traps.copy(),
    )
    quotient = context.divide(a, b)
    return round_to(quotient, scale)


def div(a: Decimal, b: Decimal) -> Decimal:
    """``a / b`` with PostgreSQL's result scale (``1 / 3`` gives 20 digits)."""
    if b.is_zero():
        raise errors.DivisionByZero("division by zero")
    return divide_to(a, b, div_scale(a, b))


def int_div(a: Decimal, b: Decimal) -> Decimal:
    """``div(a, b)``: the quotient truncated toward zero, scale 0."""
    if b.is_zero():
        raise errors.DivisionByZero("division by zero")
    return normalize(CONTEXT.divide_int(a, b))


def mod(a: Decimal, b: Decimal) -> Decimal:
    """``a % b``: the remainder with the dividend's sign."""
    if b.is_zero():
        raise errors.DivisionByZero("division by zero")
    return normalize(CONTEXT.remainder(a, b))


def from_float(value: float) -> Decimal:
    """A float8 converted to NUMERIC as PostgreSQL does: 15 significant digits.

    Refuses NaN and infinities (0A000): PostgreSQL's NUMERIC holds them, offsetdb's
    does not.
    """
    if math.isnan(value):
        raise errors.not_supported("NaN in a numeric value")
    if math.isinf(value):
        raise errors.not_supported("numeric Infinity")
    return normalize(Decimal(f"{value:.15g}"))


def from_int(value: int) -> Decimal:
    """An integer as NUMERIC (exact)."""
    return normalize(Decimal(value))


def parse(text: str) -> Decimal:
    """NUMERIC input (``numeric_in``): an optionally signed decimal number.

    Accepts surrounding whitespace, a leading sign, digits with single underscores between
    them (PostgreSQL 16), a fraction and an exponent. Rejects everything else with 22P02,
    including ``NaN``/``Infinity`` (which offsetdb's NUMERIC does not hold: 0A000).
    """
    stripped = text.strip(" \t\n\r\f\v")
    lowered = stripped.lower().lstrip("+-")
    if lowered in ("nan", "infinity", "inf"):
        raise errors.not_supported(f"the numeric value {stripped!r}")
    if lowered[:2] in ("0x", "0o", "0b"):
        from offsetdb.textinput import parse_int  # PostgreSQL 16: prefixed integers

        return normalize(Decimal(parse_int(text, "numeric")))
    if not _is_decimal_literal(stripped):
        raise errors.InvalidTextRepresentation(
            f'invalid input syntax for type numeric: "{text}"'
        )
    try:
        value = Decimal(stripped.replace("_", ""))
    except decimal.InvalidOperation:
        raise errors.InvalidTextRepresentation(
            f'invalid input syntax for type numeric: "{text}"'
        ) from None
    return normalize(value)


def _is_decimal_literal(text: str) -> bool:
    """Whether ``text`` is ``[sign] digits [. digits] [e [sign] digits]`` in ASCII."""
    i = 0
    n = len(text)
    if i < n and text[i] in "+-":
        i += 1
    digits_before = _digit_run(text, i)
    i += digits_before
    digits_after = 0
    if i < n and text[i] == ".":
        i += 1
        digits_after = _digit_run(text, i)
        i += digits_after
    if digits_before == 0 and digits_after == 0:
        return False
    if i < n and text[i] in "eE":
        i += 1
        if i < n and text[i] in "+-":
            i += 1
        exponent_digits = _digit_run(text, i)
        if exponent_digits == 0:
            return False
        i += exponent_digits
    return i == n


def _digit_run(text: str, start: int) -> int:
    """Length of the ASCII digit run at ``start`` (underscores allowed between digits)."""
    i = start
    n = len(text)
    while i < n and ("0" <= text[i] <= "9" or (
        text[i] == "_" and i > start and i + 1 < n and "0" <= text[i + 1] <= "9"
    )):
        i += 1
    return i - start


def to_text(value: Decimal) -> str:
    """PostgreSQL's text form: plain notation with exactly the value's scale."""
    return format(normalize(value), "f")


# --- functions whose results are inexact: PostgreSQL's scale, then correctly rounded ----


def _working_context(scale: int, value_digits: int) -> decimal.Context:
    return decimal.Context(
        prec=max(value_digits, 1) + scale + 8,
        rounding=ROUND_HALF_UP,
        Emax=decimal.MAX_EMAX,
        Emin=decimal.MIN_EMIN,
        traps=CONTEXT.traps.copy(),
    )


def sqrt(value: Decimal) -> Decimal:
    """``sqrt(numeric)`` (2201F for a negative argument)."""
    if value < 0:
        raise errors.DataError("cannot take square root of a negative number", sqlstate="2201F")
    weight, _ = _weight_and_first_digit(value)
    result_weight = (weight + 1) * _DEC_DIGITS // 2 - 1
    scale = _clamp_scale(MIN_SIG_DIGITS - result_weight, scale_of(value))
    context = _working_context(scale, value.adjusted() // 2 + 2)
    return round_to(context.sqrt(value), scale)


def exp(value: Decimal) -> Decimal:
    """``exp(numeric)`` (22003 when the result overflows)."""
    estimate = float(value) * 0.434294481903252  # decimal weight of the result
    if estimate > MAX_INTEGER_DIGITS:
        raise errors.NumericValueOutOfRange("value overflows numeric format")
    estimate = max(estimate, -MAX_DISPLAY_SCALE - 1)
    scale = _clamp_scale(MIN_SIG_DIGITS - int(estimate), scale_of(value))
    context = _working_context(scale, max(int(estimate), 0) + 2)
    return round_to(context.exp(value), scale)


def _ln_weight(value: Decimal) -> int:
    """PostgreSQL's estimate of the decimal weight of ``ln(value)``."""
    if value <= 0:
        return 0
    if Decimal("0.9") <= value <= Decimal("1.1"):
        delta = CONTEXT.subtract(value, _ONE)
        return 0 if delta.is_zero() else delta.adjusted()
    weight, first = _weight_and_first_digit(value)
    digits = first
    dweight = weight * _DEC_DIGITS
    second = int(value.copy_abs().scaleb(-_DEC_DIGITS * (weight - 1), context=CONTEXT)) % 10000
    if value.copy_abs() != Decimal(first).scaleb(_DEC_DIGITS * weight):
        digits = digits * 10000 + second
        dweight -= _DEC_DIGITS
    ln_value = math.log(digits) + dweight * 2.302585092994046
    return int(math.log10(abs(ln_value))) if ln_value else 0


def ln(value: Decimal) -> Decimal:
    """``ln(numeric)`` (2201E for zero or a negative argument)."""
    _check_log_argument(value)
    scale = _clamp_scale(MIN_SIG_DIGITS - _ln_weight(value), scale_of(value))
    context = _working_context(scale, 8)
    return round_to(context.ln(value), scale)


def log(base: Decimal, value: Decimal) -> Decimal:
    """``log(base, numeric)``: the logarithm of ``value`` to ``base``."""
    _check_log_argument(base)
    _check_log_argument(value)
    if base == _ONE:
        raise errors.DivisionByZero("division by zero")
    weight = _ln_weight(value) - _ln_weight(base)
    scale = _clamp_scale(MIN_SIG_DIGITS - weight, max(scale_of(base), scale_of(value)))
    context = _working_context(scale + 10, 8 + abs(weight))
    return round_to(context.divide(context.ln(value), context.ln(base)), scale)


def _check_log_argument(value: Decimal) -> None:
    if value.is_zero():
        raise errors.DataError("cannot take logarithm of zero", sqlstate="2201E")
    if value < 0:
        raise errors.DataError("cannot take logarithm of a negative number", sqlstate="2201E")


def power(base: Decimal, exponent: Decimal) -> Decimal:
    """``base ^ exponent`` for NUMERIC, with PostgreSQL's result scale."""
    if base.is_zero() and exponent < 0:
        raise errors.DataError("zero raised to a negative power is undefined", sqlstate="2201F")
    integral = exponent == exponent.to_integral_value()
    if base < 0 and not integral:
        raise errors.DataError(
            "a negative number raised to a non-integer power yields a complex result",
            sqlstate="2201F",
        )
    if base.is_zero():
        if integral:
            scale = _clamp_scale(MIN_SIG_DIGITS, max(scale_of(base), scale_of(exponent)))
            return round_to(_ONE if exponent.is_zero() else _ZERO, scale)
        return round_to(_ZERO, MIN_SIG_DIGITS)  # 0 ^ non-integer: no logarithm taken
    if integral:
        estimate = float(exponent) * math.log10(abs(float(base)))
    else:
        # PostgreSQL estimates the result's weight from ln(base) to about 8 digits.
        local_scale = max(8 - _ln_weight(base), 0)
        low = _working_context(local_scale, 8)
        ln_base = round_to(low.ln(base), local_scale)
        estimate = float(round_to(CONTEXT.multiply(ln_base, exponent), local_scale))
        estimate *= 0.434294481903252
    if estimate > MAX_INTEGER_DIGITS:
        raise errors.NumericValueOutOfRange("value overflows numeric format")
    if estimate + 1 < -MAX_DISPLAY_SCALE:
        return normalize(_ZERO.quantize(Decimal(1).scaleb(-MAX_DISPLAY_SCALE), context=CONTEXT))
    scale = _clamp_scale(MIN_SIG_DIGITS - int(estimate), max(scale_of(base), scale_of(exponent)))
    context = _working_context(scale + 10, max(int(estimate), 0) + 2)
    if integral and abs(exponent) <= 2**31:
        result = context.power(base, int(exponent))
    else:
        result = context.power(base, exponent)
    return round_to(result, scale)


def _clamp_scale(scale: int, at_least: int) -> int:
    return min(max(scale, at_least, 0), MAX_DISPLAY_SCALE)
