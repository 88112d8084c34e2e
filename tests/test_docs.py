"""The examples in the documentation run as written."""

from __future__ import annotations

import doctest
import os
import re
from pathlib import Path

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
