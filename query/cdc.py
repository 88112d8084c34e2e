"""Running the CDC publisher on a database: ``offsetdb.publish_changes`` and ``offsetdb cdc``.

The publisher (:mod:`offsetdb.materializers.publisher`) knows feeds, not databases; this
module opens the database (a node: an embedded directory, or a replica of a Kafka
database), and hands the publisher subscriptions of it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import Any

from offsetdb import errors
from offsetdb.kafka_log import client_settings, parse_url
from offsetdb.materializers.changes import SnapshotResume
from offsetdb.materializers.publisher import (
    Feed,
    Publisher,
    PublisherSettings,
    PublisherStats,
)
from offsetdb.progress import TerminalProgress
from offsetdb.query.driver import Connection, connect
from offsetdb.query.subscription import Subscription


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("offsetdb")
    except Exception:  # noqa: BLE001 - a source tree that is not installed
        return "unknown"


def publisher_for(
    conn: Connection,
    *,
    topic_prefix: str,
    bootstrap: str | None = None,
    tables: Collection[str] | None = None,
    publisher_id: str | None = None,
    snapshot: bool = True,
    from_offset: int | None = None,
    partitions: int = 1,
    heartbeat_interval: float = 5.0,
    max_batch_events: int = 20_000,
    kafka: dict[str, str] | None = None,
    format: str = "json",
    schema_registry: Any = None,
    on_commit: Callable[[PublisherStats], None] | None = None,
    show_progress: bool = False,
) -> Publisher:
    """A publisher of ``conn``'s database; run it with ``publisher.run(stop_event)``.

    ``bootstrap`` defaults to the database's own brokers (a ``kafka://`` database);
    ``kafka`` holds librdkafka settings, over those of ``OFFSETDB_KAFKA_*`` variables.
    ``format="avro"`` publishes Avro in the Confluent wire format; ``schema_registry``
    is then the registry: a URL (``http(s)://...``; ``mock://...`` is confluent-kafka's
    in-process registry, for tests), a confluent-kafka client configuration dict, or a
    ``SchemaRegistryClient``.
    """
    database = conn._check_open()
    target = database.kafka
    if bootstrap is None:
        if target is None:
            raise errors.InterfaceError(
                "an embedded database publishes to the Kafka brokers named by bootstrap "
                "(--kafka HOST:PORT at the command line)"
            )
        bootstrap = target.bootstrap
    name = target.database if target is not None else database.path.rstrip("/").rsplit("/", 1)[-1]
    settings = PublisherSettings(
        bootstrap=bootstrap,
        topic_prefix=topic_prefix,
        database=name,
        publisher_id=publisher_id,
        snapshot=snapshot,
        from_offset=from_offset,
        partitions=partitions,
        heartbeat_interval=heartbeat_interval,
        max_batch_events=max_batch_events,
        kafka=client_settings(kafka or database.config.kafka),
        timeout=database.config.kafka_timeout,
        version=_version(),
        format=format,
        schema_registry=schema_registry,
    )
    progress = TerminalProgress("publishing the snapshot", unit="rows") if show_progress else None

    def open_feed(from_offset: int | None, snapshot: bool, resume: SnapshotResume | None) -> Feed:
        return Subscription(
            database,
            tables,
            from_offset=from_offset,
            snapshot=snapshot,
            timeout=None,
            progress_interval=min(1.0, heartbeat_interval),
            snapshot_progress=progress,
            resume=resume,
        )

    return Publisher(settings, open_feed, on_commit=on_commit)


def publish_changes(
    target: str,
    *,
    topic_prefix: str,
    stop: threading.Event,
    data_dir: str | None = None,
    **options: Any,
) -> PublisherStats:
    """Open ``target`` and publish its changes to Kafka until ``stop`` is set.

    ``options`` are :func:`publisher_for`'s (``bootstrap``, ``tables``, ``snapshot``,
    ...). Returns what was published. Raises PublisherFenced when another publisher
    with the same id took over.
    """
    if target.startswith("kafka://") and data_dir is None and parse_url(target).data_dir is None:
        raise errors.InterfaceError("a kafka:// database needs data_dir, this node's replica")
    conn = connect(target, autocommit=True, data_dir=data_dir)
    try:
        publisher = publisher_for(conn, topic_prefix=topic_prefix, **options)
        publisher.run(stop)
        return publisher.stats
    finally:
        conn.close()
