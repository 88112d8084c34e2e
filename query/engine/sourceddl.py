"""CREATE / DROP / ALTER SOURCE: Kafka sources declared in SQL.

sqlglot knows no such statements, so they are recognised from their tokens (as
transaction control is) and parsed here by a small recursive descent::

    CREATE SOURCE [IF NOT EXISTS] name FROM KAFKA TOPIC 'topic'
        FORMAT JSON | AVRO | DEBEZIUM
        INTO table
        [MODE APPEND | UPSERT | DEBEZIUM]
        [COLUMNS (column FROM FIELD 'a.b' | KEY | KEY FIELD 'k' | TIMESTAMP
                          | PARTITION | OFFSET | HEADER 'h', ...)]
        [WITH (option = value, ...)]
    DROP SOURCE [IF EXISTS] name
    ALTER SOURCE name PAUSE | RESUME

The definition is checked against the target table when the statement runs
(:meth:`~offsetdb.materializers.sources.SourceDefinition.check_against`); what a source
*is* lives in :mod:`offsetdb.materializers.sources`, how it runs in ``offsetdb.ingest``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlglot.tokens import Token, TokenType

from offsetdb import errors
from offsetdb.materializers.sources import FORMATS, MODES, ColumnSource, SourceDefinition

from .result import Result, StatementKind
from .runtime import Env
from .statement import Statement

_OPTIONS = {
    "bootstrap": str,
    "start": str,
    "batch_rows": int,
    "batch_wait_ms": int,
    "dead_letter_topic": str,
    "schema_registry": str,
}
_PUNCTUATION = {
    TokenType.L_PAREN, TokenType.R_PAREN, TokenType.COMMA, TokenType.EQ, TokenType.STRING,
    TokenType.NUMBER, TokenType.SEMICOLON, TokenType.DOT,
}


@dataclass
class CreateSourcePlan:
    """A planned CREATE SOURCE."""

    definition: SourceDefinition
    if_not_exists: bool

    def execute(self, env: Env) -> Result:
        """Record the source in the catalog through the transaction."""
        env.ctx.create_source(self.definition, self.if_not_exists)
        return Result([], [], -1, "CREATE SOURCE")


@dataclass
class DropSourcePlan:
    """A planned DROP SOURCE."""

    name: str
    if_exists: bool

    def execute(self, env: Env) -> Result:
        """Remove the source and its stored offsets."""
        env.ctx.drop_source(self.name, self.if_exists)
        return Result([], [], -1, "DROP SOURCE")


@dataclass
class AlterSourcePlan:
    """A planned ALTER SOURCE ... PAUSE | RESUME."""

    name: str
    state: str

    def execute(self, env: Env) -> Result:
        """Change the source's state."""
        env.ctx.alter_source(self.name, self.state)
        return Result([], [], -1, "ALTER SOURCE")


def is_source_statement(words: list[str]) -> bool:
    """Whether the statement's first words make it a source statement."""
    return len(words) > 1 and words[0] in ("CREATE", "DROP", "ALTER") and words[1] == "SOURCE"


