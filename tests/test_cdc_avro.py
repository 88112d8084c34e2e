"""The CDC publisher in Avro (``--format avro``): confluent-kafka's AvroDeserializer reads it.

The schema registry is confluent-kafka's ``mock://`` one: no registry server can be
installed here. In one process the publisher and the consumer share the client object;
the kill -9 test runs the publisher as a subprocess, with the mock's registrations
shared through a file (shared_registry.py), as a real registry shares them.
Exactly-once is checked as in test_cdc_publisher.py: ABORT markers applied as Apache
Kafka's ``read_committed`` does (the test broker shows aborted records).
"""

from __future__ import annotations

import datetime
import io
import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from kafka_broker import Broker
from shared_registry import FileBackedMockRegistry
from test_cdc_publisher import Decode, _kill_rounds, read_topic, rebuild, wait_published

import offsetdb
from offsetdb import errors
from offsetdb.materializers.avro_envelope import AvroFormat, avro_name, connect_to_avro
from offsetdb.materializers.catalog import Column, TableDef
from offsetdb.materializers.envelope import connect_schemas
from offsetdb.materializers.publisher import PublisherSettings
from offsetdb.query.cdc import publisher_for
from offsetdb.schemas.confluent import SchemaRegistry
from offsetdb.types import Kind, SqlType

# Importing confluent-kafka's schema-registry client (httpx, authlib) adds ~1-2 s to a
# publisher's start on this machine: the kill window moves by as much, so that the
# publishers killed are as far into publishing as the JSON test's.
AVRO_WINDOW = (2.0, 4.5)
EPOCH = datetime.date(1970, 1, 1)
EPOCH_TS = datetime.datetime(1970, 1, 1)


def avro_decoders(client: Any) -> tuple[Decode, Decode]:
    """Key and value decoders as a Debezium-Avro consumer has them: confluent-kafka's AvroDeserializer.

    Values come back as ``{"payload": datum, "schema": writer schema name}`` so that the
    checks written for the JSON envelopes read them unchanged.
    """
    deserialize = AvroDeserializer(client)

    def key(topic: str, data: bytes) -> Any:
        if not data.startswith(b"\x00"):
            return None  # a progress record's key: the publisher id
        return deserialize(data, SerializationContext(topic, MessageField.KEY))

    def value(topic: str, data: bytes) -> Any:
        if topic.endswith(".progress"):
            return json.loads(data)  # the publisher's own state stays JSON
        schema = client.get_schema(int.from_bytes(data[1:5], "big"))
        return {
            "payload": deserialize(data, SerializationContext(topic, MessageField.VALUE)),
            "schema": json.loads(schema.schema_str),
        }

    return key, value


def expected(conn: Any, table: str, key_columns: list[str]) -> dict[str, dict[str, Any]]:
    """The table as Debezium's types hold it (NUMERIC text, DATE days, TIMESTAMP µs), by key."""
    cursor = conn.cursor()
    cursor.execute(f"SELECT * FROM {table}")
    names = [d[0] for d in cursor.description]
    out = {}
    for row in cursor.fetchall():
        record = dict(zip(names, row, strict=True))
        for name, value in record.items():
            if hasattr(value, "is_finite"):
                record[name] = str(value)
            elif isinstance(value, datetime.datetime):
                record[name] = (value - EPOCH_TS) // datetime.timedelta(microseconds=1)
            elif isinstance(value, datetime.date):
                record[name] = (value - EPOCH).days
        out[json.dumps({k: record[k] for k in key_columns}, sort_keys=True)] = record
    return out


