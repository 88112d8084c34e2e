r"""The SQL prompt behind ``offsetdb sql``: statement splitting, result tables, meta commands.

Three pieces, each usable on its own:

- :class:`StatementSplitter` cuts SQL text, fed a line at a time, into statements at the
  semicolons that are outside quotes, comments and dollar-quoted bodies, as psql does;
- :func:`format_table` renders rows as psql's aligned format (centred headers, a ``-+-``
  separator, numbers right-aligned, NULL as an empty cell, booleans as ``t``/``f``);
- :class:`Session` drives one connection: it runs statements and backslash commands
  (``\d``, ``\d TABLE``, ``\timing``, ``\?``, ``\q``) and prints their output.
  :func:`run_script` feeds it a script and stops at the first error (psql with
  ``ON_ERROR_STOP=1``); :func:`run_interactive` is the prompt with readline history.

Errors print to the error stream as ``ERROR 23505: message``, followed by a ``LINE n:``
line that quotes the input line where the failing statement starts (n counts lines of the
script or ``-c`` text; at the prompt the line is only shown for multi-line statements).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import fnmatch
import math
import os
import re
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import IO, TYPE_CHECKING, Any, Protocol

from offsetdb import errors

if TYPE_CHECKING:
    from types import ModuleType

PROMPT = "offsetdb=> "
CONTINUATION_PROMPT = "offsetdb-> "
HISTORY_FILE = "~/.offsetdb_history"
HISTORY_LENGTH = 2000

HELP_TEXT = """\
General
  \\q                quit (Ctrl-D at an empty prompt does the same)
  \\? or \\h          this help

Informational
  \\d                list tables
  \\dt [PATTERN]     list tables (matching PATTERN, with * and ? wildcards)
  \\d NAME           describe table NAME: columns, types, nullability, defaults, keys

Query buffer
  \\r                reset (clear) the query buffer

Formatting
  \\timing [on|off]  toggle (or set) printing of each statement's execution time

Change data capture
  SUBSCRIBE [TO] t[, u] [WITHOUT SNAPSHOT] [FROM OFFSET n];
                    print t's rows, then every committed change to it, until Ctrl-C

