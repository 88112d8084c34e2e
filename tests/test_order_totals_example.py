"""The faust-streaming example (examples/order_totals.py) against the test broker, end to end.

The orders demo fills a shop, the CDC publisher publishes it (snapshot, then changes),
and the faust agent, run as its own process exactly as a user runs it, keeps each
customer's total; its ``/totals/`` page must equal a SQL query over the orders table,
first after the snapshot, then after updates, a move to another customer, deletes and
inserts. faust's consumer group takes ~30 s to form on the bundled broker (Tansu), which
makes this the one test that waits for a group.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from kafka_broker import Broker, free_port

import offsetdb
from offsetdb.examples import orders
from offsetdb.examples.order_totals import as_text, cents, order_change
from offsetdb.query.cdc import publisher_for


def sql_totals(conn: Any) -> dict[str, str]:
    cursor = conn.cursor()
    cursor.execute("SELECT customer_id, sum(total) FROM orders GROUP BY customer_id")
    return {str(customer): str(total) for customer, total in cursor.fetchall()}


def wait_for_totals(port: int, want: dict[str, str], agent: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 180  # the group join (~30 s) and the whole topic
    got: Any = None
    while time.monotonic() < deadline:
        assert agent.poll() is None, f"the faust worker exited: {log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/totals/", timeout=5) as response:
                got = json.load(response)
        except OSError as e:
            got = f"no answer yet: {e}"
        # A customer whose orders all went away keeps a total of 0.00; SQL's GROUP BY has no row.
        if isinstance(got, dict) and {k: v for k, v in got.items() if v != "0.00"} == want:
            return
        time.sleep(0.5)
    raise AssertionError(f"the agent's totals {got} never equalled SQL's {want}\n{log.read_text()[-3000:]}")


def test_the_faust_agent_keeps_the_totals_sql_computes(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    target = str(tmp_path / "shop")
    sizes = orders.Sizes(orders=150, clients=2, products=8, customers=12, seed=3, max_retries=150)
    report = orders.run(lambda: offsetdb.connect(target), sizes, where=target, out=io.StringIO())
    assert report.ok and report.placed > 0
    conn = offsetdb.connect(target, autocommit=True)
    prefix = f"shop{uuid.uuid4().hex[:8]}"
    publisher = publisher_for(conn, topic_prefix=prefix, bootstrap=kafka_broker.bootstrap, heartbeat_interval=0.5)
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,))
    thread.start()
    port = free_port()
    log = tmp_path / "faust.log"
    command = [
        sys.executable, "-m", "offsetdb.examples.order_totals", "--kafka", kafka_broker.bootstrap,
        "--topic-prefix", prefix, "--app-id", f"totals-{prefix}", "--web-port", str(port),
    ]  # fmt: skip
    with log.open("wb") as output:
        agent = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_for_totals(port, sql_totals(conn), agent, log)  # the snapshot
        cursor = conn.cursor()
        cursor.execute("SELECT id, customer_id FROM orders ORDER BY id")
        ids = cursor.fetchall()
        cursor.execute("UPDATE orders SET total = total + 1.25 WHERE id = ?", (ids[0][0],))
        other = next(c for _, c in ids if c != ids[1][1])
        cursor.execute("UPDATE orders SET customer_id = ? WHERE id = ?", (other, ids[1][0]))  # moved
        cursor.execute("DELETE FROM orders WHERE id IN (?, ?)", (ids[2][0], ids[3][0]))
        cursor.execute("UPDATE orders SET id = 1000000 WHERE id = ?", (ids[4][0],))  # d, tombstone, c
        cursor.execute("INSERT INTO orders VALUES (2000000, 99, 1, 1, 12.34)")  # a new customer
        wait_for_totals(port, sql_totals(conn), agent, log)
    finally:
        agent.terminate()
        try:
            agent.wait(30)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        stop.set()
        thread.join(30)
        conn.close()


def test_changes_are_read_as_a_debezium_consumer_reads_them() -> None:
    def envelope(op: str, before: Any, after: Any) -> bytes:
        return json.dumps({"schema": {}, "payload": {"op": op, "before": before, "after": after}}).encode()

    row = {"id": 7, "customer_id": 3, "product_id": 1, "quantity": 2, "total": "10.50"}
    assert order_change(envelope("r", None, row)) == ("7", ("3", 1050))
    assert order_change(envelope("u", row, {**row, "total": "0.99"})) == ("7", ("3", 99))
    assert order_change(envelope("d", row, None)) == ("7", None)
    assert order_change(None) is None and order_change(b"") is None  # tombstones
    assert order_change(envelope("t", None, None)) is None  # DROP TABLE
    assert cents("12.34") == 1234 and as_text(-5) == "-0.05" and as_text(123456) == "1234.56"
