"""The Confluent Avro wire format helper (schemas/confluent.py) against confluent-kafka's own serdes.

The registry is confluent-kafka's ``mock://`` one (in-process): no schema registry
server can be installed here. The point of these tests is that what offsetdb writes,
confluent-kafka's ``AvroDeserializer`` reads, and what its ``AvroSerializer`` writes,
offsetdb reads.
"""

from __future__ import annotations

import json
import uuid

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from offsetdb import errors
from offsetdb.schemas.confluent import (
    AvroDecoder,
    AvroEncoder,
    SchemaRegistry,
    SchemaRejected,
    registry_client,
    schema_id_of,
    value_subject,
)

MockRegistry = type(SchemaRegistryClient.new_client({"url": "mock://probe"}))
ORDER = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "customer", "type": "string"},
        {"name": "total", "type": ["null", "double"], "default": None},
        {"name": "paid", "type": "boolean"},
        {"name": "blob", "type": ["null", "bytes"], "default": None},
    ],
}
ROWS = [
    {"id": 1, "customer": "ada", "total": 12.5, "paid": True, "blob": None},
    {"id": 2**40, "customer": "bøb", "total": None, "paid": False, "blob": b"\x00\xff"},
]


def registry() -> SchemaRegistry:
    return SchemaRegistry(f"mock://{uuid.uuid4().hex}")


def test_confluent_avro_deserializer_reads_what_the_encoder_writes() -> None:
    reg = registry()
    encoder = AvroEncoder(reg, value_subject("orders"), ORDER)
    deserialize = AvroDeserializer(reg.client)
    context = SerializationContext("orders", MessageField.VALUE)
    messages = [encoder(row) for row in ROWS]
    assert all(m[0] == 0 and schema_id_of(m) == encoder.schema_id for m in messages)
    assert [deserialize(m, context) for m in messages] == ROWS
    latest = reg.client.get_latest_version("orders-value")
    assert latest.schema_id == encoder.schema_id


def test_the_decoder_reads_what_confluent_avro_serializer_writes() -> None:
    reg = registry()
    serializer = AvroSerializer(reg.client, json.dumps(ORDER))
    context = SerializationContext("orders", MessageField.VALUE)
    decode = AvroDecoder(reg)
    assert [decode(serializer(row, context)) for row in ROWS] == ROWS


def test_registering_again_keeps_the_id_and_a_new_schema_gets_a_new_version() -> None:
    reg = registry()
    first = AvroEncoder(reg, "t-value", ORDER)
    assert AvroEncoder(reg, "t-value", ORDER).schema_id == first.schema_id
    widened = {**ORDER, "fields": [*ORDER["fields"], {"name": "note", "type": ["null", "string"], "default": None}]}
    second = AvroEncoder(reg, "t-value", widened)
    assert second.schema_id != first.schema_id
    versions = reg.client.get_versions("t-value")
    assert len(versions) == 2


def test_a_reader_schema_resolves_data_of_older_writer_schemas() -> None:
    reg = registry()
    old = AvroEncoder(reg, "t-value", ORDER)
    widened = {**ORDER, "fields": [*ORDER["fields"], {"name": "note", "type": ["null", "string"], "default": None}]}
    decode = AvroDecoder(reg, reader_schema=widened)
    assert decode(old(ROWS[0])) == {**ROWS[0], "note": None}


def test_bad_messages_are_refused_with_22P03_naming_the_problem() -> None:
    reg = registry()
    decode = AvroDecoder(reg)
    good = AvroEncoder(reg, "t-value", ORDER)(ROWS[0])
    with pytest.raises(errors.DataError, match="not in the Confluent Avro wire format") as raised:
        decode(b'{"id": 1}')
    assert raised.value.sqlstate == "22P03"
    with pytest.raises(errors.DataError, match="schema id 999 is not in the schema registry"):
        decode(b"\x00\x00\x00\x03\xe7" + good[5:])
    with pytest.raises(errors.DataError, match="bytes past its Avro datum"):
        decode(good + b"\x00")
    with pytest.raises(errors.DataError, match="does not decode"):
        decode(good[:7])


def test_a_registry_url_must_name_a_scheme() -> None:
    with pytest.raises(errors.InterfaceError, match="must start with http://, https:// or mock://"):
        registry_client("localhost:8081")


class RefusingRegistry(MockRegistry):
    """The mock registry, answering registrations as a registry does that refuses them."""

    def __init__(self, failure: Exception) -> None:
        super().__init__({"url": "mock://refusing"})
        self.failure = failure

    def register_schema_full_response(self, *args: object, **kwargs: object) -> object:
        raise self.failure


def test_a_refused_schema_is_55000_and_an_unreachable_registry_08006_naming_the_subject() -> None:
    incompatible = SchemaRegistryError(409, 409, "Schema being registered is incompatible with an earlier schema")
    with pytest.raises(SchemaRejected, match="registering a schema under subject shop.t-value") as refused:
        AvroEncoder(SchemaRegistry(RefusingRegistry(incompatible)), "shop.t-value", ORDER)
    assert refused.value.sqlstate == "55000" and "incompatible" in str(refused.value)
    with pytest.raises(errors.ConnectionFailure, match="could not be reached to register subject shop.t-value") as down:
        AvroEncoder(SchemaRegistry(RefusingRegistry(ConnectionRefusedError(111, "Connection refused"))), "shop.t-value", ORDER)
    assert down.value.sqlstate == "08006"