Statements end with a semicolon and may span several lines. The prompt runs in
autocommit mode: BEGIN ... COMMIT (or ROLLBACK) groups statements into a transaction.
Ctrl-C clears the line being typed.
"""


# --- statement splitting --------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """One complete statement, ready to execute.

    ``text`` is the statement without its ending semicolon; ``line`` is the input line
    (1-based) of its first character that is neither blank nor in a comment.
    """

    text: str
    line: int


class _State(Enum):
    NORMAL = "normal"
    SINGLE_QUOTE = "'"
    DOUBLE_QUOTE = '"'
    LINE_COMMENT = "--"
    BLOCK_COMMENT = "/*"
    DOLLAR_QUOTE = "$"


def _is_ident_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class StatementSplitter:
    """Splits SQL text into statements at top-level semicolons, a chunk at a time.

    Understands the lexical forms that may contain a semicolon or a quote without ending
    anything: ``'strings'`` (with ``''`` inside, and ``E'...'`` with backslash escapes),
    ``"identifiers"``, ``-- line comments``, nested ``/* block comments */`` and
    PostgreSQL's ``$tag$ dollar quoting $tag$``. A statement made only of comments and
    whitespace is dropped.

    >>> s = StatementSplitter()
    >>> [st.text for st in s.feed("SELECT ';' AS a; SELECT 2")]
    ["SELECT ';' AS a"]
    >>> s.is_empty
    False
    >>> [st.text for st in s.finish()]
    ['SELECT 2']
    """

    def __init__(self) -> None:
        self._line = 1  # input line of _text[_pos]
        self._clear()

    def _clear(self) -> None:
        self._text = ""  # the unfinished statement so far
        self._pos = 0  # where scanning resumes in _text
        self._state = _State.NORMAL
        self._depth = 0  # nesting of block comments
        self._escapes = False  # inside an E'...' string, where backslash escapes
        self._tag = ""  # the $tag$ that closes the current dollar quote
        self._start = -1  # index of the statement's first content character, -1: none yet
        self._start_line = self._line

    @property
    def is_empty(self) -> bool:
        """True when nothing but whitespace and comments is buffered."""
        return self._start < 0 and self._state in (
            _State.NORMAL,
            _State.LINE_COMMENT,
            _State.BLOCK_COMMENT,
        )

    @property
    def in_text(self) -> bool:
        """Tell whether scanning is inside a string, quoted identifier, comment or dollar quote.

        There a backslash at the start of a line is text rather than a meta command.
        """
        return self._state is not _State.NORMAL

    @property
    def pending(self) -> str:
        """The buffered text of the unfinished statement."""
        return self._text

    def reset(self) -> None:
        """Discard the unfinished statement; line numbering goes on."""
        self._line += self._text.count("\n", self._pos)
        self._clear()

    def skip_line(self) -> None:
        """Count one input line that is not SQL (a meta command) in the line numbering."""
        self._line += 1

    def feed(self, chunk: str) -> list[Statement]:
        """Add text; return the statements it completes, in order."""
        self._text += chunk
        return self._scan(final=False)

    def finish(self) -> list[Statement]:
        """End of input: return the unterminated last statement, if it has content."""
        done = self._scan(final=True)
        if self._start >= 0:
            done.append(Statement(self._text[self._start :].strip(), self._start_line))
        self.reset()
        return done

    def _begin_content(self, i: int) -> None:
        if self._start < 0:
            self._start = i
            self._start_line = self._line

    def _scan(self, final: bool) -> list[Statement]:  # noqa: C901 - one state machine
        done: list[Statement] = []
        text = self._text
        i = self._pos
        n = len(text)
        while i < n:
            state = self._state
            ch = text[i]
            if state is _State.NORMAL:
                nxt = text[i + 1] if i + 1 < n else ""
                if ch in "-/$" and not nxt and not final:
                    break  # a two-character token may continue in the next chunk
                if ch == "\n":
                    self._line += 1
                elif ch == ";":
                    if self._start >= 0:
                        done.append(Statement(text[self._start : i].strip(), self._start_line))
                    text = text[i + 1 :]
                    n = len(text)
                    i = 0
                    self._start = -1
                    continue
                elif ch == "-" and nxt == "-":
                    self._state = _State.LINE_COMMENT
                    i += 2
                    continue
                elif ch == "/" and nxt == "*":
                    self._state = _State.BLOCK_COMMENT
                    self._depth = 1
                    i += 2
                    continue
                elif ch == "'":
                    self._begin_content(i)
                    prev = text[i - 1] if i > 0 else ""
                    before = text[i - 2] if i > 1 else ""
                    self._escapes = prev in "eE" and prev != "" and not _is_ident_char(before)
                    self._state = _State.SINGLE_QUOTE
                elif ch == '"':
                    self._begin_content(i)
                    self._state = _State.DOUBLE_QUOTE
                elif ch == "$" and (i == 0 or not _is_ident_char(text[i - 1])):
                    self._begin_content(i)
                    j = i + 1
                    while j < n and _is_ident_char(text[j]):
                        j += 1
                    tag_ok = j == i + 1 or not text[i + 1].isdigit()
                    if j < n and text[j] == "$" and tag_ok:
                        self._tag = text[i : j + 1]
                        self._state = _State.DOLLAR_QUOTE
                        i = j + 1
                        continue
                    if j >= n and not final:
                        break  # the tag may end in the next chunk
                elif not ch.isspace():
                    self._begin_content(i)
                i += 1
            elif state is _State.LINE_COMMENT:
                j = text.find("\n", i)
                if j < 0:
                    i = n
                else:
                    self._state = _State.NORMAL
                    i = j  # the newline is counted in NORMAL
            elif state is _State.BLOCK_COMMENT:
                nxt = text[i + 1] if i + 1 < n else ""
                if ch in "/*" and not nxt and not final:
                    break
                if ch == "\n":
                    self._line += 1
                elif ch == "/" and nxt == "*":
                    self._depth += 1
                    i += 1
                elif ch == "*" and nxt == "/":
                    self._depth -= 1
                    i += 1
                    if self._depth == 0:
                        self._state = _State.NORMAL
                i += 1
            elif state is _State.DOLLAR_QUOTE:
                j = text.find(self._tag, i)
                end = n if j < 0 else j + len(self._tag)
                if j < 0 and not final:
                    # keep the tail that could be the start of the closing tag
                    end = max(i, n - len(self._tag) + 1)
                self._line += text.count("\n", i, end)
                i = end
                if j >= 0:
                    self._state = _State.NORMAL
                elif not final:
                    break
            else:  # a quoted string or identifier
                quote = state.value
                if self._escapes and ch == "\\":
                    if i + 1 >= n and not final:
                        break
                    if i + 1 < n and text[i + 1] == "\n":
                        self._line += 1
                    i += 2
                    continue
                if ch == "\n":
                    self._line += 1
                elif ch == quote:
                    if i + 1 >= n and not final:
                        break  # a doubled quote may follow in the next chunk
                    if i + 1 < n and text[i + 1] == quote:
                        i += 2
                        continue
                    self._state = _State.NORMAL
                i += 1
        if self._start > 0 or (self._start < 0 and self._state is _State.NORMAL and i > 0):
            # drop what no statement needs any more, keeping the scan position valid
            cut = self._start if self._start >= 0 else i
            text = text[cut:]
            i -= cut
            if self._start >= 0:
                self._start = 0
        self._text = text
        self._pos = i
        return done


# --- rendering values and tables --------------------------------------------------------


def render_value(value: object) -> str:
    r"""Render a value as psql prints it: NULL empty, booleans t/f, bytea as ``\x...``.

    >>> [render_value(v) for v in (None, True, 2.0, 0.1, decimal.Decimal("1E+2"))]
    ['', 't', '2', '0.1', '100']
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    if isinstance(value, decimal.Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    return str(value)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool)


