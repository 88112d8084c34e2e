"""Generated SQL compared with PostgreSQL: offsetdb must answer as the oracle does.

For each seed, :mod:`sqlgen` builds a small world (three tables and their rows) and a
list of statements; the world is created on offsetdb (``offsetdb.connect(dir)``,
embedded, autocommit) and in a fresh schema of the PostgreSQL oracle, and each statement
runs on both. Compared (see :mod:`oracle_compare` for how values compare):

- queries: rows (as multisets, or in order when the ORDER BY fixes it), column count;
- DML: command tag and row count, RETURNING rows, and the written table afterwards;
- errors: both fail or both succeed, with the same SQLSTATE class (two characters);
- a statement offsetdb refuses with 0A000 is counted as unsupported, not compared. The
  counts by message are printed at the end of the run.

DML runs in a transaction on PostgreSQL, rolled back when offsetdb did not apply the
statement (it failed, or refused it), so that the two stay in step after a disagreement
that offsetdb's own all-or-nothing rule explains.

Any other disagreement fails the seed's test with the seed, the statement and both
answers; a world whose tables diverged stops there. Everything is a function of the seed.

How much runs:

- default: seeds 0-24, 16 statements each (400 statements, seconds);
- ``-m slow``: seeds 1000-1149, 40 statements each (6,000 statements);
- a long run, any seed range and count (``--oracle-report`` appends every disagreement
  and unsupported statement to a JSON-lines file, to group them afterwards)::

    python -m pytest tests/engine/test_oracle_random.py -m slow \\
        --oracle-seeds 0:5000 --oracle-cases 60 --oracle-report /tmp/oracle.jsonl -q

  ``--oracle-seeds``/``--oracle-cases`` apply to whichever of the two tests runs; to
  replay one seed: ``--oracle-seeds 17:18``. ``python tests/engine/sqlgen.py 17 16``
  prints seed 17's world and statements as a SQL script (for psql or ``offsetdb sql``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from oracle_compare import (
    Answer,
    Verdict,
    ask_offsetdb,
    ask_postgres,
    compare,
    report,
    scale_is_defined,
    stats_of,
)

import offsetdb

from .sqlgen import World

DEFAULT_SEEDS, DEFAULT_CASES = range(0, 25), 16
SOAK_SEEDS, SOAK_CASES = range(1000, 1150), 40
SHOWN = 8  # disagreements shown in full in one failure


def _seed_range(config: pytest.Config, default: range) -> range:
    text = config.getoption("oracle_seeds")
    if not text:
        return default
    start, _, stop = str(text).partition(":")
    return range(int(start), int(stop) if stop else int(start) + 1)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "oracle_seed" not in metafunc.fixturenames:
        return
    soak = metafunc.definition.get_closest_marker("slow") is not None
    seeds = _seed_range(metafunc.config, SOAK_SEEDS if soak else DEFAULT_SEEDS)
    metafunc.parametrize("oracle_seed", list(seeds))


def _cases(config: pytest.Config, default: int) -> int:
    value = config.getoption("oracle_cases")
    return int(value) if value else default


class Recorder:
    """Collects one world's verdicts; appends them to the --oracle-report file if any."""

    def __init__(self, config: pytest.Config, seed: int) -> None:
        self.stats = stats_of(config)
        self.seed = seed
        self.report_path: str | None = config.getoption("oracle_report")
        self.failures: list[str] = []

    def _log(self, record: dict[str, Any]) -> None:
        if self.report_path:
            with open(self.report_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record, default=str) + "\n")

    def unsupported(self, n: int, sql: str, ours: Answer) -> None:
        self.stats.unsupported[(ours.error or "").split(": ", 1)[-1][:90]] += 1
        self._log({"seed": self.seed, "case": n, "verdict": "unsupported", "sql": sql, "offsetdb": ours.error})

    def disagree(self, n: int, kind: str, sql: str, ours: Answer, theirs: Answer, difference: str) -> None:
        self.stats.disagreed += 1
        self.failures.append(f"seed {self.seed} case {n} ({kind}): " + report(sql, ours, theirs, difference))
        self._log({"seed": self.seed, "case": n, "verdict": "disagree", "kind": kind, "sql": sql,
                   "difference": difference, "postgres": theirs.describe(), "offsetdb": ours.describe()})  # fmt: skip


