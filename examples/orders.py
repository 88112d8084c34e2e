"""An online shop under concurrent orders: the order workflow as a worked example.

Run it with ``offsetdb demo [TARGET]`` or ``python examples/orders.py [TARGET]`` (the
same code). TARGET is a directory for the embedded backend (default: a fresh temporary
one) or ``kafka://host:port/db`` with ``--data-dir DIR`` for this node's replica.

The shop has products (stock and price), customers (a balance) and orders. Several
clients, each a thread with its own connection, place orders at the same time. Each
order is one transaction (:func:`place_order`)::

    read the product's stock and price, and the customer's balance
    stock or funds short?  ROLLBACK: the order is rejected
    otherwise:             write the new stock and balance, insert the order, COMMIT

Transactions are SERIALIZABLE, so when two orders that touch the same product or the
same customer overlap, the one that commits second fails with SQLSTATE 40001 and
nothing it wrote is applied; it is simply run again from the start
(:func:`place_with_retries`). Afterwards the program queries the database to show that
nothing was lost or invented (:func:`verify`): no stock below zero, every unit that left
the shelf accounted for by an order row, every cent charged accounted for by an order
total.

The file reads top-down: the shop's data, the order transaction, the clients, and
then, apart from the workflow, the verification and the report.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, TextIO

import offsetdb
from offsetdb import errors
from offsetdb.progress import TerminalProgress

if TYPE_CHECKING:
    from offsetdb import Connection

#: Opens a new connection to the shop's database (one per client thread).
Connect = Callable[[], "Connection"]

# --- the shop ------------------------------------------------------------------------------

SCHEMA = [
    """CREATE TABLE products (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        stock INTEGER NOT NULL,
        price NUMERIC(12,2) NOT NULL
    )""",
    """CREATE TABLE customers (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        balance NUMERIC(12,2) NOT NULL
    )""",
    """CREATE TABLE orders (
        id BIGINT PRIMARY KEY,
        customer_id INTEGER NOT NULL,
        product_id INTEGER NOT NULL,
        quantity INTEGER NOT NULL,
        total NUMERIC(12,2) NOT NULL
    )""",
]

PRODUCT_NAMES = [
    "espresso beans", "green tea", "teapot", "mug", "grinder", "kettle", "filter papers",
    "french press", "milk frother", "scale", "cocoa", "biscotti",
]  # fmt: skip


@dataclass(frozen=True)
class Product:
    """A product on sale: how many are in stock, and the unit price."""

    id: int
    name: str
    stock: int
    price: Decimal


@dataclass(frozen=True)
class Customer:
    """A customer account and the money in it."""

    id: int
    name: str
    balance: Decimal


@dataclass(frozen=True)
class Order:
    """An order a client will try to place; ``id`` becomes the order row's key."""

    id: int
    customer_id: int
    product_id: int
    quantity: int


@dataclass(frozen=True)
class Sizes:
    """How big a run is. The defaults take a few seconds on the embedded backend."""

    orders: int = 3000
    clients: int = 4
    products: int = 20
    customers: int = 50
    seed: int = 1
    max_retries: int = 20


@dataclass(frozen=True)
class Shop:
    """The initial inventory and accounts, and the orders the clients will place."""

    products: list[Product]
    customers: list[Customer]
    orders: list[Order]


def make_shop(sizes: Sizes) -> Shop:
    """The products, customers and orders of a run, all drawn from ``sizes.seed``.

    Demand is skewed (a few products get most orders, so clients collide on them), and
    stock and balances are set around what the orders would need: most products cannot
    serve every order for them, and about half the customers cannot pay for everything
    they try to buy.
    """
    rng = random.Random(sizes.seed)
    product_ids = range(1, sizes.products + 1)
    customer_ids = range(1, sizes.customers + 1)
    prices = {p: Decimal(rng.randint(150, 4000)) / 100 for p in product_ids}
    popularity = [1 / rank**1.2 for rank in product_ids]  # Zipf-like: product 1 is wanted most
    orders = [
        Order(
            n, rng.choice(customer_ids), rng.choices(product_ids, popularity)[0], rng.randint(1, 3)
        )
        for n in range(1, sizes.orders + 1)
    ]
    demand = dict.fromkeys(product_ids, 0)
    spend = dict.fromkeys(customer_ids, Decimal(0))
    for order in orders:
        demand[order.product_id] += order.quantity
        spend[order.customer_id] += prices[order.product_id] * order.quantity
    products = [
        Product(p, _product_name(p), round(demand[p] * rng.uniform(0.4, 1.3)), prices[p])
        for p in product_ids
    ]
    customers = [
        Customer(
            c,
            f"customer-{c:03d}",
            (spend[c] * Decimal(rng.uniform(0.4, 1.6))).quantize(Decimal("0.01")),
        )
        for c in customer_ids
    ]
    return Shop(products, customers, orders)