def display_width(text: str) -> int:
    """Count the terminal columns ``text`` occupies.

    Wide East Asian characters count two, combining marks none.
    """
    if text.isascii():
        return len(text)
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def _pad(text: str, width: int, align: str) -> str:
    gap = width - display_width(text)
    if align == "right":
        return " " * gap + text
    if align == "center":
        left = gap // 2
        return " " * left + text + " " * (gap - left)
    return text + " " * gap


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    title: str | None = None,
    footer: bool = True,
) -> str:
    """Render ``rows`` under ``headers`` in psql's aligned format, ending with a newline.

    Columns whose non-NULL values are all numbers are right-aligned, others left-aligned.
    A value with newlines spans several lines, marked ``+`` at the column's right edge.
    ``footer`` adds the ``(N rows)`` line; ``title`` is centred above the table.

    >>> print(format_table(["id", "name"], [(1, "alice"), (22, None)]), end="")
     id | name
    ----+-------
      1 | alice
     22 |
    (2 rows)
    """
    ncols = len(headers)
    cells = [[render_value(v).split("\n") for v in row] for row in rows]
    aligns = []
    for c in range(ncols):
        values = [row[c] for row in rows if row[c] is not None]
        aligns.append("right" if values and all(_is_number(v) for v in values) else "left")
    widths = [display_width(h) for h in headers]
    for row_cells in cells:
        for c, lines in enumerate(row_cells):
            widths[c] = max(widths[c], *(display_width(part) for part in lines))

    out: list[str] = []
    if title is not None:
        total = sum(widths) + 3 * ncols - 1
        out.append(_pad(title, max(total, display_width(title)), "center").rstrip())
    out.append(
        "|".join(f" {_pad(h, widths[c], 'center')} " for c, h in enumerate(headers)).rstrip()
    )
    out.append("+".join("-" * (w + 2) for w in widths))
    for row_cells in cells:
        height = max((len(lines) for lines in row_cells), default=1)
        for k in range(height):
            parts = []
            for c, lines in enumerate(row_cells):
                part = lines[k] if k < len(lines) else ""
                more = "+" if k < len(lines) - 1 else " "
                parts.append(f" {_pad(part, widths[c], aligns[c])}{more}")
            out.append("|".join(parts).rstrip())
    if footer:
        out.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    return "\n".join(out) + "\n"


