"""The examples in the documentation run as written."""

from __future__ import annotations

import doctest
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from contextlib import closing
from pathlib import Path

import pytest
from kafka_broker import Broker
from test_cdc_publisher import kcat_environment, read_topic

import offsetdb

ROOT = Path(__file__).resolve().parent.parent


def test_readme_python_driver_example_runs(tmp_path: Path, capsys) -> None:
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S)
    assert code is not None, "README lost its Python example"
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code.group(1), "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].startswith("[('signup', 1), ('login', 1)]")


def test_readme_kafka_example_runs_against_the_test_broker(
    tmp_path: Path, capsys, kafka_broker, kafka_settings
) -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    kafka_blocks = [b for b in blocks if "kafka://" in b]
    assert kafka_blocks, "README lost its Kafka example"
    code = kafka_blocks[0].replace("localhost:9092", kafka_broker.bootstrap).replace(
        "/shop", f"/readme{os.getpid()}"
    )
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert capsys.readouterr().out.splitlines()[-1] == "('/home',)"


def test_readme_sources_example_ingests_a_topic_against_the_test_broker(
    tmp_path: Path, capsys, kafka_broker, kafka_settings
) -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "CREATE SOURCE" in b]
    assert blocks, "README lost its Kafka sources example"
    topic = f"readme-orders-{os.getpid()}"
    code = (
        blocks[0].replace("localhost:9092", kafka_broker.bootstrap)
        .replace('"orders"', f'"{topic}"').replace("'orders'", f"'{topic}'")
    )
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "[(1, 7, Decimal('19.90'))]"
    assert 'invalid input syntax for type integer: \\"not a number\\"' in printed[1] or (
        'invalid input syntax for type integer: "not a number"' in printed[1]
    ), printed


def test_package_docstring_examples_pass() -> None:
    failures, tried = doctest.testmod(offsetdb, verbose=False)
    assert tried > 0 and failures == 0


# --- README: change data capture -------------------------------------------------------------


def _cdc_section() -> tuple[list[str], list[str]]:
    """The shell and Python blocks of the README's change data capture section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Change data capture", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S), re.findall(r"```python\n(.*?)```", section, re.S)


class _PublishedShop:
    """The README's two shell commands run as written: the demo shop, and its publisher."""

    def __init__(self, broker: Broker, tmp_path: Path) -> None:
        self.broker = broker
        self.prefix = f"readme{uuid.uuid4().hex[:8]}"
        self.cwd = tmp_path
        self.publisher: subprocess.Popen[bytes] | None = None
        self.log = tmp_path / "cdc.log"
        shell, _ = _cdc_section()
        lines = [line.split("  #")[0].strip() for line in shell[0].splitlines() if line.strip()]
        assert [line.split()[:2] for line in lines] == [["offsetdb", "demo"], ["offsetdb", "cdc"]], lines
        demo, publish = (self.command(line.rstrip("& ")) for line in lines)
        subprocess.run(demo, cwd=tmp_path, check=True, capture_output=True, timeout=300)
        with closing(offsetdb.connect(str(tmp_path / "shop"))) as conn:
            end = conn.sync()
            self.orders = conn.cursor().execute("SELECT count(*) FROM orders").fetchone()[0]
        with self.log.open("wb") as output:
            self.publisher = subprocess.Popen(publish, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            progress = read_topic(broker, f"{self.prefix}.progress", idle=0.5) if self._has_progress() else []
            if progress and (progress[-1][3]["resolved"] or -1) >= end:
                break
            assert self.publisher.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.5)

    def _has_progress(self) -> bool:
        from confluent_kafka.admin import AdminClient

        topics = AdminClient({"bootstrap.servers": self.broker.bootstrap}).list_topics(timeout=10).topics
        return f"{self.prefix}.progress" in topics

    def text(self, text: str) -> str:
        """README text with this run's broker and topic prefix."""
        return (
            text.replace("localhost:9092", self.broker.bootstrap)
            .replace("--topic-prefix shop", f"--topic-prefix {self.prefix}")
            .replace("shop.orders", f"{self.prefix}.orders")
        )

    def command(self, line: str) -> list[str]:
        words = shlex.split(self.text(line))
        return [sys.executable, "-m", "offsetdb.cli", *words[1:]] if words[0] == "offsetdb" else words

    def stop(self) -> None:
        if self.publisher is not None:
            self.publisher.send_signal(signal.SIGTERM)
            self.publisher.wait(30)


def test_readme_cdc_consumer_rebuilds_the_demo_orders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kafka_broker: Broker, kafka_settings: dict[str, str]
) -> None:
    shop = _PublishedShop(kafka_broker, tmp_path)
    try:
        _, python = _cdc_section()
        exec(compile(shop.text(python[0]), "README.md", "exec"), {})
        assert capsys.readouterr().out.splitlines()[-1] == f"{shop.orders} orders"
    finally:
        shop.stop()


@pytest.mark.external
def test_readme_kcat_command_prints_the_changes(
    tmp_path: Path, kafka_broker: Broker, kafka_settings: dict[str, str]
) -> None:
    # kcat is a Debian package (.ci/run installs it and runs -m external).
    if shutil.which("kcat") is None:
        pytest.fail("kcat is not installed: apt-get install kcat (.ci/run does)", pytrace=False)
    shop = _PublishedShop(kafka_broker, tmp_path)
    try:
        shell, _ = _cdc_section()
        kcat = [line for line in shell[1].splitlines() if line.startswith("kcat ")]
        done = subprocess.run(
            shop.command(kcat[0]), capture_output=True, text=True, timeout=120, env=kcat_environment(tmp_path)
        )
        assert done.returncode == 0, done.stderr
        orders: dict[int, object] = {}
        for line in done.stdout.splitlines():
            message = json.loads(line)
            if message["payload"] is None:
                continue  # a tombstone
            change = json.loads(message["payload"])["payload"]
            order_id = json.loads(message["key"])["payload"]["id"]
            if change["op"] in ("r", "c", "u"):
                orders[order_id] = change["after"]
            elif change["op"] == "d":
                del orders[order_id]
        assert len(orders) == shop.orders
    finally:
        shop.stop()
