"""confluent-kafka's ``mock://`` schema registry, shared between processes through a file.

No schema registry server can be installed here, so the tests use confluent-kafka's
in-process mock registry. Its schemas live in the client object; a publisher that runs
as a subprocess (the kill -9 tests) would register into a registry nobody else sees,
and a restarted one would hand out ids again from 1. A real registry is one shared,
durable service; this subclass gives the mock that property, and nothing else: every
registration is appended to a JSON file (under an exclusive lock) and every process
replays the file into its own mock store before answering, so ids mean the same
schema in every process, as they do with a real registry.

As a script, it runs the ``offsetdb`` command with ``mock://`` registries backed by a file::

    python shared_registry.py REGISTRY_FILE cdc URL ... --format avro --schema-registry mock://shared
"""

from __future__ import annotations

import contextlib
import faulthandler
import fcntl
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

# The mock's class is not exported; its module moved between confluent-kafka versions.
MockSchemaRegistryClient: Any = type(SchemaRegistryClient.new_client({"url": "mock://probe"}))


class FileBackedMockRegistry(MockSchemaRegistryClient):
    """The mock registry, its registrations replayed from and appended to ``path``."""

    def __init__(self, path: str | Path) -> None:
        super().__init__({"url": "mock://shared"})
        self._path = Path(path)
        self._replayed = 0

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[dict[str, Any]]]:
        with open(self._path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = json.loads(self._path.read_text()) if self._path.exists() else []
            for entry in entries[self._replayed :]:
                registered = super().register_schema_full_response(
                    entry["subject"], Schema(entry["schema"], "AVRO")
                )
                assert registered.schema_id == entry["id"], "the shared registry file is out of order"
                self._replayed += 1
            yield entries

    def register_schema_full_response(self, subject_name: str, schema: Schema, normalize_schemas: bool = False) -> Any:
        with self._locked() as entries:
            registered = super().register_schema_full_response(subject_name, schema, normalize_schemas)
            if registered.schema_id > len(entries):  # new: make it everyone's
                entries.append({"id": registered.schema_id, "subject": subject_name, "schema": schema.schema_str})
                # Whole or not at all: a publisher may be killed at any instant.
                partial = self._path.with_suffix(".partial")
                partial.write_text(json.dumps(entries))
                os.replace(partial, self._path)
                self._replayed += 1
            return registered

    def get_schema(self, schema_id: int, *args: Any, **kwargs: Any) -> Any:
        with self._locked():
            pass
        return super().get_schema(schema_id, *args, **kwargs)


def install(path: str | Path) -> None:
    """Make every ``mock://`` registry client of this process the file-backed one."""
    shared = FileBackedMockRegistry(path)
    original = SchemaRegistryClient.new_client

    def new_client(conf: dict[str, Any]) -> SchemaRegistryClient:
        if str(conf.get("url", "")).startswith("mock://"):
            return shared
        return original(conf)

    SchemaRegistryClient.new_client = staticmethod(new_client)


if __name__ == "__main__":
    # A publisher that lives long is a slow one: its stacks then land in its log, which a
    # failing test prints.
    faulthandler.dump_traceback_later(45, repeat=True)
    install(sys.argv[1])
    from offsetdb.cli import main

    sys.exit(main(sys.argv[2:]))
