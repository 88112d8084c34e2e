"""PostgreSQL's input functions: text to integer, float, boolean, date and timestamp.

What ``'42'::integer`` or an untyped literal assigned to a column accepts is decided by
PostgreSQL's ``int4in``, ``float8in``, ``boolin``, ``date_in`` and ``timestamp_in``, not
by Python's ``int()``/``float()``, which accept full-width digits, ``inf`` overflows and
``1_0`` where PostgreSQL does not, and reject hex integers where PostgreSQL accepts them.
Every function here takes the text as the user wrote it and raises the SQLSTATE
PostgreSQL raises (22P02 bad syntax, 22003 out of range, 22007/22008 for dates).

>>> parse_int("  0x1F ", "integer"), parse_bool("yes"), parse_date("Jan 8, 1999")
(31, True, datetime.date(1999, 1, 8))
"""

from __future__ import annotations

import datetime as dt
import math
import re

from offsetdb import errors

_WHITESPACE = " \t\n\r\f\v"


def _invalid(type_name: str, text: str) -> errors.InvalidTextRepresentation:
    return errors.InvalidTextRepresentation(f'invalid input syntax for type {type_name}: "{text}"')


# --- integers ---------------------------------------------------------------------------

_INT_BODY = re.compile(
    r"[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|[0-9](?:_?[0-9])*)",
    re.ASCII,
)
_BASES = {"x": 16, "o": 8, "b": 2}


def parse_int(text: str, type_name: str = "integer") -> int:
    """Integer input: decimal, ``0x``/``0o``/``0b`` prefixes, single ``_`` between digits.

    The range is the caller's to check (the value is returned unbounded).
    """
    body = text.strip(_WHITESPACE)
    if not _INT_BODY.fullmatch(body):
        raise _invalid(type_name, text)
    sign = -1 if body[0] == "-" else 1
    digits = body.lstrip("+-").replace("_", "")
    if len(digits) > 2 and digits[0] == "0" and digits[1] in "xXoObB":
        value = int(digits[2:], _BASES[digits[1].lower()])
    else:
        if len(digits) > 40:  # beyond any integer type: do not feed Python's digit limit
            raise errors.NumericValueOutOfRange(f'value "{text}" is out of range for type {type_name}')
        value = int(digits)
    return sign * value


# --- floats -----------------------------------------------------------------------------

_FLOAT_BODY = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?)",
    re.ASCII,
)
_SPECIAL_FLOATS = {
    "nan": math.nan,
    "inf": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-infinity": -math.inf,
}


def parse_float(text: str, type_name: str = "double precision") -> float:
    """Float input as ``float8in``: C ``strtod`` syntax, specials, 22003 on over/underflow."""
    body = text.strip(_WHITESPACE)
    special = _SPECIAL_FLOATS.get(body.lower())
    if special is not None:
        return special
    if not _FLOAT_BODY.fullmatch(body):
        raise _invalid(type_name, text)
    if body.lstrip("+-")[:2].lower() == "0x":
        sign = -1.0 if body[0] == "-" else 1.0
        value = sign * float.fromhex(body.lstrip("+-"))
    else:
        value = float(body)
    if math.isinf(value):
        raise errors.NumericValueOutOfRange(f'"{text}" is out of range for type {type_name}')
    if value == 0.0 and any(ch in "123456789" for ch in body.split("e")[0].split("E")[0]):
        raise errors.NumericValueOutOfRange(f'"{text}" is out of range for type {type_name}')
    return value


# --- booleans ---------------------------------------------------------------------------

_BOOL_WORDS = {"t": ("true", True), "f": ("false", False), "y": ("yes", True), "n": ("no", False)}


def parse_bool(text: str) -> bool:
    """Boolean input as ``boolin``: prefixes of true/false/yes/no, on/off (2+ letters), 1/0."""
    word = text.strip(_WHITESPACE).lower()
    if word in ("1", "0"):
        return word == "1"
    if word[:1] in _BOOL_WORDS:
        full, value = _BOOL_WORDS[word[0]]
        if full.startswith(word):
            return value
    elif len(word) >= 2 and "on".startswith(word):
        return True
    elif len(word) >= 2 and "off".startswith(word):
        return False
    raise _invalid("boolean", text)


# --- dates and timestamps ---------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
            ("dec", "december"),
        ],
        1,
    )
    for name in names
}
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[A-Za-z]+|[-/:.,+]|\s+")
_ZONE_NAMES = {"z", "utc", "gmt", "zulu", "ut"}


