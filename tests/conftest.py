"""Shared fixtures.

``db_target`` is how a test names a database to ``offsetdb.connect``; tests written
against it form the contract suite, run once per backend in ``BACKENDS``: the embedded
directory, and a fresh database on a Kafka broker (see :mod:`kafka_broker`) with its
replica in a temporary directory.

``postgres`` is the semantic oracle, a real PostgreSQL started once per run (see
:mod:`postgres_oracle`); ``pg`` is a connection to it in a schema of the test's own.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Test helper modules (storage_helpers, crash_worker, kafka_broker) import by their plain names.
sys.path.insert(0, str(Path(__file__).parent))

from kafka_broker import Broker, provide_broker  # noqa: E402
from oracle_compare import STATS_KEY  # noqa: E402
from postgres_oracle import PostgresOracle, start_postgres  # noqa: E402

from offsetdb.kafka_log import KafkaTarget  # noqa: E402
from offsetdb.query.database import Database  # noqa: E402

BACKENDS = ["embedded", "kafka"]

_broker: Broker | None = None
_postgres: PostgresOracle | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options of the generated oracle tests (tests/engine/test_oracle_random.py)."""
    group = parser.getgroup("oracle", "statements generated and compared with PostgreSQL")
    group.addoption("--oracle-seeds", metavar="START:STOP",
                    help="seeds of the generated worlds (default 0:25; 1000:1150 with -m slow)")
    group.addoption("--oracle-cases", metavar="N", type=int,
                    help="statements per world (default 16; 40 with -m slow)")
    group.addoption("--oracle-report", metavar="FILE",
                    help="append every disagreement and unsupported statement to FILE (JSON lines)")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The generated oracle statements' tally, when any ran."""
    stats = config.stash.get(STATS_KEY, None)
    if stats is not None and stats.statements:
        terminalreporter.section("PostgreSQL oracle: generated statements")
        for line in stats.summary():
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One Kafka broker for the whole run (started on first use)."""
    global _broker
    try:
        _broker = provide_broker(tmp_path_factory.mktemp("broker"))
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    yield _broker
    _broker.stop()
    _broker = None


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresOracle]:
    """One PostgreSQL server for the whole run (started on first use, stopped at the end)."""
    global _postgres
    try:
        _postgres = start_postgres()
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        pytest.fail(f"could not start PostgreSQL, the oracle of the SQL tests: {e}", pytrace=False)
    yield _postgres
    _postgres.stop()
    _postgres = None


@pytest.fixture
def pg(postgres: PostgresOracle, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A psycopg connection (autocommit) to the oracle, in a fresh schema of this test's own."""
    with postgres.connect(request.node.name) as conn:
        yield conn


@pytest.fixture
def kafka_settings(kafka_broker: Broker, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Client settings the broker needs, also exported for subprocesses (OFFSETDB_KAFKA_*)."""
    for name, value in kafka_broker.client_settings.items():
        monkeypatch.setenv("OFFSETDB_KAFKA_" + name.upper().replace(".", "_"), value)
    return dict(kafka_broker.client_settings)


def kafka_url(broker: Broker, tmp_path: Path, name: str = "replica") -> str:
    """A fresh database on ``broker``, with a replica directory under ``tmp_path``."""
    return f"kafka://{broker.bootstrap}/t{uuid.uuid4().hex[:12]}?data_dir={tmp_path / name}"


@pytest.fixture(params=BACKENDS)
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database for ``offsetdb.connect``, on each backend in turn."""
    if request.param == "embedded":
        return str(tmp_path / "db")
    if request.param == "kafka":
        broker = request.getfixturevalue("kafka_broker")
        request.getfixturevalue("kafka_settings")
        return kafka_url(broker, tmp_path)
    raise AssertionError(f"no fixture for backend {request.param!r}")


@pytest.fixture(params=BACKENDS)
def open_database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], Database]:
    """Opens a :class:`Database` below the driver, by name, on each backend in turn.

    The same name opens the same database again (after a release: a restart).
    """
    if request.param == "embedded":
        return lambda name: Database.acquire(str(tmp_path / name))
    broker: Broker = request.getfixturevalue("kafka_broker")
    request.getfixturevalue("kafka_settings")
    prefix = f"t{uuid.uuid4().hex[:12]}"
    return lambda name: Database.acquire(
        str(tmp_path / name), None, KafkaTarget(broker.bootstrap, f"{prefix}{name}", None)
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Attach the broker's recent output to the report of a failing test that used it."""
    report = yield
    fixtures = getattr(item, "fixturenames", ())
    if report.failed and _broker is not None and "kafka_broker" in fixtures:
        tail = _broker.output_tail()
        if tail:
            report.sections.append((f"{_broker.kind} broker output (last lines)", tail))
    if report.failed and _postgres is not None and "postgres" in fixtures:
        trouble = _postgres.trouble()
        if trouble:
            report.sections.append(("PostgreSQL server trouble (from its log)", trouble))
    return report
