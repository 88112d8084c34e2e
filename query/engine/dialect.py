"""The SQL dialect offsetdb parses: sqlglot's PostgreSQL, read as PostgreSQL means it.

sqlglot's parser normalizes some constructs into portable nodes, and a few of those
normalizations lose PostgreSQL's meaning: ``INTERVAL '1 day 12:00:00'`` keeps only
``1 day``, ``to_char``'s template is rewritten into
strftime codes (so ``FMDay`` can no longer be told from ``Day``), ``date_part`` becomes
``EXTRACT`` (which returns numeric where ``date_part`` returns double precision), and
``every`` is not known as the aggregate it is. This dialect keeps those calls as written.
Everything that parses SQL in offsetdb goes through :data:`DIALECT`.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.tokens import TokenType


def _anonymous(name: str) -> Any:
    def build(args: list[exp.Expression]) -> exp.Expression:
        return exp.Anonymous(this=name, expressions=args)

    return build


def _every(args: list[exp.Expression]) -> exp.Expression:
    # every(x) is PostgreSQL's standard-SQL spelling of bool_and(x)
    return exp.LogicalAnd(this=args[0]) if len(args) == 1 else exp.Anonymous(this="every", expressions=args)


# sqlglot declares Parser as a class attribute; a typed alias keeps mypy from objecting.
_PostgresParser: Any = Postgres.Parser


class OffsetdbPostgres(Postgres):
    """PostgreSQL as sqlglot reads it, minus the rewrites that change meaning."""

    class Parser(_PostgresParser):
        """The parser, with PostgreSQL-preserving function builders."""

        FUNCTIONS = {
            **_PostgresParser.FUNCTIONS,
            "TO_CHAR": _anonymous("to_char"),
            "EVERY": _every,
        }
        FUNCTION_PARSERS = {
            k: v for k, v in _PostgresParser.FUNCTION_PARSERS.items() if k != "DATE_PART"
        }

        def _parse_interval(self, require_interval: bool = True, parse_function_unit: bool = True) -> Any:
            # sqlglot sums INTERVAL '1 day' '2 hours' ... into one expression; PostgreSQL
            # has no such syntax (INTERVAL '...' 0.5 is an error there)
            start = self._index
            result = super()._parse_interval(require_interval, parse_function_unit)
            if isinstance(result, exp.Add) and isinstance(result.this, exp.Interval):
                consumed = self._tokens[start : self._index]
                if not any(t.token_type is TokenType.PLUS for t in consumed):
                    self.raise_error("syntax error: one INTERVAL literal takes one string")
            return result

        def _parse_interval_span(self, this: Any, parse_function_unit: bool = True) -> Any:
            # sqlglot splits INTERVAL '1 day 12:00:00' into '1' DAY and drops the rest;
            # PostgreSQL reads the whole string, so it is kept whole.
            if this is None or not this.is_string:
                return super()._parse_interval_span(this, parse_function_unit)
            unit = None
            if self._curr is not None and self._curr.text.upper() in self.dialect.VALID_INTERVAL_UNITS:
                unit = self._parse_var(any_token=True, upper=True)
            return self.expression(exp.Interval(this=this, unit=unit))


DIALECT = OffsetdbPostgres()