def _product_name(product_id: int) -> str:
    name = PRODUCT_NAMES[(product_id - 1) % len(PRODUCT_NAMES)]
    series = (product_id - 1) // len(PRODUCT_NAMES)
    return name if series == 0 else f"{name} #{series + 1}"


def create_shop(conn: Connection, shop: Shop) -> None:
    """Create the tables and fill in the products and customers."""
    cur = conn.cursor()
    for statement in SCHEMA:
        cur.execute(statement)
    conn.commit()
    cur.executemany(
        "INSERT INTO products (id, name, stock, price) VALUES (?, ?, ?, ?)",
        [(p.id, p.name, p.stock, p.price) for p in shop.products],
    )
    cur.executemany(
        "INSERT INTO customers (id, name, balance) VALUES (?, ?, ?)",
        [(c.id, c.name, c.balance) for c in shop.customers],
    )
    conn.commit()


# --- one order: one transaction -------------------------------------------------------------


class Outcome(Enum):
    """What became of an order."""

    PLACED = "placed"
    OUT_OF_STOCK = "rejected, out of stock"
    INSUFFICIENT_FUNDS = "rejected, insufficient funds"


def place_order(conn: Connection, order: Order) -> Outcome:
    """Place ``order`` as one transaction on ``conn`` (not in autocommit mode).

    Raises SerializationFailure (SQLSTATE 40001) from ``commit()`` when a concurrent
    order changed a row this one read; nothing of this transaction is then applied.
    """
    cur = conn.cursor()
    cur.execute("SELECT stock, price FROM products WHERE id = ?", (order.product_id,))
    [(stock, price)] = cur.fetchall()  # one row: id is the primary key
    cur.execute("SELECT balance FROM customers WHERE id = ?", (order.customer_id,))
    [(balance,)] = cur.fetchall()
    total = price * order.quantity  # Decimal: NUMERIC values come back exact
    if stock < order.quantity:
        conn.rollback()
        return Outcome.OUT_OF_STOCK
    if balance < total:
        conn.rollback()
        return Outcome.INSUFFICIENT_FUNDS
    # The new values are computed here from what was read. That is safe only because
    # the transaction is SERIALIZABLE: had another order changed either row since we
    # read it, COMMIT fails with 40001 instead of silently losing that order's update.
    cur.execute(
        "UPDATE products SET stock = ? WHERE id = ?", (stock - order.quantity, order.product_id)
    )
    cur.execute(
        "UPDATE customers SET balance = ? WHERE id = ?", (balance - total, order.customer_id)
    )
    cur.execute(
        "INSERT INTO orders (id, customer_id, product_id, quantity, total) VALUES (?, ?, ?, ?, ?)",
        (order.id, order.customer_id, order.product_id, order.quantity, total),
    )
    conn.commit()
    return Outcome.PLACED


def place_with_retries(
    conn: Connection, order: Order, max_retries: int
) -> tuple[Outcome | None, int]:
    """Run :func:`place_order`, again from the start after each conflict (40001).

    Returns the outcome (None: still conflicting after ``max_retries`` retries, so the
    client gave up) and how many retries it took.
    """
    for attempt in range(max_retries + 1):
        try:
            return place_order(conn, order), attempt
        except errors.Error as e:
            conn.rollback()
            if e.sqlstate != "40001":
                raise
            # A short random pause, so that the clients that just collided do not run
            # into each other again in lockstep.
            time.sleep(random.uniform(0, 0.0005 * 2 ** min(attempt, 6)))
    return None, max_retries


# --- the clients ----------------------------------------------------------------------------


@dataclass
class Tally:
    """What one client saw."""

    done: int = 0
    outcomes: Counter[Outcome | None] = field(default_factory=Counter)  # None: gave up
    retries: int = 0
    error: Exception | None = None


def run_client(connect: Connect, orders: Sequence[Order], max_retries: int, tally: Tally) -> None:
    """One client: its own connection, placing its orders one after another."""
    try:
        with closing(connect()) as conn:
            for order in orders:
                outcome, retries = place_with_retries(conn, order, max_retries)
                tally.outcomes[outcome] += 1
                tally.retries += retries
                tally.done += 1
    except Exception as e:  # reported with the results, and the run then fails
        tally.error = e


