"""From SQL text to prepared statements: splitting, parsing, classifying, caching.

The text is tokenized once with sqlglot's PostgreSQL tokenizer; statements are split at
``;`` tokens (never inside strings or comments), and qmark placeholders are renumbered
as ``$n`` in text order. Transaction control (whose grammar sqlglot only partly knows)
and ``SHOW TABLES`` are recognised from their tokens; everything else is parsed by
sqlglot. Unquoted identifiers are folded to lower case, as PostgreSQL does.
"""

from __future__ import annotations

import functools
import re
from typing import cast

import sqlglot
from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from offsetdb import errors

from .dialect import DIALECT
from .limits import allow_depth, too_complex
from .params import check_text, tag_parameters
from .result import StatementKind
from .sourceddl import is_source_statement, prepare_source_statement
from .statement import Statement
from .validate import (
    check_adjacent_strings,
    check_tokens,
    check_tree,
    group_typed_literals,
    normalize_number_literals,
)

_DIALECT = DIALECT

CACHE_SIZE = 512


def prepare(sql: str) -> list[Statement]:
    """Parse and classify every statement of ``sql`` (cached by text).

    Args:
        sql: one or more statements separated by ``;``.

    Returns:
        The prepared statements, in order (empty statements are skipped).

    Raises:
        SqlSyntaxError: (42601) when the text does not parse.
        NotSupportedError: (0A000) for constructs offsetdb does not implement.

    """
    return list(_prepare_cached(sql))


@functools.lru_cache(maxsize=CACHE_SIZE)
def _prepare_cached(sql: str) -> tuple[Statement, ...]:
    check_text(sql)
    return tuple(_prepare_one(text, tokens) for text, tokens in split_statements(sql))


def split_statements(sql: str) -> list[tuple[str, list[Token]]]:
    """The statements of ``sql`` as (text, tokens), qmarks rewritten as ``$n``."""
    tokens = _tokenize(sql)
    for rewrite in (normalize_number_literals, group_typed_literals):
        rewritten = rewrite(sql, tokens)
        if rewritten != sql:  # positions moved: tokenize the new text
            sql = rewritten
            tokens = _tokenize(sql)
    check_adjacent_strings(sql, tokens)
    out: list[tuple[str, list[Token]]] = []
    current: list[Token] = []
    for token in [*tokens, None]:
        if token is None or token.token_type is TokenType.SEMICOLON:
            if current:
                out.append((_text_of(sql, current), current))
            current = []
        else:
            current.append(token)
    return out


def _tokenize(sql: str) -> list[Token]:
    try:
        return cast(list[Token], _DIALECT.tokenize(sql))
    except sqlglot.errors.TokenError as e:
        raise errors.SqlSyntaxError(str(e)) from None


def _text_of(sql: str, tokens: list[Token]) -> str:
    """The statement's text, with each ``?`` replaced by ``$k`` (k counting from 1)."""
    start = tokens[0].start
    end = tokens[-1].end + 1
    qmarks = [t for t in tokens if t.token_type is TokenType.PLACEHOLDER and t.text == "?"]
    if not qmarks:
        return sql[start:end]
    if any(t.token_type is TokenType.PARAMETER for t in tokens):
        raise errors.ProgrammingError(
            "a statement cannot mix placeholder styles (?, $n, :name)", sqlstate="08P01"
        )
    parts = []
    pos = start
    for n, t in enumerate(qmarks, 1):
        parts.append(sql[pos : t.start])
        # The space keeps sqlglot's PostgreSQL tokenizer from reading "$1,$2" as the
        # start of a dollar-quoted string tagged "1,".
        parts.append(f"${n} ")
        pos = t.end + 1
    parts.append(sql[pos:end])
    return "".join(parts)


ISOLATION_LEVEL_NAMES = {
    "SERIALIZABLE": "SERIALIZABLE",
    "SNAPSHOT": "SNAPSHOT",
    # weaker levels get snapshot isolation: stronger than asked, as the standard allows
    "REPEATABLE READ": "SNAPSHOT",
    "READ COMMITTED": "SNAPSHOT",
    "READ UNCOMMITTED": "SNAPSHOT",
}


def _syntax_message(error: sqlglot.errors.ParseError) -> str:
    """PostgreSQL's wording, with sqlglot's reason and position, and no terminal colours."""
    if not error.errors:
        return re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    first = error.errors[0]
    near = (first.get("highlight") or "").strip()
    where = f"line {first.get('line')}, column {first.get('col')}"
    reason = first.get("description") or "invalid syntax"
    if near:
        return f'syntax error at or near "{near}" ({where}): {reason}'
    return f"syntax error at end of input ({where}): {reason}"


