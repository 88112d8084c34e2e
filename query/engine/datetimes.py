"""Dates, timestamps and intervals: interval values, EXTRACT and date_trunc.

Timestamps are naive and mean UTC (see :mod:`offsetdb.types`). An interval with whole
months cannot be a :class:`datetime.timedelta` (a month has no fixed length), so it is an
:class:`Interval`; an interval without months is returned to users as a ``timedelta``,
which is what PostgreSQL drivers return.
"""

from __future__ import annotations

import calendar
import datetime as dt
import decimal
import re
from dataclasses import dataclass
from typing import Any

from offsetdb import errors

_MICROS_PER_DAY = 86_400_000_000
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1


def _interval_out_of_range() -> errors.Error:
    return errors.DataError("interval field value out of range", sqlstate="22015")


@dataclass(frozen=True)
class Interval:
    """A PostgreSQL interval: months, days and microseconds, kept apart as PostgreSQL does."""

    months: int = 0
    days: int = 0
    micros: int = 0

    @classmethod
    def of(cls, value: Any) -> Interval:
        """An Interval from an Interval or a timedelta."""
        if isinstance(value, Interval):
            return value
        delta: dt.timedelta = value
        return cls(0, delta.days, delta.seconds * 1_000_000 + delta.microseconds)

    def __add__(self, other: Interval) -> Any:
        return Interval(
            self.months + other.months, self.days + other.days, self.micros + other.micros
        ).normalized()

    def normalized(self) -> Any:
        """A timedelta when there are no months (what users get), else self.

        Raises 22015 when a field is beyond PostgreSQL's interval (32-bit months and
        days, 64-bit microseconds) or beyond what a timedelta holds.
        """
        if abs(self.months) > _INT32_MAX or abs(self.days) > _INT32_MAX or abs(self.micros) > _INT64_MAX:
            raise _interval_out_of_range()
        if self.months == 0:
            try:
                return dt.timedelta(days=self.days, microseconds=self.micros)
            except OverflowError:
                raise _interval_out_of_range() from None
        return self

    def __str__(self) -> str:
        parts = []
        years, months = divmod(abs(self.months), 12)
        sign = "-" if self.months < 0 else ""
        if years:
            parts.append(f"{sign}{years} year{'s' if years != 1 else ''}")
        if months:
            parts.append(f"{sign}{months} mon{'s' if months != 1 else ''}")
        if self.days:
            parts.append(f"{self.days} day{'s' if abs(self.days) != 1 else ''}")
        if self.micros or not parts:
            total = abs(self.micros)
            seconds, micros = divmod(total, 1_000_000)
            hours, seconds = divmod(seconds, 3600)
            minutes, seconds = divmod(seconds, 60)
            text = f"{'-' if self.micros < 0 else ''}{hours:02d}:{minutes:02d}:{seconds:02d}"
            if micros:
                text += f".{micros:06d}".rstrip("0")
            parts.append(text)
        return " ".join(parts)


def interval_type_name() -> str:
    """The SQL name of the interval type."""
    return "interval"


def negate_interval(value: Any) -> Any:
    """``-value`` for an Interval or timedelta."""
    if isinstance(value, Interval):
        return Interval(-value.months, -value.days, -value.micros)
    return -value


_UNITS = {
    "microsecond": (0, 0, 1),
    "millisecond": (0, 0, 1000),
    "second": (0, 0, 1_000_000),
    "minute": (0, 0, 60_000_000),
    "hour": (0, 0, 3_600_000_000),
    "day": (0, 1, 0),
    "week": (0, 7, 0),
    "month": (1, 0, 0),
    "mon": (1, 0, 0),
    "year": (12, 0, 0),
    "decade": (120, 0, 0),
    "century": (1200, 0, 0),
    "millennium": (12000, 0, 0),
}
_UNIT_ALIASES = {
    "us": "microsecond",
    "usec": "microsecond",
    "usecs": "microsecond",
    "microseconds": "microsecond",
    "ms": "millisecond",
    "msec": "millisecond",
    "msecs": "millisecond",
    "milliseconds": "millisecond",
    "s": "second",
    "sec": "second",
    "secs": "second",
    "seconds": "second",
    "m": "minute",
    "min": "minute",
    "mins": "minute",
    "minutes": "minute",
    "h": "hour",
    "hr": "hour",
    "hrs": "hour",
    "hours": "hour",
    "d": "day",
    "days": "day",
    "w": "week",
    "weeks": "week",
    "mons": "month",
    "months": "month",
    "y": "year",
    "yr": "year",
    "yrs": "year",
    "years": "year",
    "decades": "decade",
    "centuries": "century",
    "millennia": "millennium",
    "millenniums": "millennium",
}
_PART = re.compile(r"([+-]?\d+(?:\.\d+)?)\s*([a-z]+)")
_CLOCK = re.compile(r"([+-]?)(\d+):(\d{1,2})(?::(\d{1,2}(?:\.\d+)?))?$")