def test_avro_consumers_reproduce_each_table_and_its_transactions(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    conn = offsetdb.connect(str(tmp_path / "db"), autocommit=True)
    cursor = conn.cursor()
    cursor.execute(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price NUMERIC(8,2), added DATE,"
        " seen TIMESTAMP, weight DOUBLE PRECISION, big BIGINT, ok BOOLEAN, blob BYTEA)"
    )
    cursor.execute('CREATE TABLE "Order Lines" (body TEXT)')  # no key, a name Avro cannot spell
    cursor.execute("CREATE TABLE gone (id INTEGER PRIMARY KEY)")
    cursor.executemany(
        "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (i, f"item {i}", i * 1.5, "2024-01-31", "2024-02-01 10:11:12.345678", i / 3, 2**40 + i, i % 2 == 0,
             bytes([i, 255]))
            for i in range(20)
        ],
    )  # fmt: skip
    cursor.execute("INSERT INTO items (id, name) VALUES (50, 'nulls')")
    registry = SchemaRegistryClient.new_client({"url": f"mock://{uuid.uuid4().hex}"})
    prefix = f"p{uuid.uuid4().hex[:8]}"
    publisher = publisher_for(
        conn, topic_prefix=prefix, bootstrap=kafka_broker.bootstrap, heartbeat_interval=0.3,
        format="avro", schema_registry=registry,
    )  # fmt: skip
    stop = threading.Event()
    thread = threading.Thread(target=publisher.run, args=(stop,))
    thread.start()
    try:
        wait_published(publisher, conn.last_commit_offset or 0)  # the snapshot is out
        cursor.execute("INSERT INTO gone VALUES (1)")
        cursor.execute("UPDATE items SET price = price + 1, weight = 'Infinity' WHERE id < 5")
        cursor.execute("DELETE FROM items WHERE id >= 15 AND id < 20")
        cursor.execute("UPDATE items SET id = 100 WHERE id = 7")  # a key change: d + tombstone + c
        cursor.execute("""INSERT INTO "Order Lines" VALUES ('a'), ('b')""")
        cursor.execute("BEGIN")
        cursor.execute("INSERT INTO items (id, name) VALUES (200, 'two')")
        cursor.execute("""INSERT INTO "Order Lines" VALUES ('c')""")
        cursor.execute("COMMIT")
        cursor.execute("DROP TABLE gone")
        end = conn.last_commit_offset
        assert end is not None
        wait_published(publisher, end)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()

    decode_key, decode_value = avro_decoders(registry)

    def read(topic: str) -> list[Any]:
        return read_topic(kafka_broker, topic, decode_key=decode_key, decode_value=decode_value)

    items = read(f"{prefix}.items")
    assert rebuild(items) == expected(conn, "items", ["id"])
    ops = [m[3]["payload"]["op"] for m in items if m[3] is not None]
    assert ops.count("r") == 21 and {"c", "u", "d"} <= set(ops)
    envelope = items[0][3]["schema"]
    assert (envelope["name"], envelope["namespace"]) == ("Envelope", f"{prefix}.items")
    assert envelope["connect.name"] == f"{prefix}.items.Envelope" and envelope["connect.version"] == 1
    key_change = [m for m in items if m[2] == {"id": 7}][-2:]
    assert key_change[0][3]["payload"]["op"] == "d" and key_change[1][3] is None  # then the tombstone
    source = items[-1][3]["payload"]["source"]
    assert source["connector"] == "offsetdb" and source["table"] == "items" and source["schema_version"] == 1

    lines = read(f"{prefix}.Order_Lines")
    assert sorted(m[3]["payload"]["after"]["body"] for m in lines) == ["a", "b", "c"]
    assert set(lines[0][2]) == {"rowid_offset", "rowid_position"}
    assert lines[0][3]["payload"]["source"]["table"] == "Order Lines"
    gone = read(f"{prefix}.gone")
    assert gone[-1][3]["payload"]["op"] == "t", "a DROP TABLE ends the table's stream"

    # Transaction metadata: BEGIN and END for each, END counting the events per table.
    events_by_txn: dict[str, int] = {}
    for messages in (items, lines, gone):
        for _, _, _, value in messages:
            if value is not None and value["payload"]["transaction"] is not None:
                txn = value["payload"]["transaction"]["id"]
                events_by_txn[txn] = events_by_txn.get(txn, 0) + 1
    metadata = [m[3]["payload"] for m in read(f"{prefix}.transaction")]
    begins = [p["id"] for p in metadata if p["status"] == "BEGIN"]
    ends = {p["id"]: p for p in metadata if p["status"] == "END"}
    assert begins == list(ends) and set(begins) == set(events_by_txn)
    for txn, count in events_by_txn.items():
        assert ends[txn]["event_count"] == count
    two_tables = [p for p in ends.values() if len(p["data_collections"]) == 2]
    assert {d["data_collection"] for d in two_tables[0]["data_collections"]} == {"items", "Order Lines"}

    # One subject per topic and per part, TopicNameStrategy.
    subjects = set(registry.get_subjects())
    for topic in ("items", "Order_Lines", "gone", "transaction"):
        assert {f"{prefix}.{topic}-key", f"{prefix}.{topic}-value"} <= subjects
    conn.close()


def test_the_avro_publisher_needs_a_registry_and_json_takes_none() -> None:
    with pytest.raises(errors.InterfaceError, match="needs a schema registry"):
        PublisherSettings(bootstrap="b:9092", topic_prefix="p", database="d", format="avro")
    with pytest.raises(errors.InterfaceError, match="avro format only"):
        PublisherSettings(bootstrap="b:9092", topic_prefix="p", database="d", schema_registry="mock://x")
    with pytest.raises(errors.InterfaceError, match="unknown CDC format 'xml'"):
        PublisherSettings(bootstrap="b:9092", topic_prefix="p", database="d", format="xml")