# --- the session ------------------------------------------------------------------------


class Cursor(Protocol):
    """The part of a PEP 249 cursor the prompt uses."""

    @property
    def description(self) -> Sequence[Sequence[Any]] | None:
        """Result columns as 7-tuples (name first), None for statements without rows."""
        ...

    @property
    def rowcount(self) -> int:
        """Rows the last statement produced or touched, -1 when unknown."""
        ...

    def execute(self, sql: str, params: Any = None) -> Any:
        """Run one statement."""
        ...

    def fetchall(self) -> Sequence[Sequence[Any]]:
        """Return the remaining rows of the result."""
        ...

    def close(self) -> None:
        """Release the cursor."""
        ...


class Connection(Protocol):
    """The part of an offsetdb connection the prompt uses."""

    def cursor(self) -> Cursor:
        """Open a new cursor."""
        ...

    def list_tables(self) -> list[str]:
        """Names of the tables, sorted."""
        ...

    def describe_table(self, name: str) -> Sequence[Any]:
        """Columns of table ``name`` as ``offsetdb.ColumnInfo`` records."""
        ...

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back)."""
        ...

    def subscribe(
        self, tables: list[str], *, from_offset: int | None, snapshot: bool
    ) -> Any:
        """Committed changes of ``tables`` (``conn.subscribe``): iterable, with ``close()``."""
        ...


class Outcome(Enum):
    """What happened to one line of input."""

    OK = "ok"
    ERROR = "error"
    QUIT = "quit"


_SUBSCRIBE = re.compile(
    r"^\s*SUBSCRIBE\s+(?:TO\s+)?(?P<tables>\"?[A-Za-z_][\w$]*\"?(?:\s*,\s*\"?[A-Za-z_][\w$]*\"?)*)"
    r"(?P<options>(?:\s+.*)?)$",
    re.IGNORECASE | re.DOTALL,
)
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal highlighting in parser messages

_DML_TAGS = {"INSERT": "INSERT 0 {n}", "UPDATE": "UPDATE {n}", "DELETE": "DELETE {n}"}


def _fallback_tag(sql: str, rowcount: int) -> str:
    """Make a command tag from the statement's leading keywords, for a driver without one."""
    words = sql.split()
    head = words[0].upper() if words else ""
    if head in _DML_TAGS:
        return _DML_TAGS[head].format(n=max(rowcount, 0))
    if head in ("CREATE", "DROP", "ALTER") and len(words) > 1:
        return f"{head} {words[1].upper()}"
    return head