def unit_name(text: str) -> str:
    """The canonical name of a date/time unit ("days" -> "day"), or 22023 naming it."""
    lowered = text.strip().lower()
    lowered = _UNIT_ALIASES.get(lowered, lowered)
    return lowered


def parse_interval(text: str) -> Any:
    """An interval literal ('2 days 3 hours', '1 month', '01:30:00') as Interval/timedelta."""
    months = days = 0
    micros = decimal.Decimal(0)
    rest = text.strip().lower()
    if rest.startswith("@"):
        rest = rest[1:]
    tokens = re.split(r"\s+(?=[+-]?\d)", rest) if rest else []
    for index, token in enumerate(tokens):
        token = token.strip()
        if re.fullmatch(r"[+-]?\d+(?:\.\d+)?", token) and index + 1 < len(tokens):
            if not _CLOCK.match(tokens[index + 1].strip()):
                # '1 2 months': a bare number may only end the text or precede a time
                raise errors.InvalidDatetimeFormat(f'invalid input syntax for type interval: "{text}"')
            token += " day"  # '1 12:00:00': a bare number before a time of day counts days
        clock = _CLOCK.match(token)
        if clock:
            sign = -1 if clock.group(1) == "-" else 1
            seconds = decimal.Decimal(clock.group(4) or 0)
            total = (int(clock.group(2)) * 3600 + int(clock.group(3)) * 60) + seconds
            micros += sign * total * 1_000_000
            continue
        match = _PART.fullmatch(token)
        if match is None and re.fullmatch(r"[+-]?\d+(?:\.\d+)?", token):
            match = _PART.fullmatch(token + " second")
        if match is None:
            raise errors.InvalidDatetimeFormat(f'invalid input syntax for type interval: "{text}"')
        amount = decimal.Decimal(match.group(1))
        unit = unit_name(match.group(2))
        if unit not in _UNITS:
            raise errors.InvalidDatetimeFormat(f'invalid input syntax for type interval: "{text}"')
        m, d, us = _UNITS[unit]
        if m:
            whole = int(amount * m)
            months += whole
            # a fractional month spills into days (30 per month), as in PostgreSQL
            days += int((amount * m - whole) * 30)
        elif d:
            whole = int(amount * d)
            days += whole
            micros += (amount * d - whole) * _MICROS_PER_DAY
        else:
            micros += amount * us
    return Interval(months, days, int(micros)).normalized()


def _ts_round(value: float) -> float:
    """PostgreSQL's TSROUND: round to whole microseconds (six decimals of a second)."""
    return round(value * 1_000_000) / 1_000_000


def multiply_interval(value: Any, factor: float) -> Any:
    """``interval * factor`` as PostgreSQL's ``interval_mul``: fractions cascade down.

    Fractional months become days at 30 a month and fractional days become seconds, so
    ``'1 month' * 0.5`` is 15 days and ``'1 day' * 1.5`` is 1 day 12:00:00.
    """
    if factor != factor or factor in (float("inf"), float("-inf")):
        raise errors.DataError("interval out of range", sqlstate="22008")
    iv = Interval.of(value)
    return _cascade(iv.months * factor, iv.days * factor, iv.micros * factor)


def divide_interval(value: Any, divisor: float) -> Any:
    """``interval / divisor`` (22012 for zero), cascading as :func:`multiply_interval`."""
    if divisor == 0:
        raise errors.DivisionByZero("division by zero")
    iv = Interval.of(value)
    return _cascade(iv.months / divisor, iv.days / divisor, iv.micros / divisor)


def _cascade(months_exact: float, days_exact: float, micros_exact: float) -> Any:
    """An interval from fractional fields: each field's fraction spills into the next."""
    months = int(months_exact)
    days = int(days_exact)
    month_remainder_days = _ts_round((months_exact - months) * 30)
    seconds_remainder = _ts_round(
        (days_exact - days + month_remainder_days - int(month_remainder_days)) * 86_400
    )
    if abs(seconds_remainder) >= 86_400:
        days += int(seconds_remainder / 86_400)
        seconds_remainder -= int(seconds_remainder / 86_400) * 86_400
    days += int(month_remainder_days)
    micros = round(micros_exact + seconds_remainder * 1_000_000)
    if abs(months) > _INT32_MAX or abs(days) > _INT32_MAX or abs(micros) > _INT64_MAX:
        raise errors.DataError("interval out of range", sqlstate="22008")
    return Interval(months, days, micros).normalized()


def out_of_range_date() -> errors.Error:
    """Dates PostgreSQL holds and Python's date cannot: refused, not mis-answered."""
    return errors.not_supported("dates and timestamps outside years 1 to 9999")