def test_offsetdb_cdc_avro_without_a_registry_is_refused_naming_the_option(tmp_path: Path) -> None:
    offsetdb.connect(str(tmp_path / "db")).close()
    done = subprocess.run(
        [sys.executable, "-m", "offsetdb.cli", "cdc", str(tmp_path / "db"), "--kafka", "127.0.0.1:1",
         "--topic-prefix", "p", "--format", "avro"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "the avro format needs a schema registry (--schema-registry URL)" in done.stderr


def test_avro_names_are_adjusted_and_colliding_columns_refused() -> None:
    assert avro_name("Order Lines") == "Order_Lines" and avro_name("2fa") == "_2fa"
    text = SqlType(Kind.TEXT)
    table = TableDef("t", (Column("id", SqlType(Kind.INTEGER), True), Column("unit price", text), Column("unit-price", text)), (0,))
    _, envelope = connect_schemas("p", table)
    with pytest.raises(errors.NotSupportedError, match="two fields map to the Avro name 'unit_price'") as raised:
        connect_to_avro(envelope)
    assert raised.value.sqlstate == "0A000"


def test_the_spliced_envelope_is_byte_for_byte_fastavros_encoding_of_the_whole_envelope() -> None:
    columns = (
        Column("id", SqlType(Kind.BIGINT), True), Column("n", SqlType(Kind.INTEGER)), Column("name", SqlType(Kind.TEXT)),
        Column("price", SqlType(Kind.NUMERIC)), Column("w", SqlType(Kind.DOUBLE)), Column("ok", SqlType(Kind.BOOLEAN)),
        Column("day", SqlType(Kind.DATE)), Column("at", SqlType(Kind.TIMESTAMP)), Column("blob", SqlType(Kind.BYTEA)),
        Column("must", SqlType(Kind.TEXT), True),
    )  # fmt: skip
    table = TableDef("t", columns, (0,), table_id=3, schema_version=2)
    registry = SchemaRegistry(f"mock://{uuid.uuid4().hex}")
    codec = AvroFormat(registry, "p", "db", "9.9").table_codec(table)
    whole = fastavro.parse_schema(codec.value_schema)
    names = [avro_name(c.name) for c in columns]
    rows = [
        (-(2**62), -1, "ünïcode ✓", "-12.50", float("inf"), True, -719162, -(2**40), b"\x00\xff", ""),
        (2**62, 2**31 - 1, None, None, None, None, None, None, None, "x" * 300),
        (0, 0, "", "0", -0.0, False, 0, 0, b"", "y"),
    ]
    for op, before, after, transaction, snapshot in [
        ("c", None, rows[0], ("txn-1", 1, 1), "false"), ("u", rows[0], rows[1], ("t" * 200, 300, 2**40), "false"),
        ("d", rows[1], None, ("x", 2, 2), "false"), ("r", None, rows[2], None, "first"), ("t", None, None, ("y", 9, 9), "false"),
    ]:  # fmt: skip
        source = {
            "version": "9.9", "connector": "offsetdb", "name": "p", "ts_ms": 1717171717123, "snapshot": snapshot,
            "db": "db", "sequence": None, "table": "t", "offset": 12345678901, "txId": None if transaction is None else transaction[0],
            "schema_version": 2,
        }  # fmt: skip
        expected = io.BytesIO()
        fastavro.schemaless_writer(expected, whole, {
            "before": None if before is None else dict(zip(names, before, strict=True)),
            "after": None if after is None else dict(zip(names, after, strict=True)),
            "source": source, "op": op, "ts_ms": 1717171717123,
            "transaction": None if transaction is None else dict(zip(("id", "total_order", "data_collection_order"), transaction, strict=True)),
        })  # fmt: skip
        encoded = codec.value(
            op, before, after, codec.source(1717171717123, snapshot, 12345678901, source["txId"]), 1717171717123, transaction
        )
        assert encoded[5:] == expected.getvalue(), op
        assert encoded[:5] == b"\x00" + registry.register("p.t-value", codec.value_schema).to_bytes(4, "big")


def test_publisher_killed_at_random_moments_publishes_avro_exactly_once(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    registry_file = tmp_path / "registry.json"
    decode_key, decode_value = avro_decoders(FileBackedMockRegistry(registry_file))
    _kill_rounds(kafka_broker, tmp_path, rounds=2, avro=(registry_file, decode_key, decode_value), window=AVRO_WINDOW)


@pytest.mark.slow
def test_publisher_killed_many_times_publishes_avro_exactly_once(
    kafka_broker: Broker, kafka_settings: dict[str, str], tmp_path: Path
) -> None:
    registry_file = tmp_path / "registry.json"
    decode_key, decode_value = avro_decoders(FileBackedMockRegistry(registry_file))
    # 12 rounds of the wider window write as long a log as the JSON test's 25: past that,
    # a publisher opening the database spends minutes re-reading the log on the test
    # broker (its fetch cost grows with the partition, kafka-compatibility.md).
    _kill_rounds(kafka_broker, tmp_path, rounds=12, avro=(registry_file, decode_key, decode_value), window=AVRO_WINDOW)
