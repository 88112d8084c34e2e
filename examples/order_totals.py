"""A faust-streaming agent: each customer's running order total, from the shop's CDC topic.

The orders demo (``offsetdb demo``, examples/orders.py) writes an ``orders`` table. Its
changes, published by ``offsetdb cdc`` as Debezium envelopes (docs/cdc.md), are a
stream any stream processor can follow; this agent keeps, per customer, the sum of their
orders' totals in a faust table (kept in Kafka as its changelog topic
``offsetdb-order-totals-customer_totals-changelog``) and serves them as JSON over HTTP::

    offsetdb demo ./shop                                         # the shop, its orders
    offsetdb cdc ./shop --kafka localhost:9092 --topic-prefix shop &
    pip install faust-streaming
    python -m offsetdb.examples.order_totals --kafka localhost:9092 --topic-prefix shop &
    curl localhost:6066/totals/                                  # {"1": "594.85", ...}

It applies each change the way a Debezium consumer does, not by adding up inserts: a
table of the orders it has seen (order id -> customer, total) takes the change's
``after`` (``c``, ``u``, ``r``: snapshot rows) or drops ``before`` (``d``), and a
customer's total moves by the difference. So updates, deletes, an order moved to another
customer, and a snapshot published again (a publisher that restarted its snapshot) all
leave the totals right, and a change delivered twice changes nothing the second time.

Order of changes matters (an update must follow its insert): the publisher's table
topics are keyed by primary key, so one order's changes stay in one partition, in
commit order. This agent runs one worker over the topic's partitions (the publisher
creates one unless ``--partitions`` says otherwise); with several workers, a customer's
orders would first have to be regrouped by customer (faust's ``group_by``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterable, Sequence
from decimal import Decimal
from typing import Any

#: Cents, so that sums stay exact (totals are NUMERIC(12,2), sent as text).
Cents = int


def cents(text: str) -> Cents:
    """A NUMERIC(12,2) value as Debezium sends it (text) in cents."""
    return int(Decimal(text) * 100)


def as_text(amount: Cents) -> str:
    """Cents as the decimal text a NUMERIC(12,2) prints."""
    return str(Decimal(amount).scaleb(-2).quantize(Decimal("0.01")))


def order_change(value: bytes | None) -> tuple[str, tuple[str, Cents] | None] | None:
    """(order id, its (customer, cents) now, or None when deleted) from a change envelope.

    None for what carries no row change: a tombstone, or a truncate event (DROP TABLE).
    """
    if not value:
        return None  # the tombstone after a delete
    change = json.loads(value)["payload"]
    op = change["op"]
    if op in ("c", "u", "r"):
        row = change["after"]
        return str(row["id"]), (str(row["customer_id"]), cents(row["total"]))
    if op == "d":
        return str(change["before"]["id"]), None
    return None


def make_app(
    bootstrap: str, topic_prefix: str, app_id: str = "offsetdb-order-totals", web_port: int = 6066
) -> Any:
    """The faust app: the agent over ``PREFIX.orders``, its tables, the ``/totals/`` page."""
    import faust

    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        topic_partitions=1,
        web_bind="127.0.0.1",
        web_port=web_port,
        consumer_auto_offset_reset="earliest",
    )
    changes = app.topic(f"{topic_prefix}.orders", key_serializer="raw", value_serializer="raw")
    # Keys are ids as text (faust's raw key serializer).
    # order id -> [customer id, cents]: the orders as the stream has shown them so far.
    orders = app.Table("orders")
    # customer id -> cents: the sum of their orders' totals.
    totals = app.Table("customer_totals", default=int)

    @app.agent(changes)
    async def keep_totals(stream: AsyncIterable[bytes | None]) -> None:
        async for value in stream:
            parsed = order_change(value)
            if parsed is None:
                continue
            order_id, now = parsed
            was = orders.get(order_id)
            if was == (list(now) if now else None):
                continue  # delivered again: nothing to do
            if was is not None:
                totals[was[0]] -= was[1]
            if now is not None:
                totals[now[0]] += now[1]
                orders[order_id] = list(now)
            else:
                orders.pop(order_id, None)

    @app.page("/totals/")
    async def show_totals(web: Any, request: Any) -> Any:
        return web.json({customer: as_text(amount) for customer, amount in totals.items()})

    return app


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m offsetdb.examples.order_totals --kafka HOST:PORT --topic-prefix PREFIX``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--kafka", required=True, metavar="HOST:PORT", help="the brokers of the CDC topics")
    parser.add_argument("--topic-prefix", required=True, metavar="PREFIX", help="offsetdb cdc's --topic-prefix")
    parser.add_argument("--app-id", default="offsetdb-order-totals", help="faust's app id (its consumer group)")
    parser.add_argument("--web-port", type=int, default=6066, help="port of the /totals/ page on 127.0.0.1 (default 6066)")
    parser.add_argument("--loglevel", default="info", help="faust's log level (default info)")
    args = parser.parse_args(argv)
    try:
        from faust import Worker
    except ImportError:
        print("this example needs faust-streaming: pip install faust-streaming", file=sys.stderr)
        return 2
    app = make_app(args.kafka, args.topic_prefix, args.app_id, args.web_port)
    worker = Worker(app, loglevel=args.loglevel)
    worker.execute_from_commandline()  # runs until SIGINT/SIGTERM, then exits the process
    return 0


if __name__ == "__main__":
    sys.exit(main())