def run_clients(
    connect: Connect, orders: Sequence[Order], sizes: Sizes
) -> tuple[list[Tally], float]:
    """Share ``orders`` among ``sizes.clients`` threads; their tallies, and the seconds taken."""
    tallies = [Tally() for _ in range(sizes.clients)]
    threads = [
        threading.Thread(
            target=run_client,
            args=(connect, orders[i :: sizes.clients], sizes.max_retries, tallies[i]),
            name=f"client-{i + 1}",
        )
        for i in range(sizes.clients)
    ]
    progress = TerminalProgress("placing orders", min_seconds=0.5, unit="orders")
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.2)
            progress(sum(t.done for t in tallies), len(orders), time.monotonic() - started)
    seconds = time.monotonic() - started
    progress.finish()
    return tallies, seconds


# --- verification: what the database holds afterwards ---------------------------------------


@dataclass(frozen=True)
class Check:
    """One verified property of the final state."""

    name: str
    passed: bool
    detail: str


def verify(conn: Connection, shop: Shop, committed: int) -> list[Check]:
    """Query the database and check the shop's invariants against the initial data.

    ``committed`` is how many orders the clients saw commit. Every query runs in one
    read-only transaction, so they all see the same snapshot.
    """
    cur = conn.cursor()

    def value(sql: str) -> Any:
        [(result,)] = cur.execute(sql).fetchall()
        return result

    def pairs(sql: str) -> dict[Any, Any]:
        return dict(cur.execute(sql).fetchall())

    negative_stock = value("SELECT count(*) FROM products WHERE stock < 0")
    negative_balance = value("SELECT count(*) FROM customers WHERE balance < 0")
    stock = pairs("SELECT id, stock FROM products")
    sold = pairs("SELECT product_id, sum(quantity) FROM orders GROUP BY product_id")
    balance = pairs("SELECT id, balance FROM customers")
    spent = pairs("SELECT customer_id, sum(total) FROM orders GROUP BY customer_id")
    total_balance = value("SELECT coalesce(sum(balance), 0) FROM customers")
    total_charged = value("SELECT coalesce(sum(total), 0) FROM orders")
    order_rows = value("SELECT count(*) FROM orders")
    conn.rollback()

    stock_off = [p.id for p in shop.products if stock.get(p.id, -1) + sold.get(p.id, 0) != p.stock]
    money_off = [
        c.id for c in shop.customers if balance.get(c.id, 0) + spent.get(c.id, 0) != c.balance
    ]
    initial_total = sum((c.balance for c in shop.customers), Decimal(0))
    return [
        Check("no product's stock is negative", negative_stock == 0, f"{negative_stock} negative"),
        Check(
            "no customer's balance is negative",
            negative_balance == 0,
            f"{negative_balance} negative",
        ),
        Check(
            "per product: initial stock == current stock + ordered quantity",
            not stock_off,
            f"{len(shop.products) - len(stock_off)} of {len(shop.products)} products add up"
            + (f"; not: {_ids(stock_off)}" if stock_off else ""),
        ),
        Check(
            "money conserved: initial balances == current balances + order totals",
            initial_total == total_balance + total_charged,
            f"{initial_total:,} {'==' if initial_total == total_balance + total_charged else '!='} "
            f"{total_balance:,} + {total_charged:,}",
        ),
        Check(
            "per customer: initial balance == current balance + their order totals",
            not money_off,
            f"{len(shop.customers) - len(money_off)} of {len(shop.customers)} customers add up"
            + (f"; not: {_ids(money_off)}" if money_off else ""),
        ),
        Check(
            "order rows == orders the clients saw committed",
            order_rows == committed,
            f"{order_rows:,} rows, {committed:,} committed",
        ),
    ]


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:10])) + (", ..." if len(ids) > 10 else "")


# --- the run and its report ------------------------------------------------------------------


@dataclass
class Report:
    """What a run did, and what verification found."""

    orders: int
    placed: int
    rejected_stock: int
    rejected_funds: int
    gave_up: int
    retries: int
    seconds: float
    checks: list[Check]
    client_errors: list[str]

    @property
    def ok(self) -> bool:
        """Every client finished and every check passed."""
        return not self.client_errors and all(check.passed for check in self.checks)


