"""Fixtures: the engine over the in-memory context, and over the real database."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from offsetdb.query.engine import Result, prepare

from .memory_context import MemoryContext


class EngineRunner:
    """Runs SQL text through prepare/execute on one MemoryContext."""

    def __init__(self) -> None:
        self.ctx = MemoryContext()

    def run(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Result:
        result = Result()
        for statement in prepare(sql):
            result = statement.execute(self.ctx, params)
        return result

    def rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.run(sql, params).rows


class DriverRunner:
    """Runs SQL text through offsetdb.connect(...) cursors (autocommit)."""

    def __init__(self, path: str) -> None:
        import offsetdb

        self.conn = offsetdb.connect(path, autocommit=True)

    def run(self, sql: str, params: Any = None) -> Any:
        cur = self.conn.cursor()
        for statement in prepare(sql):
            cur.execute(statement.sql, params)
        return cur

    def rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        cur = self.run(sql, params)
        return list(cur.fetchall()) if cur.description else []

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def engine() -> EngineRunner:
    return EngineRunner()


@pytest.fixture(params=["memory", "driver"])
def backend(request: pytest.FixtureRequest, db_target: str) -> Iterator[Any]:
    if request.param == "memory":
        yield EngineRunner()
        return
    runner = DriverRunner(db_target)
    try:
        yield runner
    finally:
        runner.close()
