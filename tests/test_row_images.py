"""Row images: the generated encoder writes exactly fastavro's bytes, and refuses bad values."""

from __future__ import annotations

import random

import pytest

from offsetdb import errors
from offsetdb.materializers.catalog import Column, TableDef
from offsetdb.schemas.codec import decode_images, encode_images, encode_images_fastavro
from offsetdb.types import Kind, SqlType


def _value(kind: Kind, rng: random.Random) -> object:
    if kind in (Kind.INTEGER, Kind.DATE):
        return rng.choice([0, -1, 1, 8191, -8192, 8192, 2**31 - 1, -(2**31), rng.randint(-5000, 5000)])
    if kind in (Kind.BIGINT, Kind.TIMESTAMP):
        return rng.choice([0, 2**63 - 1, -(2**63), 8191, -8192, 8192, rng.randint(-(10**15), 10**15)])
    if kind in (Kind.DOUBLE, Kind.REAL):
        return rng.choice([0.0, -0.0, 1.5, float("inf"), float("-inf"), rng.random()])
    if kind in (Kind.NUMERIC, Kind.TEXT, Kind.VARCHAR):
        return rng.choice(["", "é€😀", "x" * 300, "-12.50"])
    if kind is Kind.BOOLEAN:
        return rng.choice([True, False])
    return rng.choice([b"", b"\x00\xff", bytes(range(256))])


def _table() -> TableDef:
    kinds = list(Kind) * 2
    columns = tuple(Column(f"c{i}", SqlType(k), not_null=i % 2 == 0) for i, k in enumerate(kinds))
    return TableDef("every_type", columns, table_id=7)


@pytest.mark.parametrize("count", [0, 1, 63, 64, 500])
def test_generated_encoder_writes_fastavros_bytes_for_every_type(count: int) -> None:
    rng = random.Random(count)
    table = _table()
    rows = [
        tuple(None if not c.not_null and rng.random() < 0.3 else _value(c.type.kind, rng) for c in table.columns)
        for _ in range(count)
    ]
    encoded = encode_images(table, rows)
    assert encoded == encode_images_fastavro(table, rows)
    assert decode_images(table, encoded) == rows


@pytest.mark.parametrize(
    ("kind", "value"),
    [(Kind.INTEGER, 2**31), (Kind.BIGINT, 2**63), (Kind.INTEGER, True), (Kind.TEXT, b"x"),
     (Kind.DOUBLE, 1), (Kind.BOOLEAN, 1), (Kind.BYTEA, "x")],
)  # fmt: skip
def test_a_value_of_the_wrong_type_never_reaches_the_log(kind: Kind, value: object) -> None:
    table = TableDef("t", (Column("v", SqlType(kind), not_null=True),), table_id=9)
    with pytest.raises(errors.InternalError, match='column "v"'):
        encode_images(table, [(value,)])


def test_the_unrolled_varint_equals_the_reference_loop() -> None:
    from offsetdb.schemas.codec import _long, _zigzag

    rng = random.Random(3)
    values = [0, 1, -1, 63, 64, -64, -65, 8191, 8192, -8193, 2**20, 2**27, 2**28, 2**35, 2**55, 2**56, 2**62, 2**63 - 1, -(2**63)]
    values += [rng.randint(-(2**63), 2**63 - 1) >> rng.randint(0, 63) for _ in range(50_000)]
    for value in values:
        assert _long(value) == _zigzag(value), value
