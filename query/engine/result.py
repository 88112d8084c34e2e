"""What executing a statement returns, and the kinds of statement the session sees."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from offsetdb.types import SqlType


class StatementKind(enum.Enum):
    """How the session must treat a statement (transaction control is its job, not ours)."""

    QUERY = "QUERY"
    DML = "DML"
    DDL = "DDL"
    BEGIN = "BEGIN"
    COMMIT = "COMMIT"
    ROLLBACK = "ROLLBACK"
    SET_ISOLATION = "SET_ISOLATION"
    OTHER = "OTHER"


@dataclass
class ResultColumn:
    """One output column: its name and SQL type (None when the type is unknown)."""

    name: str
    type: SqlType | None


@dataclass
class Result:
    """Rows (logical Python values), their columns, the row count and the command tag.

    ``rowcount`` is the number of rows returned for queries, affected for DML, -1 for
    DDL and transaction control. ``status`` is PostgreSQL's command tag ("SELECT 3").
    """

    columns: list[ResultColumn] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rowcount: int = -1
    status: str = ""
