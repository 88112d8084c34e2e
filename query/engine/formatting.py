"""``to_char``: PostgreSQL's template formatting of timestamps, dates and numbers.

Templates are read the way PostgreSQL's ``formatting.c`` reads them: the longest
keyword at each position wins (``HH24`` before ``HH``), ``FM`` suppresses padding of
the next field, ``TH``/``th`` add an ordinal suffix to the preceding number, double
quotes enclose literal text and a backslash escapes one character; anything else is
copied. The C locale's English month and day names are used.

Number templates support the digit positions ``9`` and ``0``, the decimal point ``.``
or ``D``, group separators ``,`` or ``G`` and the sign keywords ``S``, ``MI``, ``PL``,
``SG`` and ``PR``, with ``FM``. The rarer ones (``EEEE``, ``V``, ``L``, ``RN``, ``TH`` on
numbers) are refused with 0A000 rather than formatted differently from PostgreSQL.

>>> to_char_number(Decimal("-12.5"), "999.99")
' -12.50'
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal

from offsetdb import errors, numeric

_MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]
_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

# Longest first, so that a keyword is never read as its own prefix.
_DATE_KEYWORDS = sorted(
    [
        "HH24", "HH12", "HH", "MI", "SS", "MS", "US", "SSSSS", "SSSS", "AM", "PM", "am", "pm",
        "A.M.", "P.M.", "a.m.", "p.m.", "YYYY", "YYY", "YY", "Y", "Y,YYY", "IYYY", "IYY",
        "IY", "I", "MONTH", "Month", "month", "MON", "Mon", "mon", "MM", "DAY", "Day", "day",
        "DY", "Dy", "dy", "DDD", "DD", "D", "IDDD", "ID", "W", "WW", "IW", "CC", "J", "Q",
        "BC", "AD", "bc", "ad", "B.C.", "A.D.", "b.c.", "a.d.", "RM", "rm", "FF1", "FF2",
        "FF3", "FF4", "FF5", "FF6",
    ],
    key=len,
    reverse=True,
)


def _ordinal(number: int, upper: bool) -> str:
    if number % 100 in (11, 12, 13):
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return suffix.upper() if upper else suffix


def _roman(number: int) -> str:
    out = []
    for value, letters in (
        (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I"),
    ):
        while number >= value:
            out.append(letters)
            number -= value
    return "".join(out)


def _date_field(key: str, ts: dt.datetime, fill: bool) -> tuple[str, int | None]:
    """The text of one keyword, and its numeric value (for a TH suffix)."""
    iso_year, iso_week, iso_day = ts.isocalendar()
    hour12 = ts.hour % 12 or 12

    def num(value: int, width: int) -> tuple[str, int]:
        return (f"{value:0{width}d}" if fill else str(value)), value

    def word(text: str, width: int) -> tuple[str, None]:
        return (text.ljust(width) if fill else text), None

    if key == "HH24":
        return num(ts.hour, 2)
    if key in ("HH12", "HH"):
        return num(hour12, 2)
    if key == "MI":
        return num(ts.minute, 2)
    if key == "SS":
        return num(ts.second, 2)
    if key == "MS":
        return num(ts.microsecond // 1000, 3)
    if key == "US":
        return num(ts.microsecond, 6)
    if key.startswith("FF"):
        digits = int(key[2])
        return num(ts.microsecond // 10 ** (6 - digits), digits)
    if key in ("SSSS", "SSSSS"):
        return num(ts.hour * 3600 + ts.minute * 60 + ts.second, 1)
    if key in ("AM", "PM", "am", "pm"):
        text = "AM" if ts.hour < 12 else "PM"
        return (text if key.isupper() else text.lower()), None
    if key in ("A.M.", "P.M.", "a.m.", "p.m."):
        text = "A.M." if ts.hour < 12 else "P.M."
        return (text if key[0].isupper() else text.lower()), None
    if key in ("BC", "AD", "bc", "ad"):
        return ("AD" if key.isupper() else "ad"), None
    if key in ("B.C.", "A.D.", "b.c.", "a.d."):
        return ("A.D." if key[0].isupper() else "a.d."), None
    if key == "Y,YYY":
        return f"{ts.year // 1000},{ts.year % 1000:03d}", ts.year
    if key == "YYYY":
        return num(ts.year, 4)
    if key == "YYY":
        return num(ts.year % 1000, 3)
    if key == "YY":
        return num(ts.year % 100, 2)
    if key == "Y":
        return num(ts.year % 10, 1)
    if key == "IYYY":
        return num(iso_year, 4)
    if key == "IYY":
        return num(iso_year % 1000, 3)
    if key == "IY":
        return num(iso_year % 100, 2)
    if key == "I":
        return num(iso_year % 10, 1)
    month = _MONTHS[ts.month - 1]
    day_name = _DAYS[ts.isoweekday() % 7]
    if key == "MONTH":
        return word(month.upper(), 9)
    if key == "Month":
        return word(month, 9)
    if key == "month":
        return word(month.lower(), 9)
    if key == "MON":
        return month[:3].upper(), None
    if key == "Mon":
        return month[:3], None
    if key == "mon":
        return month[:3].lower(), None
    if key == "MM":
        return num(ts.month, 2)
    if key == "DAY":
        return word(day_name.upper(), 9)
    if key == "Day":
        return word(day_name, 9)
    if key == "day":
        return word(day_name.lower(), 9)
    if key == "DY":
        return day_name[:3].upper(), None
    if key == "Dy":
        return day_name[:3], None
    if key == "dy":
        return day_name[:3].lower(), None
    day_of_year = ts.timetuple().tm_yday
    if key == "DDD":
        return num(day_of_year, 3)
    if key == "IDDD":
        return num((iso_week - 1) * 7 + iso_day, 3)
    if key == "DD":
        return num(ts.day, 2)
    if key == "D":
        return num(ts.isoweekday() % 7 + 1, 1)
    if key == "ID":
        return num(iso_day, 1)
    if key == "W":
        return num((ts.day - 1) // 7 + 1, 1)
    if key == "WW":
        return num((day_of_year - 1) // 7 + 1, 2)
    if key == "IW":
        return num(iso_week, 2)
    if key == "CC":
        return num((ts.year + 99) // 100, 2)
    if key == "J":
        return num(ts.toordinal() + 1721425, 1)
    if key == "Q":
        return num((ts.month - 1) // 3 + 1, 1)
    if key in ("RM", "rm"):
        text = _roman(ts.month)
        text = text if key == "RM" else text.lower()
        return word(text, 4)
    raise errors.InternalError(f"unhandled to_char keyword {key}")


def to_char_datetime(value: dt.date, template: str) -> str:
    """``to_char(timestamp|date, template)``."""
    ts = value if isinstance(value, dt.datetime) else dt.datetime(value.year, value.month, value.day)
    out: list[str] = []
    i = 0
    fill = True
    n = len(template)
    while i < n:
        if template.startswith("FM", i):
            fill = False
            i += 2
            continue
        ch = template[i]
        if ch == '"':
            end = i + 1
            literal = []
            while end < n and template[end] != '"':
                if template[end] == "\\" and end + 1 < n:
                    end += 1
                literal.append(template[end])
                end += 1
            out.append("".join(literal))
            i = end + 1
            continue
        if ch == "\\" and i + 1 < n:
            out.append(template[i + 1])
            i += 2
            continue
        for key in _DATE_KEYWORDS:
            if template.startswith(key, i):
                text, number = _date_field(key, ts, fill)
                i += len(key)
                if number is not None and template[i : i + 2] in ("TH", "th"):
                    text += _ordinal(number, template[i] == "T")
                    i += 2
                out.append(text)
                break
        else:
            out.append(ch)
            i += 1
        fill = True
    return "".join(out)


# --- numbers: a port of PostgreSQL's NUM_processor (to_char direction) -------------------

_NUMBER_KEYWORDS = ("FM", "fm", "MI", "mi", "PL", "pl", "SG", "sg", "PR", "pr", "S", "s", "9", "0", ".", "D", "d", ",", "G", "g")
_UNSUPPORTED_NUMBER_KEYWORDS = ("EEEE", "eeee", "RN", "rn", "TH", "th", "V", "v", "L", "l", "B", "b", "C", "c", "E", "e")


class _NumberTemplate:
    """A parsed number template (PostgreSQL's ``NUMDesc``)."""

    def __init__(self, template: str) -> None:
        self.nodes: list[str] = []  # keywords upper-cased, or "\x00" + literal text
        self.pre = self.post = 0
        self.decimal = self.zero = self.fill = self.lsign = False
        self.minus = self.plus = self.bracket = False
        self.lsign_post = False
        self.pre_lsign_num = 0
        self.zero_start = self.zero_end = 0
        i = 0
        while i < len(template):
            if template[i] == '"':
                end = template.find('"', i + 1)
                end = len(template) if end < 0 else end
                self.nodes.append("\x00" + template[i + 1 : end])
                i = end + 1
                continue
            if template[i] == "\\" and i + 1 < len(template):
                self.nodes.append("\x00" + template[i + 1])
                i += 2
                continue
            for key in _UNSUPPORTED_NUMBER_KEYWORDS:
                if template.startswith(key, i) and not any(
                    template.startswith(k, i) for k in _NUMBER_KEYWORDS if len(k) >= len(key)
                ):
                    raise errors.not_supported(f'the to_char number template pattern "{key}"')
            for key in _NUMBER_KEYWORDS:
                if template.startswith(key, i):
                    self._add(key.upper())
                    i += len(key)
                    break
            else:
                self.nodes.append("\x00" + template[i])
                i += 1

    def _error(self, message: str) -> errors.Error:
        return errors.SqlSyntaxError(message)

    def _add(self, key: str) -> None:
        if key in ("9", "0") and self.bracket:
            raise self._error(f'"{key}" must be ahead of "PR"')
        if key == "9":
            if self.decimal:
                self.post += 1
            else:
                self.pre += 1
        elif key == "0":
            if not self.zero and not self.decimal:
                self.zero = True
                self.zero_start = self.pre + 1
            if self.decimal:
                self.post += 1
            else:
                self.pre += 1
            self.zero_end = self.pre + self.post
        elif key in (".", "D"):
            if self.decimal:
                raise self._error("multiple decimal points")
            self.decimal = True
            key = "."
        elif key == "FM":
            self.fill = True
            return
        elif key == "S":
            if self.lsign:
                raise self._error('cannot use "S" twice')
            if self.plus or self.minus or self.bracket:
                raise self._error('cannot use "S" and "PL"/"MI"/"SG"/"PR" together')
            if not self.decimal:
                self.lsign = True
                self.pre_lsign_num = self.pre
            elif not self.lsign:
                self.lsign = True
                self.lsign_post = True
        elif key in ("MI", "PL", "SG"):
            if self.lsign:
                raise self._error(f'cannot use "S" and "{key}" together')
            self.minus = self.minus or key in ("MI", "SG")
            self.plus = self.plus or key in ("PL", "SG")
        elif key == "PR":
            if self.lsign or self.plus or self.minus:
                raise self._error('cannot use "PR" and "S"/"PL"/"MI"/"SG" together')
            self.bracket = True
        elif key == "G":
            key = ","
        self.nodes.append(key)


def to_char_number(value: int | float | Decimal, template: str) -> str:
    """``to_char(number, template)``: PostgreSQL's number formatting."""
    t = _NumberTemplate(template)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            text = "#" * t.pre + ("." + "#" * t.post if t.decimal or t.post else "")
            number = None
        else:
            number = Decimal(value).quantize(
                Decimal(1).scaleb(-t.post), rounding=ROUND_HALF_EVEN, context=numeric.CONTEXT
            )
    else:
        number = numeric.round_to(Decimal(value), t.post)
    if number is not None:
        number = numeric.normalize(number)
        text = format(number, "f")
    sign = "-" if text.startswith("-") else "+"
    if isinstance(value, float) and value < 0:
        sign = "-"  # printf keeps the sign of a float that rounds to zero ("-0")
    digits = text.lstrip("-")
    pre_len = digits.index(".") if "." in digits else len(digits)
    out_pre_spaces = 0
    if pre_len < t.pre:
        out_pre_spaces = t.pre - pre_len
    elif pre_len > t.pre:
        digits = "#" * t.pre + "." + "#" * t.post
    return _NumberWriter(t, digits, sign, out_pre_spaces).run()


class _NumberWriter:
    """The to_char half of PostgreSQL's ``NUM_processor``, step for step."""

    def __init__(self, t: _NumberTemplate, number: str, sign: str, out_pre_spaces: int) -> None:
        self.t = t
        self.number = number + "\x00"  # the C string's terminator, which pointers reach
        self.pos = 0  # number_p
        self.sign = sign
        self.out: list[str] = []
        self.num_in = False
        self.num_curr = 0
        self.out_pre_spaces = out_pre_spaces
        self.bracket = t.bracket
        self.lsign_post = t.lsign_post
        self.zero_start = t.zero_start - 1 if t.zero_start else 0
        if t.plus or t.minus:
            self.sign_wrote = not (t.plus and not t.minus)
        else:
            if sign != "-" and t.fill:
                self.bracket = False
            self.sign_wrote = sign == "+" and t.fill and not t.lsign
            if t.lsign and not t.lsign_post and t.pre == t.pre_lsign_num:
                self.lsign_post = True
        self.num_count = t.post + t.pre - 1
        self.last_relevant: int | None = None
        if t.fill and t.decimal:
            self.last_relevant = self._last_relevant_decimal()
            if self.last_relevant is not None and t.zero_end > self.out_pre_spaces:
                last_zero = min(len(number) - 1, t.zero_end - self.out_pre_spaces)
                if self.last_relevant < last_zero:
                    self.last_relevant = last_zero
        if not self.sign_wrote and self.out_pre_spaces == 0:
            self.num_count += 1

    def _last_relevant_decimal(self) -> int | None:
        point = self.number.find(".")
        if point < 0:
            return None
        result = point
        for k in range(point + 1, len(self.number) - 1):
            if self.number[k] != "0":
                result = k
        return result

    def _predec_space(self) -> bool:
        return (
            not self.t.zero and self.pos == 0 and self.number[0] == "0" and self.t.post != 0
        )

    def _at_point(self) -> bool:
        return self.last_relevant is not None and self.number[self.last_relevant] == "."

    def run(self) -> str:
        t = self.t
        for node in t.nodes:
            if node.startswith("\x00"):
                self.out.append(node[1:])
            elif node in ("9", "0", "."):
                self._numpart(node)
            elif node == ",":
                if self.num_in:
                    self.out.append(",")
                elif not t.fill:
                    self.out.append(" ")
            elif node == "MI":
                if self.sign == "-":
                    self.out.append("-")
                elif not t.fill:
                    self.out.append(" ")
            elif node == "PL":
                if self.sign == "+":
                    self.out.append("+")
                elif not t.fill:
                    self.out.append(" ")
            elif node == "SG":
                self.out.append(self.sign)
        return "".join(self.out)

    def _numpart(self, node: str) -> None:
        t = self.t
        if not self.sign_wrote and (
            self.num_curr >= self.out_pre_spaces or (t.zero and self.zero_start == self.num_curr)
        ) and (not self._predec_space() or self._at_point()):
            if t.lsign:
                if not self.lsign_post:
                    self.out.append(self.sign)
                    self.sign_wrote = True
            elif self.bracket:
                self.out.append(" " if self.sign == "+" else "<")
                self.sign_wrote = True
            elif self.sign == "+":
                if not t.fill:
                    self.out.append(" ")
                self.sign_wrote = True
            else:
                self.out.append("-")
                self.sign_wrote = True
        if self.num_curr < self.out_pre_spaces and (self.zero_start > self.num_curr or not t.zero):
            if not t.fill:
                self.out.append(" ")
        elif t.zero and self.num_curr < self.out_pre_spaces and self.zero_start <= self.num_curr:
            self.out.append("0")
            self.num_in = True
        else:
            ch = self.number[self.pos]
            if ch == ".":
                if not self._at_point() or t.fill:
                    self.out.append(".")
            elif self.last_relevant is not None and self.pos > self.last_relevant and node != "0":
                pass
            elif self._predec_space():
                if not t.fill:
                    self.out.append(" ")
                elif self._at_point():
                    self.out.append("0")
            elif ch != "\x00":
                self.out.append(ch)
                self.num_in = True
            if ch != "\x00":
                self.pos += 1
        end = self.num_count + (1 if self.out_pre_spaces else 0) + (1 if t.decimal else 0)
        if self.last_relevant is not None and self.last_relevant == self.pos:
            end = self.num_curr
        if self.num_curr + 1 == end:
            if self.sign_wrote and self.bracket:
                self.out.append(" " if self.sign == "+" else ">")
            elif t.lsign and self.lsign_post:
                self.out.append(self.sign)
        self.num_curr += 1