def add_interval(value: dt.date, interval: Any) -> dt.datetime:
    """``value + interval`` for a date or timestamp; the result is a timestamp."""
    iv = Interval.of(interval)
    if isinstance(value, dt.datetime):
        ts = value
    else:
        ts = dt.datetime(value.year, value.month, value.day)
    try:
        if iv.months:
            total = ts.year * 12 + (ts.month - 1) + iv.months
            year, month0 = divmod(total, 12)
            day = min(ts.day, calendar.monthrange(year, month0 + 1)[1])
            ts = ts.replace(year=year, month=month0 + 1, day=day)
        return ts + dt.timedelta(days=iv.days, microseconds=iv.micros)
    except (OverflowError, ValueError):
        raise out_of_range_date() from None


def _as_timestamp(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime(value.year, value.month, value.day)


def extract(field: str, value: Any) -> decimal.Decimal:
    """``EXTRACT(field FROM value)`` as numeric (PostgreSQL 14+), 22023 for unknown fields."""
    f = unit_name(field)
    if isinstance(value, str):
        # an untyped literal: PostgreSQL cannot tell date from timestamp from interval
        raise errors.ProgrammingError(
            "function date_part(unknown, unknown) is not unique: cast the value to date, "
            "timestamp or interval",
            sqlstate="42725",
        )
    if isinstance(value, (dt.timedelta, Interval)):
        return _extract_interval(f, Interval.of(value))
    is_date = not isinstance(value, dt.datetime)
    ts = _as_timestamp(value)
    D = decimal.Decimal
    if f == "year":
        return D(ts.year)
    if f == "month":
        return D(ts.month)
    if f == "day":
        return D(ts.day)
    if f == "quarter":
        return D((ts.month - 1) // 3 + 1)
    if f in ("dow",):
        return D(ts.isoweekday() % 7)
    if f == "isodow":
        return D(ts.isoweekday())
    if f == "doy":
        return D(ts.timetuple().tm_yday)
    if f == "week":
        return D(ts.isocalendar()[1])
    if f == "isoyear":
        return D(ts.isocalendar()[0])
    if f == "decade":
        return D(ts.year // 10)
    if f == "century":
        return D((ts.year + 99) // 100)
    if f == "millennium":
        return D((ts.year + 999) // 1000)
    if f == "epoch":
        delta = ts - dt.datetime(1970, 1, 1)
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        # PostgreSQL 14+: a timestamp's epoch has six decimals, a date's none
        return D(micros // 1_000_000) if is_date else D(micros).scaleb(-6)
    if is_date and f in ("hour", "minute", "second", "millisecond", "microsecond"):
        raise errors.DataError(f'unit "{field}" not supported for type date', sqlstate="0A000")
    if f == "hour":
        return D(ts.hour)
    if f == "minute":
        return D(ts.minute)
    if f == "second":
        return D(ts.second * 1_000_000 + ts.microsecond).scaleb(-6)
    if f == "millisecond":
        return D(ts.second * 1_000_000 + ts.microsecond).scaleb(-3)
    if f == "microsecond":
        return D(ts.second * 1_000_000 + ts.microsecond)
    raise errors.DataError(f'unit "{field}" not recognized', sqlstate="22023")


def _extract_interval(f: str, iv: Interval) -> decimal.Decimal:
    D = decimal.Decimal
    if f == "epoch":
        return D((iv.months * 30 * 86400 + iv.days * 86400) * 1_000_000 + iv.micros).scaleb(-6)
    if f == "year":
        return D(int(iv.months / 12))
    if f == "month":
        return D(iv.months - int(iv.months / 12) * 12)
    if f == "day":
        return D(iv.days)
    if f == "hour":
        return D(int(iv.micros / 3_600_000_000))
    if f == "minute":
        return D(int(iv.micros / 60_000_000) % 60)
    if f == "second":
        return D(iv.micros % 60_000_000).scaleb(-6)
    if f == "millisecond":
        return D(iv.micros % 60_000_000).scaleb(-3)
    if f == "microsecond":
        return D(iv.micros % 60_000_000)
    raise errors.DataError(f'unit "{f}" not supported for type interval', sqlstate="0A000")


def date_trunc(field: str, value: Any) -> dt.datetime:
    """``date_trunc(field, value)``: the timestamp truncated to the unit."""
    f = unit_name(field)
    ts = _as_timestamp(value)
    if f == "microsecond":
        return ts
    if f == "millisecond":
        return ts.replace(microsecond=ts.microsecond // 1000 * 1000)
    if f == "second":
        return ts.replace(microsecond=0)
    if f == "minute":
        return ts.replace(second=0, microsecond=0)
    if f == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
    if f == "day":
        return day
    if f == "week":
        return day - dt.timedelta(days=day.weekday())
    if f == "month":
        return day.replace(day=1)
    if f == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if f == "year":
        return day.replace(month=1, day=1)
    if f == "decade":
        return day.replace(year=day.year // 10 * 10, month=1, day=1)
    if f == "century":
        return day.replace(year=(day.year - 1) // 100 * 100 + 1, month=1, day=1)
    if f == "millennium":
        return day.replace(year=(day.year - 1) // 1000 * 1000 + 1, month=1, day=1)
    raise errors.DataError(f'unit "{field}" not recognized', sqlstate="22023")