def prepare_source_statement(text: str, tokens: list[Token]) -> Statement:
    """Parse a CREATE / DROP / ALTER SOURCE statement into a prepared statement."""
    parser = _Parser(text, tokens)
    verb = parser.word()
    parser.expect("SOURCE")
    plan: CreateSourcePlan | DropSourcePlan | AlterSourcePlan
    if verb == "CREATE":
        plan = parser.create()
        tag = "CREATE SOURCE"
    elif verb == "DROP":
        if_exists = parser.accept("IF")
        if if_exists:
            parser.expect("EXISTS")
        plan = DropSourcePlan(parser.name(), if_exists)
        tag = "DROP SOURCE"
    else:
        name = parser.name()
        action = parser.word()
        if action not in ("PAUSE", "RESUME"):
            raise errors.SqlSyntaxError(f'ALTER SOURCE takes PAUSE or RESUME, not "{action}"')
        plan = AlterSourcePlan(name, "PAUSED" if action == "PAUSE" else "RUNNING")
        tag = "ALTER SOURCE"
    parser.end()
    return Statement(StatementKind.DDL, text, tag=tag, plan=plan)


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0

    def _peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _error(self, wanted: str) -> errors.Error:
        token = self._peek()
        if token is None:
            return errors.SqlSyntaxError(f"syntax error at end of input: expected {wanted}")
        return errors.SqlSyntaxError(f'syntax error at or near "{token.text}": expected {wanted}')

    def _next(self) -> Token:
        token = self._peek()
        if token is None:
            raise self._error("more")
        self.i += 1
        return token

    def word(self) -> str:
        token = self._peek()
        if token is None or token.token_type in _PUNCTUATION or token.token_type is TokenType.IDENTIFIER:
            raise self._error("a keyword")
        self.i += 1
        return token.text.upper()

    def accept(self, word: str) -> bool:
        token = self._peek()
        if (
            token is not None
            and token.token_type not in _PUNCTUATION
            and token.token_type is not TokenType.IDENTIFIER
            and token.text.upper() == word
        ):
            self.i += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.accept(word):
            raise self._error(word)

    def punct(self, kind: TokenType) -> bool:
        token = self._peek()
        if token is not None and token.token_type is kind:
            self.i += 1
            return True
        return False

    def name(self) -> str:
        token = self._peek()
        if token is None or token.token_type in _PUNCTUATION:
            raise self._error("a name")
        self.i += 1
        # Quoted identifiers keep their spelling; others fold to lower case, as PostgreSQL.
        return token.text if token.token_type is TokenType.IDENTIFIER else token.text.lower()

    def string(self) -> str:
        token = self._peek()
        if token is None or token.token_type is not TokenType.STRING:
            raise self._error("a quoted string")
        self.i += 1
        return token.text

    def end(self) -> None:
        if self._peek() is not None:
            raise self._error("the end of the statement")

    def create(self) -> CreateSourcePlan:
        if_not_exists = self.accept("IF")
        if if_not_exists:
            self.expect("NOT")
            self.expect("EXISTS")
        name = self.name()
        self.expect("FROM")
        self.expect("KAFKA")
        self.expect("TOPIC")
        topic = self.string()
        if not topic:
            raise errors.ProgrammingError("the topic name is empty", "42601")
        self.expect("FORMAT")
        fmt = self.word()
        if fmt not in FORMATS:
            raise errors.not_supported(f"FORMAT {fmt} (formats: {', '.join(FORMATS)})")
        self.expect("INTO")
        into = self.name()
        mode = "DEBEZIUM" if fmt == "DEBEZIUM" else "APPEND"
        if self.accept("MODE"):
            mode = self.word()
            if mode not in MODES:
                raise errors.not_supported(f"MODE {mode} (modes: {', '.join(MODES)})")
        columns: list[ColumnSource] = []
        if self.accept("COLUMNS"):
            columns = self._columns()
        definition = SourceDefinition(name, topic, fmt, into, mode, tuple(columns))
        if self.accept("WITH"):
            definition = self._options(definition)
        return CreateSourcePlan(definition, if_not_exists)

    def _columns(self) -> list[ColumnSource]:
        if not self.punct(TokenType.L_PAREN):
            raise self._error("(")
        out = []
        while True:
            column = self.name()
            self.expect("FROM")
            origin = self.word()
            source_name: str | None = None
            if origin in ("FIELD", "HEADER"):
                source_name = self.string()
            elif origin == "KEY" and self.accept("FIELD"):
                origin, source_name = "KEY_FIELD", self.string()
            elif origin not in ("KEY", "TIMESTAMP", "PARTITION", "OFFSET"):
                raise errors.SqlSyntaxError(
                    f'a column comes FROM FIELD, KEY, KEY FIELD, TIMESTAMP, PARTITION, OFFSET or HEADER, not "{origin}"'
                )
            out.append(ColumnSource(column, origin, source_name))
            if self.punct(TokenType.COMMA):
                continue
            if self.punct(TokenType.R_PAREN):
                return out
            raise self._error(", or )")

    def _options(self, definition: SourceDefinition) -> SourceDefinition:
        if not self.punct(TokenType.L_PAREN):
            raise self._error("(")
        given: dict[str, object] = {}
        while True:
            option = self.name()
            if not self.punct(TokenType.EQ):
                raise self._error("=")
            token = self._next()
            kind = _OPTIONS.get(option)
            if kind is None:
                raise errors.ProgrammingError(
                    f'unknown source option "{option}" (options: {", ".join(sorted(_OPTIONS))})', "42601"
                )
            if option in given:
                raise errors.ProgrammingError(f'option "{option}" is given twice', "42601")
            if kind is int:
                if token.token_type is not TokenType.NUMBER or not token.text.isdigit():
                    raise errors.ProgrammingError(f'option "{option}" takes a positive integer, not {token.text}', "22023")
                given[option] = int(token.text)
            else:
                if token.token_type is not TokenType.STRING:
                    raise errors.ProgrammingError(f"option \"{option}\" takes a quoted string, not {token.text}", "22023")
                given[option] = token.text
            if self.punct(TokenType.COMMA):
                continue
            if self.punct(TokenType.R_PAREN):
                break
            raise self._error(", or )")
        start = given.get("start", "earliest")
        if start not in ("earliest", "latest"):
            raise errors.ProgrammingError(f"option start is 'earliest' or 'latest', not {start!r}", "22023")
        for option in ("batch_rows", "batch_wait_ms"):
            value = given.get(option)
            if isinstance(value, int) and not 1 <= value <= 1_000_000:
                raise errors.ProgrammingError(f"option {option} must be between 1 and 1000000", "22023")
        return replace(definition, **given)  # type: ignore[arg-type]