class _DateTimeText:
    """A date/time literal split into PostgreSQL's fields (``ParseDateTime``, simplified)."""

    def __init__(self, text: str, type_name: str) -> None:
        self.text = text
        self.type_name = type_name

    def syntax(self) -> errors.Error:
        return errors.InvalidDatetimeFormat(
            f'invalid input syntax for type {self.type_name}: "{self.text}"'
        )

    def range(self) -> errors.Error:
        return errors.DataError(
            f'date/time field value out of range: "{self.text}"', sqlstate="22008"
        )

    def parse(self) -> tuple[dt.date, dt.timedelta | None]:
        """The date, and the time of day when one was given."""
        body = self.text.strip(_WHITESPACE)
        lowered = body.lower()
        if lowered == "epoch":
            return dt.date(1970, 1, 1), dt.timedelta(0)
        if lowered in ("infinity", "-infinity", "+infinity", "now", "today", "tomorrow", "yesterday"):
            raise errors.not_supported(f"the special {self.type_name} value '{body}'")
        date_part, rest = self._split_date(body)
        day = self._date(date_part)
        rest = rest.strip(_WHITESPACE)
        if not rest:
            return day, None
        return day, self._time(rest)

    def _split_date(self, body: str) -> tuple[str, str]:
        # ISO "T" separator, or the first blank after the date's own words
        iso = re.match(r"(\d{4,}-\d{1,2}-\d{1,2})[Tt ](.*)$", body, re.S)
        if iso:
            return iso.group(1), iso.group(2)
        compact = re.match(r"(\d{8})[Tt ](.*)$", body, re.S)
        if compact:
            return compact.group(1), compact.group(2)
        words = re.match(
            r"((?:[A-Za-z]+\.?\s+\d{1,2},?\s+\d{4,})|(?:\d{1,2}\s+[A-Za-z]+\s+\d{4,})"
            r"|(?:\d{1,2}/\d{1,2}/\d{4,})|(?:\d{4,}-[A-Za-z]+-\d{1,2})|(?:\d{4,}-\d{1,2}-\d{1,2})"
            r"|(?:\d{8}))(?:\s+(.*))?$",
            body,
            re.S,
        )
        if words is None:
            raise self.syntax()
        return words.group(1), words.group(2) or ""

    def _date(self, text: str) -> dt.date:
        year: int
        month: int
        day: int
        if (m := re.fullmatch(r"(\d{4,})-(\d{1,2})-(\d{1,2})", text)) or (m := re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text)):
            year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
        elif m := re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4,})", text):
            month, day, year = int(m.group(1)), int(m.group(2)), int(m.group(3))  # DateStyle MDY
        elif m := re.fullmatch(r"([A-Za-z]+)\.?\s+(\d{1,2}),?\s+(\d{4,})", text):
            month, day, year = self._month(m.group(1)), int(m.group(2)), int(m.group(3))
        elif m := re.fullmatch(r"(\d{1,2})\s+([A-Za-z]+)\s+(\d{4,})", text):
            day, month, year = int(m.group(1)), self._month(m.group(2)), int(m.group(3))
        elif m := re.fullmatch(r"(\d{4,})-([A-Za-z]+)-(\d{1,2})", text):
            year, month, day = int(m.group(1)), self._month(m.group(2)), int(m.group(3))
        else:
            raise self.syntax()
        if year > 9999 or year < 1:
            raise errors.not_supported(f"{self.type_name} values outside years 1 to 9999")
        try:
            return dt.date(year, month, day)
        except ValueError:
            raise self.range() from None

    def _month(self, name: str) -> int:
        month = _MONTHS.get(name.lower())
        if month is None:
            raise self.syntax()
        return month

    def _time(self, text: str) -> dt.timedelta:
        m = re.fullmatch(
            r"(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d+))?)?\s*(am|pm|a\.m\.|p\.m\.)?"
            r"\s*((?:[+-]\d{1,2}(?::?\d{2})?)|[A-Za-z]+)?",
            text,
            re.IGNORECASE,
        )
        if m is None:
            raise self.syntax()
        zone = m.group(6)
        if zone is not None and zone[0] not in "+-" and zone.lower() not in _ZONE_NAMES:
            raise errors.not_supported(f"time zone name {zone!r} in a {self.type_name} literal")
        hour, minute = int(m.group(1)), int(m.group(2))
        second = int(m.group(3) or 0)
        fraction = m.group(4) or ""
        meridiem = (m.group(5) or "").lower().replace(".", "")
        if meridiem:
            if not 1 <= hour <= 12:
                raise self.range()
            hour = hour % 12 + (12 if meridiem == "pm" else 0)
        micros = round(int(fraction) * 10 ** (6 - len(fraction))) if fraction else 0
        if len(fraction) > 6:
            micros = round(int(fraction) / 10 ** (len(fraction) - 6))
        if minute > 59 or second > 60 or hour > 24 or (
            hour == 24 and (minute or second or micros)
        ) or (second == 60 and micros):
            raise self.range()
        return dt.timedelta(hours=hour, minutes=minute, seconds=second, microseconds=micros)


def parse_date(text: str) -> dt.date:
    """Date input: ISO, ``YYYYMMDD``, ``M/D/Y``, month names; a time part is checked, then dropped."""
    day, _ = _DateTimeText(text, "date").parse()
    return day


def parse_timestamp(text: str) -> dt.datetime:
    """Timestamp input (without time zone: a zone in the text is ignored, as PostgreSQL does)."""
    day, time_of_day = _DateTimeText(text, "timestamp").parse()
    try:
        return dt.datetime(day.year, day.month, day.day) + (time_of_day or dt.timedelta(0))
    except OverflowError:
        raise errors.not_supported("timestamp values outside years 1 to 9999") from None