class Session:
    """Runs statements and meta commands on one connection and prints what they return.

    Feed it input a line at a time with :meth:`feed_line`, then call :meth:`finish` at the
    end of the input. Results go to ``out``; errors go to ``err`` as ``ERROR code: msg``.
    """

    def __init__(
        self,
        conn: Connection,
        out: IO[str],
        err: IO[str],
        *,
        timing: bool = False,
        interactive: bool = False,
    ) -> None:
        self.conn = conn
        self.out = out
        self.err = err
        self.timing = timing
        self.interactive = interactive
        self.splitter = StatementSplitter()
        self.quit_requested = False  # set by \q: the caller should stop reading input
        self._lines: list[str] = []  # the current source's lines, for LINE n: context

    @property
    def idle(self) -> bool:
        """True when no statement is half typed (the primary prompt applies)."""
        return self.splitter.is_empty

    def start_source(self) -> None:
        """Begin a new input (a script, a ``-c`` string): line numbers restart at 1."""
        self.splitter = StatementSplitter()
        self._lines = []

    def reset_buffer(self) -> None:
        r"""Discard the statement being typed (Ctrl-C, ``\r``)."""
        self.splitter.reset()

    def feed_line(self, line: str) -> Outcome:
        """Process one line of input (without its newline); run what it completes."""
        self._lines.append(line)
        if not self.splitter.in_text and line.lstrip().startswith("\\"):
            self.splitter.skip_line()
            return self.meta(line.strip())
        outcome = Outcome.OK
        for statement in self.splitter.feed(line + "\n"):
            if self.execute(statement) is Outcome.ERROR:
                outcome = Outcome.ERROR
                if not self.interactive:  # a script stops at its first error
                    self.splitter.reset()
                    break
        return outcome

    def finish(self) -> Outcome:
        """End of input: run the last statement even without its semicolon."""
        for statement in self.splitter.finish():
            if self.execute(statement) is Outcome.ERROR:
                return Outcome.ERROR
        return Outcome.OK

    def execute(self, statement: Statement) -> Outcome:
        """Run one SQL statement and print its rows or its command tag."""
        if _SUBSCRIBE.match(statement.text):
            return self.subscribe(statement)
        start = time.perf_counter()
        try:
            cursor = self.conn.cursor()
            try:
                cursor.execute(statement.text)
                description = cursor.description
                rows = cursor.fetchall() if description is not None else None
                tag = getattr(cursor, "statusmessage", None) or _fallback_tag(
                    statement.text, cursor.rowcount
                )
            finally:
                cursor.close()
        except errors.Error as exc:
            self.report_error(exc, statement)
            return Outcome.ERROR
        except Exception as exc:  # noqa: BLE001 - an engine bug must not kill the prompt
            self.report_error(errors.InternalError(f"{type(exc).__name__}: {exc}"), statement)
            return Outcome.ERROR
        elapsed = time.perf_counter() - start
        if description is not None and rows is not None:
            headers = [str(column[0]) for column in description]
            self.out.write(format_table(headers, rows))
            self.out.write("\n")
        else:
            self.out.write(f"{tag}\n")
        if self.timing:
            self.out.write(f"Time: {elapsed * 1000:.3f} ms\n")
        self.out.flush()
        return Outcome.OK

    def subscribe(self, statement: Statement) -> Outcome:
        """``SUBSCRIBE [TO] t[, u ...] [WITHOUT SNAPSHOT] [FROM OFFSET n]``: print changes as they commit.

        First the tables' rows at the present offset (op ``r``; not WITHOUT SNAPSHOT, nor
        FROM OFFSET, which resumes after offset n), then every committed change, one
        line each, until Ctrl-C (SIGINT).
        """
        from offsetdb.changelines import PROMPT_HEADER, prompt_lines

        match = _SUBSCRIBE.match(statement.text)
        assert match is not None
        tables = [t.strip().strip('"') for t in match["tables"].split(",") if t.strip()]
        options = " ".join((match["options"] or "").upper().split())
        snapshot, from_offset = True, None
        for option in re.findall(r"WITHOUT SNAPSHOT|WITH SNAPSHOT|FROM OFFSET -?\d+", options):
            if option == "WITHOUT SNAPSHOT":
                snapshot = False
            elif option.startswith("FROM OFFSET"):
                from_offset = int(option.rsplit(" ", 1)[1])
        leftover = re.sub(r"WITHOUT SNAPSHOT|WITH SNAPSHOT|FROM OFFSET -?\d+", "", options).strip()
        if leftover:
            self.report_error(
                errors.SqlSyntaxError(
                    f"SUBSCRIBE does not take {leftover!r}; it takes [WITHOUT SNAPSHOT] [FROM OFFSET n]"
                ),
                statement,
            )
            return Outcome.ERROR
        subscription = None
        try:
            subscription = self.conn.subscribe(tables, from_offset=from_offset, snapshot=snapshot)
            self.out.write(f"SUBSCRIBE to {', '.join(tables)}: changes as they commit; Ctrl-C to stop\n")
            self.out.write(PROMPT_HEADER + "\n")
            self.out.flush()
            for item in subscription:
                for line in prompt_lines(item):
                    self.out.write(line + "\n")
                self.out.flush()
        except KeyboardInterrupt:
            position = subscription.position if subscription is not None else None
            where = f" (delivered up to offset {position})" if position is not None else ""
            self.out.write(f"SUBSCRIBE stopped{where}\n")
            self.out.flush()
        except errors.Error as exc:
            self.report_error(exc, statement)
            return Outcome.ERROR
        finally:
            if subscription is not None:
                subscription.close()
        return Outcome.OK

    def report_error(self, exc: errors.Error, statement: Statement | None = None) -> None:
        """Print ``ERROR code: message`` and, for a statement, the line where it starts."""
        self.out.flush()
        sqlstate = getattr(exc, "sqlstate", None) or "XX000"
        message = _ANSI_ESCAPE.sub("", getattr(exc, "message", None) or str(exc))
        self.err.write(f"ERROR {sqlstate}: {message}\n")
        if statement is not None and 0 < statement.line <= len(self._lines):
            # a one-line -c command or a line typed at the prompt is context enough
            several_lines = "\n" in statement.text or len(self._lines) > 1
            if several_lines and not (self.interactive and "\n" not in statement.text):
                self.err.write(f"LINE {statement.line}: {self._lines[statement.line - 1]}\n")
        self.err.flush()

    # --- meta commands ------------------------------------------------------------------

    def meta(self, command: str) -> Outcome:
        r"""Run a backslash command such as ``\d t`` or ``\timing off``."""
        name, _, rest = command.partition(" ")
        arg = rest.strip()
        try:
            if name == "\\q":
                self.quit_requested = True
                return Outcome.QUIT
            if name in ("\\?", "\\h", "\\help"):
                self.out.write(HELP_TEXT)
            elif name in ("\\d", "\\d+") and arg:
                self.describe(arg)
            elif name in ("\\d", "\\d+", "\\dt", "\\dt+"):
                self.list_tables(arg or "*")
            elif name == "\\timing":
                return self._set_timing(arg)
            elif name == "\\r":
                self.splitter.reset()
                self.out.write("Query buffer reset (cleared).\n")
            else:
                self.err.write(f"invalid command {name}\nTry \\? for help.\n")
                self.err.flush()
                return Outcome.ERROR
        except errors.Error as exc:
            self.report_error(exc)
            return Outcome.ERROR
        self.out.flush()
        return Outcome.OK

    def _set_timing(self, arg: str) -> Outcome:
        value = arg.lower()
        if value in ("on", "true", "1"):
            self.timing = True
        elif value in ("off", "false", "0"):
            self.timing = False
        elif value == "":
            self.timing = not self.timing
        else:
            self.err.write(f'\\timing: unrecognized value "{arg}": expected on or off\n')
            self.err.flush()
            return Outcome.ERROR
        self.out.write(f"Timing is {'on' if self.timing else 'off'}.\n")
        self.out.flush()
        return Outcome.OK

    def list_tables(self, pattern: str = "*") -> None:
        r"""List the tables of the database (``\d``), or those matching a pattern (``\dt P``).

        In a pattern ``*`` and ``?`` are wildcards, as in psql.
        """
        names = [n for n in self.conn.list_tables() if fnmatch.fnmatchcase(n, pattern)]
        if not names:
            found = "any tables" if pattern == "*" else f'any table named "{pattern}"'
            self.out.write(f"Did not find {found}.\n")
            return
        self.out.write(format_table(["Name"], [(n,) for n in names], title="List of tables"))
        self.out.write("\n")

    def describe(self, table: str) -> None:
        r"""Describe a table (``\d TABLE``): columns, types, nullability, defaults, keys."""
        # psql's rule: a quoted name is exact, an unquoted one folds to lower case
        name = (
            table[1:-1].replace('""', '"')
            if table.startswith('"') and table.endswith('"')
            else table.lower()
        )
        columns = self.conn.describe_table(name)
        rows = []
        for col in columns:
            key = "primary key" if col.primary_key else ("unique" if col.unique else "")
            rows.append(
                (col.name, col.type, "" if col.nullable else "not null", col.default or "", key)
            )
        headers = ["Column", "Type", "Nullable", "Default", "Key"]
        self.out.write(format_table(headers, rows, title=f'Table "{name}"', footer=False))
        self.out.write("\n")


