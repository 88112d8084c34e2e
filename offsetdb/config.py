"""Settings of an open database, with the defaults a user gets from ``connect(path)``."""

from __future__ import annotations

import getpass
import tomllib
from dataclasses import dataclass, field, fields
from typing import Any


def _default_principal() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): still a principal, just anonymous
        return "anonymous"


@dataclass(frozen=True)
class Config:
    """How a database is opened.

    Attributes:
        synchronous: ``"full"`` fsyncs every log append (survives power loss);
            ``"normal"`` writes without fsync (survives a process crash, as SQLite's
            ``synchronous=NORMAL``).
        certification_window: how many log offsets back a writing transaction's snapshot
            may lie. Older snapshots are refused at commit (SQLSTATE 72000). Every node
            applying the same log must use the same value, since it decides outcomes.
        autocommit_retries: how often an autocommit statement is retried after a
            serialization failure before the error reaches the caller.
        principal: the user name recorded in every transaction record.
        history_retention: how many offsets of superseded row versions are kept for
            reads at old snapshots before garbage collection may remove them.
        topic_prefix: (Kafka) the log of database ``db`` is the topic
            ``<topic_prefix>.<db>.log``.
        replication_factor: (Kafka) replicas of the log topic when this node creates it;
            None means min(3, brokers in the cluster).
        min_insync_replicas: (Kafka) the topic's ``min.insync.replicas`` when this node
            creates it; None means min(2, replication_factor).
        kafka_timeout: (Kafka) seconds a commit or ``sync()`` waits for the broker before
            failing with a connection error (08006, or 08007 when a commit's fate is open).
        kafka: (Kafka) librdkafka client settings passed through verbatim (SASL, TLS,
            timeouts); see :func:`offsetdb.kafka_log.client_settings` for the precedence
            of this, the config file and ``OFFSETDB_KAFKA_*`` environment variables.
        run_sources: whether this process runs the database's Kafka sources
            (docs/ingest.md); None: yes for an embedded database (the one process that
            has it open), no for a Kafka database (nodes opt in: ``--run-sources``).

    """

    synchronous: str = "full"
    certification_window: int = 100_000
    autocommit_retries: int = 20
    principal: str = field(default_factory=_default_principal)
    history_retention: int = 100_000
    topic_prefix: str = "offsetdb"
    replication_factor: int | None = None
    min_insync_replicas: int | None = None
    kafka_timeout: float = 30.0
    kafka: dict[str, str] = field(default_factory=dict)
    run_sources: bool | None = None

    def __post_init__(self) -> None:
        if self.synchronous not in ("full", "normal"):
            raise ValueError(f"synchronous must be 'full' or 'normal', not {self.synchronous!r}")
        if self.certification_window < 1:
            raise ValueError("certification_window must be at least 1")
        if self.kafka_timeout <= 0:
            raise ValueError("kafka_timeout must be a positive number of seconds")
        if not self.topic_prefix or "/" in self.topic_prefix:
            raise ValueError(f"topic_prefix must be a non-empty topic name part, not {self.topic_prefix!r}")


@dataclass(frozen=True)
class NodeConfig:
    """A node's config file: which database, where its replica lives, and its settings."""

    db: str | None
    data_dir: str | None
    settings: dict[str, Any]


def load_node_config(path: str) -> NodeConfig:
    """Read a TOML node config (see ``infra/node.toml``), naming any mistake in it.

    Top-level ``db`` and ``data_dir``; a ``[settings]`` table of :class:`Config` fields;
    a ``[kafka]`` table of client settings passed through to librdkafka.
    """
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except OSError as e:
        raise ValueError(f"cannot read config file {path}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"config file {path} is not valid TOML: {e}") from e
    unknown = set(document) - {"db", "data_dir", "settings", "kafka"}
    if unknown:
        raise ValueError(f"config file {path}: unknown key(s) {', '.join(sorted(unknown))}")
    settings = dict(document.get("settings", {}))
    known = {f.name for f in fields(Config)} - {"kafka"}
    unknown = set(settings) - known
    if unknown:
        raise ValueError(
            f"config file {path}: unknown setting(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(known))})"
        )
    kafka = document.get("kafka", {})
    if kafka:
        settings["kafka"] = {str(k): str(v) if not isinstance(v, bool) else str(v).lower() for k, v in kafka.items()}
    return NodeConfig(document.get("db"), document.get("data_dir"), settings)