def _transaction_modes(words: list[str], text: str) -> str | None:
    """The isolation level named by transaction modes (``ISOLATION LEVEL x``, ``READ WRITE``)."""
    isolation = None
    i = 0
    while i < len(words):
        if words[i] == ",":
            i += 1
            continue
        if words[i : i + 2] == ["ISOLATION", "LEVEL"]:
            rest = words[i + 2 :]
            for name, level in ISOLATION_LEVEL_NAMES.items():
                parts = name.split()
                if rest[: len(parts)] == parts:
                    isolation = level
                    i += 2 + len(parts)
                    break
            else:
                raise errors.SqlSyntaxError(f"unknown isolation level in: {text}")
            continue
        if words[i : i + 2] == ["READ", "WRITE"]:
            i += 2
            continue
        if words[i : i + 2] == ["READ", "ONLY"]:
            raise errors.not_supported("READ ONLY transactions")
        if words[i] in ("DEFERRABLE", "NOT"):
            raise errors.not_supported("DEFERRABLE transactions")
        raise errors.SqlSyntaxError(f"syntax error at or near {words[i]!r} in: {text}")
    return isolation


def _control(text: str, tokens: list[Token]) -> Statement | None:
    """A transaction-control or SHOW statement recognised from its words, else None."""
    words = [t.text.upper() for t in tokens]
    first = words[0]
    if first == "BEGIN" or words[:2] == ["START", "TRANSACTION"]:
        rest = words[2:] if first == "START" else words[1:]
        if rest[:1] in (["WORK"], ["TRANSACTION"]) and first == "BEGIN":
            rest = rest[1:]
        return Statement(StatementKind.BEGIN, text, isolation=_transaction_modes(rest, text), tag="BEGIN")
    if first in ("COMMIT", "END"):
        if words[1:] not in ([], ["WORK"], ["TRANSACTION"]):
            raise errors.not_supported(" ".join(words))
        return Statement(StatementKind.COMMIT, text, tag="COMMIT")
    if first in ("ROLLBACK", "ABORT"):
        if words[1:] not in ([], ["WORK"], ["TRANSACTION"]):
            raise errors.not_supported("savepoints")
        return Statement(StatementKind.ROLLBACK, text, tag="ROLLBACK")
    if first in ("SAVEPOINT", "RELEASE"):
        raise errors.not_supported("savepoints")
    if words[:2] == ["SET", "TRANSACTION"]:
        return Statement(
            StatementKind.SET_ISOLATION, text, isolation=_transaction_modes(words[2:], text), tag="SET"
        )
    if words[:2] == ["SET", "SESSION"]:
        raise errors.not_supported("SET SESSION CHARACTERISTICS")
    if is_source_statement(words):
        return prepare_source_statement(text, tokens)
    if first == "SHOW":
        if words[1:] == ["TABLES"]:
            return Statement(StatementKind.QUERY, text, tag="SELECT")
        raise errors.not_supported(" ".join(words[:2]))
    return None


def _prepare_one(text: str, tokens: list[Token]) -> Statement:
    control = _control(text, tokens)
    if control is not None:
        return control
    allow_depth(tokens)
    try:
        tree = cast(exp.Expression, sqlglot.parse_one(text, read=DIALECT))
    except sqlglot.errors.ParseError as e:
        raise errors.SqlSyntaxError(_syntax_message(e)) from None
    except sqlglot.errors.TokenError as e:
        raise errors.SqlSyntaxError(f"syntax error: {e}") from None
    except RecursionError:
        raise too_complex() from None
    if tree is None:
        raise errors.SqlSyntaxError(f"empty statement: {text!r}")
    check_tokens(tokens)
    check_tree(tree)
    for ident in tree.find_all(exp.Identifier):
        if not ident.quoted:
            ident.set("this", ident.this.lower())
    params = tag_parameters(tree)
    if isinstance(tree, (exp.Select, exp.SetOperation, exp.Values, exp.Subquery)):
        kind = StatementKind.QUERY
    elif isinstance(tree, (exp.Insert, exp.Update, exp.Delete)):
        kind = StatementKind.DML
    elif isinstance(tree, (exp.Create, exp.Drop)):
        kind = StatementKind.DDL
    elif isinstance(tree, exp.Command):
        raise errors.not_supported(f"{tree.name.upper()} statements")
    elif isinstance(tree, exp.Column) and tree.name in ("abort",):
        return Statement(StatementKind.ROLLBACK, text, tag="ROLLBACK")
    else:
        raise errors.not_supported(f"{tree.key.upper()} statements")
    return Statement(kind, text, tree, params)