# --- drivers of a session ---------------------------------------------------------------


def run_script(session: Session, lines: Iterable[str]) -> int:
    """Run a script, line by line, stopping at the first error; return the exit status."""
    session.start_source()
    for raw in lines:
        outcome = session.feed_line(raw.rstrip("\r\n"))
        if outcome is Outcome.QUIT:
            return 0
        if outcome is Outcome.ERROR:
            return 1
    return 0 if session.finish() is Outcome.OK else 1


def _load_readline(history_path: str) -> ModuleType | None:
    try:
        import readline
    except ImportError:  # not every Python is built with it
        return None
    readline.set_auto_history(False)
    readline.set_history_length(HISTORY_LENGTH)
    with contextlib.suppress(OSError):  # first run, or an unreadable file: no history
        readline.read_history_file(history_path)
    return readline


def _remember(readline: ModuleType | None, entry: str) -> None:
    """Add a finished entry to the history.

    A multi-line statement becomes one line, unless a ``--`` comment would then swallow
    the rest of it.
    """
    if readline is None or not entry.strip():
        return
    lines = entry.split("\n")
    if len(lines) > 1 and "--" in entry:
        for line in lines:
            if line.strip():
                readline.add_history(line)
        return
    readline.add_history(" ".join(line.strip() for line in lines))