def run(connect: Connect, sizes: Sizes, where: str, out: TextIO | None = None) -> Report:
    """Create the shop, run the clients, verify; print it all to ``out`` (default stdout).

    ``connect()`` opens a connection to the (empty) database named by ``where``.
    """
    out = out or sys.stdout
    shop = make_shop(sizes)
    with closing(connect()) as conn:
        try:
            create_shop(conn, shop)
        except errors.DuplicateTable as e:
            raise errors.DuplicateTable(f"{e}: the demo needs an empty database") from e
    print(f"offsetdb demo: an online shop in {where}", file=out)
    print(
        f"{sizes.products} products, {sizes.customers} customers; {sizes.orders:,} orders "
        f"from {sizes.clients} clients (seed {sizes.seed})",
        file=out,
        flush=True,
    )
    tallies, seconds = run_clients(connect, shop.orders, sizes)

    def total(outcome: Outcome | None) -> int:
        return sum(t.outcomes[outcome] for t in tallies)

    placed = total(Outcome.PLACED)
    with closing(connect()) as conn:
        checks = verify(conn, shop, placed)
    report = Report(
        orders=sizes.orders,
        placed=placed,
        rejected_stock=total(Outcome.OUT_OF_STOCK),
        rejected_funds=total(Outcome.INSUFFICIENT_FUNDS),
        gave_up=total(None),
        retries=sum(t.retries for t in tallies),
        seconds=seconds,
        checks=checks,
        client_errors=[
            f"client {i + 1} stopped after {t.done} orders: "
            f"ERROR {getattr(t.error, 'sqlstate', 'XX000')}: {t.error}"
            for i, t in enumerate(tallies)
            if t.error is not None
        ],
    )
    print_report(report, sizes, out)
    return report


def print_report(report: Report, sizes: Sizes, out: TextIO) -> None:
    """Print the counts, the throughput and each check with its result."""
    rate = report.orders / report.seconds if report.seconds > 0 else 0.0
    commits = report.placed / report.seconds if report.seconds > 0 else 0.0
    rows = [
        (Outcome.PLACED.value, report.placed),
        (Outcome.OUT_OF_STOCK.value, report.rejected_stock),
        (Outcome.INSUFFICIENT_FUNDS.value, report.rejected_funds),
        (f"gave up after {sizes.max_retries} retries", report.gave_up),
        ("conflict retries (40001)", report.retries),
    ]
    print(f"\n{report.orders:,} orders in {report.seconds:.2f} s:", end=" ", file=out)
    print(f"{rate:,.0f} orders/s, {commits:,.0f} commits/s", file=out)
    for label, count in rows:
        print(f"  {label:<30} {count:>7,}", file=out)
    for error in report.client_errors:
        print(f"  {error}", file=out)
    print("\nverification, queried from the database:", file=out)
    for check in report.checks:
        print(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}  ({check.detail})", file=out)
    print("all checks passed" if report.ok else "FAILED", file=out, flush=True)


# --- command line ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the run's size options (``--orders``, ``--clients``, ...) to ``parser``."""
    defaults = Sizes()
    for name, help_text in [
        ("orders", "orders to place"),
        ("clients", "client threads, each with its own connection"),
        ("products", "products in the shop"),
        ("customers", "customer accounts"),
        ("seed", "random seed for the shop's data and orders"),
        ("max-retries", "retries of an order after conflicts before giving up"),
    ]:
        default = getattr(defaults, name.replace("-", "_"))
        parser.add_argument(
            f"--{name}",
            type=int,
            default=default,
            metavar="N",
            help=f"{help_text} (default {default})",
        )


def sizes_from_args(args: argparse.Namespace) -> Sizes:
    """The :class:`Sizes` that parsed :func:`add_arguments` options name."""
    sizes = Sizes(
        args.orders, args.clients, args.products, args.customers, args.seed, args.max_retries
    )
    if (
        min(sizes.orders, sizes.clients, sizes.products, sizes.customers) < 1
        or sizes.max_retries < 0
    ):
        raise ValueError(
            "--orders, --clients, --products and --customers must be at least 1, "
            "--max-retries at least 0"
        )
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    """``python examples/orders.py [TARGET] [--data-dir DIR] [--orders N] ...``; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument(
        "target",
        nargs="?",
        metavar="TARGET",
        help="an empty data directory or a kafka://host:port/db URL "
        "(default: a fresh temporary directory)",
    )
    parser.add_argument(
        "--data-dir", metavar="DIR", help="with a kafka:// URL: this node's replica directory"
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        sizes = sizes_from_args(args)
    except ValueError as e:
        parser.error(str(e))
    target = args.target or tempfile.mkdtemp(prefix="offsetdb-demo-")
    try:
        report = run(lambda: offsetdb.connect(target, data_dir=args.data_dir), sizes, where=target)
    except errors.Error as e:
        print(f"ERROR {e.sqlstate}: {e}", file=sys.stderr)
        return 1
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
