"""The key encoding sorts exactly as SQL values do, and decodes back to them."""

from __future__ import annotations

import datetime as dt
import decimal
import random

import pytest

from offsetdb.keys import decode_key, encode_key, hidden_row_key

rng = random.Random(7)


def random_values(kind: str, n: int = 300) -> list[object]:
    makers = {
        "int": lambda: rng.choice([0, 1, -1, 2**63 - 1, -(2**63)]) if rng.random() < 0.1 else rng.randint(-(10**12), 10**12),
        "float": lambda: rng.choice([0.0, -0.5, 1e308, -1e-308]) if rng.random() < 0.1 else rng.uniform(-1e6, 1e6),
        "decimal": lambda: decimal.Decimal(rng.randint(-(10**8), 10**8)).scaleb(rng.randint(-6, 6)),
        "text": lambda: "".join(rng.choice("a\x00bé ") for _ in range(rng.randint(0, 6))),
        "bytes": lambda: bytes(rng.choice([0, 1, 255, 65]) for _ in range(rng.randint(0, 5))),
        "date": lambda: dt.date(1970, 1, 1) + dt.timedelta(days=rng.randint(-50_000, 50_000)),
        "timestamp": lambda: dt.datetime(2000, 1, 1) + dt.timedelta(microseconds=rng.randint(-(10**15), 10**15)),
    }
    return [makers[kind]() for _ in range(n)]


@pytest.mark.parametrize("kind", ["int", "float", "decimal", "text", "bytes", "date", "timestamp"])
def test_byte_order_of_encoded_values_equals_value_order(kind: str) -> None:
    values = random_values(kind)
    by_value = sorted(values)  # type: ignore[type-var]
    by_key = sorted(values, key=lambda v: encode_key([v]))
    assert [encode_key([v]) for v in by_key] == [encode_key([v]) for v in by_value]
    for value in values:
        assert decode_key(encode_key([value])) == (value,)


def test_composite_keys_sort_column_by_column_and_none_is_a_prefix() -> None:
    pairs = [(rng.choice(["a", "ab", "b", ""]), rng.randint(-3, 3)) for _ in range(200)]
    assert sorted(pairs) == sorted(pairs, key=lambda p: encode_key(list(p)))
    keys = {encode_key(list(p)) for p in pairs}
    for a in keys:
        for b in keys:
            assert a == b or not b.startswith(a), "an encoded key must never prefix another"


def test_hidden_row_ids_sort_by_commit_offset_then_position() -> None:
    ids = [hidden_row_key(o, p) for o in (5, 6, 300) for p in (0, 1, 2)]
    assert ids == sorted(ids)