def run_interactive(session: Session, *, banner: str, history_path: str | None = None) -> int:
    r"""Run the interactive prompt: read lines until ``\q`` or Ctrl-D; return the exit status.

    Ctrl-C while typing discards the statement being typed; Ctrl-C while a statement runs
    abandons waiting for it. History is kept in ``~/.offsetdb_history``.
    """
    path = os.path.expanduser(history_path or HISTORY_FILE)
    readline = _load_readline(path)
    session.start_source()
    session.out.write(banner)
    session.out.flush()
    entry: list[str] = []
    try:
        while True:
            prompt = PROMPT if session.idle else CONTINUATION_PROMPT
            try:
                line = input(prompt)
            except EOFError:
                session.out.write("\n")
                break
            except KeyboardInterrupt:
                session.out.write("\n")
                session.reset_buffer()
                entry.clear()
                continue
            entry.append(line)
            try:
                outcome = session.feed_line(line)
            except KeyboardInterrupt:
                session.out.flush()
                session.err.write("Interrupted.\n")
                session.reset_buffer()
                outcome = Outcome.OK
            if session.idle:
                _remember(readline, "\n".join(entry))
                entry.clear()
            if outcome is Outcome.QUIT:
                break
    finally:
        if readline is not None:
            try:
                readline.write_history_file(path)
            except OSError as exc:
                session.err.write(f"could not save history to {path}: {exc.strerror}\n")
        session.out.flush()
    return 0
