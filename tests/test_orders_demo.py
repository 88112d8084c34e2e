"""The online-shop example (examples/orders.py, ``offsetdb demo``): small runs on both
backends whose report adds up and whose verification passes, and proof that the
verification can fail: data changed behind its back, and the lost update that
certification exists to prevent.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import threading
import uuid
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from kafka_broker import Broker

import offsetdb
from offsetdb.examples import orders
from offsetdb.examples.orders import Customer, Order, Outcome, Product, Shop, Sizes

# max_retries >= orders: an order can never give up. Each 40001 is caused by a commit newer
# than the snapshot the attempt read at, and the next attempt reads at or after it, so an
# order conflicts at most once per other placed order.
SMALL = Sizes(orders=300, clients=4, products=20, customers=50, seed=17, max_retries=300)

CHECK_NAMES = [
    "no product's stock is negative",
    "no customer's balance is negative",
    "per product: initial stock == current stock + ordered quantity",
    "money conserved: initial balances == current balances + order totals",
    "per customer: initial balance == current balance + their order totals",
    "order rows == orders the clients saw committed",
]


def certain_rejections(shop: Shop) -> tuple[list[int], list[int]]:
    """Products that must turn an order away for stock, customers who must for funds,
    whatever the interleaving, provided no order gives up.

    A customer whose balance covers all their orders is never short of money, so a product
    ordered only by such customers, with less stock than those orders ask for, rejects
    one for stock. Symmetrically for a customer who cannot pay for everything and orders
    only products whose stock covers every order for them.
    """
    price = {p.id: p.price for p in shop.products}
    demand = dict.fromkeys(price, 0)
    spend = {c.id: Decimal(0) for c in shop.customers}
    for o in shop.orders:
        demand[o.product_id] += o.quantity
        spend[o.customer_id] += price[o.product_id] * o.quantity
    solvent = {c.id for c in shop.customers if c.balance >= spend[c.id]}
    stocked = {p.id for p in shop.products if p.stock >= demand[p.id]}
    short_of_stock = [
        p.id
        for p in shop.products
        if p.id not in stocked
        and all(o.customer_id in solvent for o in shop.orders if o.product_id == p.id)
    ]
    short_of_funds = [
        c.id
        for c in shop.customers
        if c.id not in solvent
        and all(o.product_id in stocked for o in shop.orders if o.customer_id == c.id)
    ]
    return short_of_stock, short_of_funds


def run_small(target: str, sizes: Sizes = SMALL) -> tuple[orders.Report, str]:
    out = io.StringIO()
    report = orders.run(lambda: offsetdb.connect(target), sizes, where=target, out=out)
    return report, out.getvalue()


def test_small_run_adds_up_passes_every_check_and_rejects_for_stock_and_for_funds(
    tmp_path: Path,
) -> None:
    short_of_stock, short_of_funds = certain_rejections(orders.make_shop(SMALL))
    assert short_of_stock and short_of_funds, "SMALL's seed no longer forces both rejections"

    report, printed = run_small(str(tmp_path / "db"))

    assert report.client_errors == []
    assert report.placed + report.rejected_stock + report.rejected_funds + report.gave_up == 300
    assert report.gave_up == 0
    assert report.rejected_stock >= 1
    assert report.rejected_funds >= 1
    assert [c.name for c in report.checks] == CHECK_NAMES
    assert all(c.passed for c in report.checks), report.checks
    assert report.ok
    for name in CHECK_NAMES:
        assert f"PASS  {name}" in printed
    assert printed.rstrip().endswith("all checks passed")


def test_orders_live_in_the_database_as_the_report_says(tmp_path: Path) -> None:
    target = str(tmp_path / "db")
    report, _ = run_small(target, replace(SMALL, orders=120, clients=3))
    shop = orders.make_shop(replace(SMALL, orders=120, clients=3))
    conn = offsetdb.connect(target)
    cur = conn.cursor()
    rows = cur.execute("SELECT id, customer_id, product_id, quantity, total FROM orders").fetchall()
    planned = {o.id: o for o in shop.orders}
    price = {p.id: p.price for p in shop.products}
    assert len(rows) == report.placed
    for order_id, customer_id, product_id, quantity, total in rows:
        assert planned[order_id] == Order(order_id, customer_id, product_id, quantity)
        assert total == price[product_id] * quantity
        assert isinstance(total, Decimal)
    conn.close()


def test_demo_refuses_a_database_that_already_has_the_shop(tmp_path: Path) -> None:
    target = str(tmp_path / "db")
    run_small(target, replace(SMALL, orders=10))
    with pytest.raises(offsetdb.errors.DuplicateTable) as info:
        run_small(target, replace(SMALL, orders=10))
    assert info.value.sqlstate == "42P07"
    assert "empty database" in info.value.message


# --- the verifier can fail -------------------------------------------------------------------


@pytest.fixture
def finished_shop(tmp_path: Path) -> tuple[str, Shop, int]:
    """A finished small run: its directory, its shop and how many orders committed."""
    sizes = replace(SMALL, orders=100, clients=2)
    target = str(tmp_path / "db")
    report, _ = run_small(target, sizes)
    assert report.ok
    return target, orders.make_shop(sizes), report.placed


@pytest.mark.parametrize(
    ("tampering", "caught_by"),
    [
        (
            "UPDATE products SET stock = stock + 1 WHERE id = 3",
            {"per product: initial stock == current stock + ordered quantity"},
        ),
        (
            "UPDATE products SET stock = -1 WHERE id = 2",
            {
                "no product's stock is negative",
                "per product: initial stock == current stock + ordered quantity",
            },
        ),
        (
            "UPDATE customers SET balance = balance + 0.01 WHERE id = 7",
            {
                "money conserved: initial balances == current balances + order totals",
                "per customer: initial balance == current balance + their order totals",
            },
        ),
        (
            "DELETE FROM orders WHERE id = (SELECT min(id) FROM orders)",
            {
                "per product: initial stock == current stock + ordered quantity",
                "money conserved: initial balances == current balances + order totals",
                "per customer: initial balance == current balance + their order totals",
                "order rows == orders the clients saw committed",
            },
        ),
    ],
    ids=["stock-raised", "stock-negative", "balance-raised", "order-deleted"],
)
def test_verifier_fails_when_data_is_changed_behind_its_back(
    finished_shop: tuple[str, Shop, int], tampering: str, caught_by: set[str]
) -> None:
    target, shop, committed = finished_shop
    conn = offsetdb.connect(target)
    assert all(c.passed for c in orders.verify(conn, shop, committed))
    with offsetdb.connect(target, autocommit=True) as other:
        assert other.cursor().execute(tampering).rowcount == 1
    failed = {c.name for c in orders.verify(conn, shop, committed) if not c.passed}
    assert failed == caught_by
    conn.close()


def test_verifier_fails_when_the_clients_miscount_their_commits(
    finished_shop: tuple[str, Shop, int],
) -> None:
    target, shop, committed = finished_shop
    conn = offsetdb.connect(target)
    checks = orders.verify(conn, shop, committed + 1)
    assert {c.name for c in checks if not c.passed} == {"order rows == orders the clients saw committed"}
    conn.close()


# --- the order transaction under a forced collision ------------------------------------------


class _MeetBeforeWriting:
    """A connection whose first transaction waits, before its first write, until the other
    client has read too: both orders then read the same stock."""

    def __init__(self, conn: Any, barrier: threading.Barrier) -> None:
        self._conn = conn
        self._barrier = barrier
        self._met = False

    def cursor(self) -> Any:
        outer, inner = self, self._conn.cursor()

        class _Cursor:
            def execute(self, sql: str, params: Any = None) -> Any:
                if sql.startswith("UPDATE") and not outer._met:
                    outer._met = True
                    outer._barrier.wait()
                inner.execute(sql, params)
                return self

            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

        return _Cursor()

    def commit(self) -> None:
        self._conn.commit()

    def rollback(self) -> None:
        self._conn.rollback()


def two_colliding_orders(target: str) -> tuple[Shop, list[tuple[Outcome | None, int]]]:
    """Two customers buy the same mug, both reading the stock before either writes."""
    shop = Shop(
        products=[Product(1, "mug", 10, Decimal("4.50"))],
        customers=[Customer(1, "ada", Decimal("100.00")), Customer(2, "bob", Decimal("100.00"))],
        orders=[Order(1, 1, 1, 2), Order(2, 2, 1, 3)],
    )
    setup = offsetdb.connect(target)
    orders.create_shop(setup, shop)
    setup.close()
    barrier = threading.Barrier(2, timeout=60)
    results: list[Any] = [None, None]

    def client(i: int) -> None:
        conn = offsetdb.connect(target)
        try:
            meeting: Any = _MeetBeforeWriting(conn, barrier)
            results[i] = orders.place_with_retries(meeting, shop.orders[i], max_retries=5)
        except Exception as e:  # noqa: BLE001 - handed to the test thread
            results[i] = e
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for result in results:
        if isinstance(result, Exception):
            raise result
    return shop, results


def test_colliding_orders_one_retries_after_40001_and_the_books_balance(tmp_path: Path) -> None:
    target = str(tmp_path / "db")
    shop, results = two_colliding_orders(target)
    assert [outcome for outcome, _ in results] == [Outcome.PLACED, Outcome.PLACED]
    assert sorted(retries for _, retries in results) == [0, 1]
    conn = offsetdb.connect(target)
    assert conn.cursor().execute("SELECT stock FROM products").fetchall() == [(5,)]
    assert all(c.passed for c in orders.verify(conn, shop, committed=2))
    conn.close()


def test_verifier_catches_the_lost_update_when_certification_is_switched_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The applier's test-only switch: both orders commit from the same stale stock.
    monkeypatch.setenv("OFFSETDB_UNSAFE_SKIP_CERTIFICATION", "read-write,write-write")
    target = str(tmp_path / "db")
    shop, results = two_colliding_orders(target)
    assert results == [(Outcome.PLACED, 0), (Outcome.PLACED, 0)]
    conn = offsetdb.connect(target)
    assert conn.cursor().execute("SELECT stock FROM products").fetchall() in ([(8,)], [(7,)])
    failed = {c.name for c in orders.verify(conn, shop, committed=2) if not c.passed}
    assert failed == {"per product: initial stock == current stock + ordered quantity"}
    conn.close()


# --- real processes: the script, and offsetdb demo on Kafka ----------------------------------


def test_examples_orders_py_runs_as_a_script_into_a_fresh_temporary_directory() -> None:
    script = Path(__file__).parent.parent / "examples" / "orders.py"
    command = [sys.executable, str(script), "--orders", "60", "--clients", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    where = re.search(r"^offsetdb demo: an online shop in (\S+)$", done.stdout, re.M)
    assert where is not None, done.stdout
    directory = Path(where.group(1))
    assert directory.is_dir() and directory.name.startswith("offsetdb-demo-")
    assert done.stdout.rstrip().endswith("all checks passed")
    shutil.rmtree(directory)



def test_offsetdb_demo_on_kafka_exits_0_and_prints_every_check_passed(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    url = f"kafka://{kafka_broker.bootstrap}/t{uuid.uuid4().hex[:12]}"
    command = [
        sys.executable, "-m", "offsetdb.cli", "demo", url, "--data-dir", str(tmp_path / "replica"),
        "--orders", "120", "--clients", "3", "--products", "10", "--customers", "20",
        "--max-retries", "120",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    printed = done.stdout
    assert f"an online shop in {url}" in printed
    counts = {
        label: int(n.replace(",", ""))
        for label, n in re.findall(r"^  ([a-z][a-z ,()0-9]+?)\s+([\d,]+)$", printed, re.M)
    }
    assert (
        counts["placed"]
        + counts["rejected, out of stock"]
        + counts["rejected, insufficient funds"]
        + counts["gave up after 120 retries"]
        == 120
    ), printed
    assert "conflict retries (40001)" in counts
    for name in CHECK_NAMES:
        assert f"PASS  {name}" in printed
    assert "FAIL" not in printed
    assert printed.rstrip().endswith("all checks passed")
