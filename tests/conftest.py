"""Shared fixtures.

``db_target`` is how a test names a database to ``offsetdb.connect``; tests written
against it form the contract suite, run once per backend in ``BACKENDS``. The Kafka
backend joins this list when it lands, with a broker fixture behind it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Test helper modules (storage_helpers, crash_worker) import by their plain names.
sys.path.insert(0, str(Path(__file__).parent))

BACKENDS = ["embedded"]


@pytest.fixture(params=BACKENDS)
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database for ``offsetdb.connect``, on each backend in turn."""
    if request.param == "embedded":
        return str(tmp_path / "db")
    raise AssertionError(f"no fixture for backend {request.param!r}")