def run_world(seed: int, count: int, directory: Path, postgres: Any, recorder: Recorder) -> None:
    """Build seed's world on both engines and compare ``count`` generated statements."""
    world = World(seed)
    stats = recorder.stats
    stats.worlds += 1
    conn = offsetdb.connect(str(directory / f"db{seed}"), autocommit=True)
    try:
        cur = conn.cursor()
        with postgres.connect(f"gen{seed}") as pg:
            for sql in world.setup:
                ours, theirs = ask_offsetdb(lambda sql=sql: cur.execute(sql)), ask_postgres(pg, sql)
                assert not ours.failed and not theirs.failed, report(sql, ours, theirs, f"seed {seed}: setup failed")
            for n, case in enumerate(world.cases(count)):
                stats.statements += 1
                dml = case.kind == "dml"
                if dml:
                    pg.execute("BEGIN")  # undone when offsetdb did not apply the statement
                ours = ask_offsetdb(lambda case=case: cur.execute(case.sql))
                theirs = ask_postgres(pg, case.sql)
                verdict = compare(ours, theirs, ordered=case.ordered, numeric_scale=scale_is_defined(case.sql))
                if dml:
                    pg.execute("ROLLBACK" if theirs.failed or ours.failed else "COMMIT")
                if verdict.verdict is Verdict.UNSUPPORTED:
                    recorder.unsupported(n, case.sql, ours)
                    continue
                if verdict.verdict is Verdict.DISAGREE:
                    recorder.disagree(n, case.kind, case.sql, ours, theirs, verdict.difference)
                else:
                    stats.agreed += 1
                if dml and case.target:
                    state = f"SELECT * FROM {case.target}"
                    ours_state = ask_offsetdb(lambda state=state: cur.execute(state))
                    theirs_state = ask_postgres(pg, state)
                    after = compare(ours_state, theirs_state, check_status=False,
                                    numeric_scale=scale_is_defined(case.sql))  # fmt: skip
                    if after.verdict is not Verdict.AGREE:
                        # After a statement that agreed, a different table is a finding of its
                        # own; after one that did not, it is that disagreement's consequence.
                        if verdict.verdict is Verdict.AGREE:
                            recorder.disagree(n, "table after DML", case.sql, ours_state, theirs_state,
                                              f"{case.target} differs afterwards: {after.difference}")  # fmt: skip
                        recorder.failures.append(f"seed {seed}: the tables diverged at case {n}; the rest not run")
                        break
    finally:
        conn.close()


def _check(request: pytest.FixtureRequest, seed: int, count: int, tmp_path: Path, postgres: Any) -> None:
    recorder = Recorder(request.config, seed)
    run_world(seed, count, tmp_path, postgres, recorder)
    if recorder.failures:
        shown = recorder.failures[:SHOWN]
        more = len(recorder.failures) - len(shown)
        pytest.fail(
            f"{len(recorder.failures)} disagreement(s) with PostgreSQL\n\n" + "\n\n".join(shown)
            + (f"\n\n... and {more} more" if more > 0 else "")
            + f"\n\nreplay: python -m pytest tests/engine/test_oracle_random.py --oracle-seeds {seed}:{seed + 1}"
            f" --oracle-cases {count}; the SQL: python tests/engine/sqlgen.py {seed} {count}",
            pytrace=False,
        )


def test_generated_statements_agree_with_postgres(
    oracle_seed: int, request: pytest.FixtureRequest, tmp_path: Path, postgres: Any
) -> None:
    _check(request, oracle_seed, _cases(request.config, DEFAULT_CASES), tmp_path, postgres)


@pytest.mark.slow
def test_generated_statements_agree_with_postgres_soak(
    oracle_seed: int, request: pytest.FixtureRequest, tmp_path: Path, postgres: Any
) -> None:
    _check(request, oracle_seed, _cases(request.config, SOAK_CASES), tmp_path, postgres)
