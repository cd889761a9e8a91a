"""Creating leadstream's topics with the Kafka admin API, idempotently."""

from __future__ import annotations

import logging
import re
import socket
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from leadstream.config.settings import Settings
from leadstream.errors import BrokerUnavailable

__all__ = ["ensure_topics", "kafka_client_config", "librdkafka_logger", "require_kafka"]

logger = logging.getLogger(__name__)


class _RepeatsDropped(logging.Filter):
    """librdkafka retries a refused connection every few tens of milliseconds and logs each try
    (hundreds of identical lines while a broker restarts): one line per distinct message a minute
    is what an operator can read."""

    def __init__(self, every_s: float = 60.0) -> None:
        super().__init__()
        self._every_s = every_s
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        # Client names and timings ("consumer-89", "after 0ms") differ between repeats.
        shape = re.sub(r"\d+", "#", record.getMessage())
        now = time.monotonic()
        if now - self._last.get(shape, -self._every_s) < self._every_s:
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[shape] = now
        return True


librdkafka_logger = logging.getLogger("leadstream.librdkafka")
librdkafka_logger.addFilter(_RepeatsDropped())


def kafka_client_config(settings: Settings) -> dict[str, Any]:
    """librdkafka configuration for ``settings`` (shared by admin, producers and consumers); the
    client's own log goes through Python logging, repeats dropped."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
        "logger": librdkafka_logger,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username:
        config["sasl.username"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password:
        config["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    return config


def require_kafka(settings: Settings, timeout_s: float = 3.0) -> None:
    """Fail fast, in one line, when no bootstrap server accepts a connection (the client itself
    would retry for half a minute, logging every attempt)."""
    servers = [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]
    problems = []
    for server in servers:
        address = server.split("://", 1)[-1]
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=timeout_s):
                return
        except (OSError, ValueError) as exc:
            problems.append(f"{server}: {getattr(exc, 'strerror', None) or exc}")
    raise BrokerUnavailable(
        f"cannot reach Kafka ({'; '.join(problems) or 'no bootstrap servers'}). Start the local stack "
        "with scripts/stack up, or set LEADSTREAM_KAFKA_BOOTSTRAP_SERVERS."
    )


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create every leadstream topic that does not exist yet; return the names created."""
    require_kafka(settings)
    admin = AdminClient(kafka_client_config(settings))
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise BrokerUnavailable(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}. "
            "Start the local stack with scripts/stack up, or set LEADSTREAM_KAFKA_BOOTSTRAP_SERVERS."
        ) from exc
    topics = settings.topics
    wanted = [
        *topics.inputs(),
        topics.handoffs,
        topics.dead_letters,
        topics.lifecycle,
        topics.assignments,
        topics.models,
        f"{topics.handoffs}.shadow",  # a shadow model's would-be handoffs (engine/shadow.py)
    ]
    missing = [
        NewTopic(
            name,
            # The registry is read whole, in order, by every worker: one partition.
            1 if name == topics.models else settings.topic_partitions,
            settings.topic_replication_factor,
            # The accounts topic holds the latest firmographics per account, the registry the
            # latest record per key: compacted.
            config={"cleanup.policy": "compact"} if name in (topics.accounts, topics.models) else {},
        )
        for name in dict.fromkeys(wanted)
        if name not in existing
    ]
    if not missing:
        return []
    created = []
    for name, future in admin.create_topics(missing, operation_timeout=timeout_s).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:  # a concurrent worker won
                continue
            raise BrokerUnavailable(f"creating topic {name} failed: {exc}") from exc
    logger.info("created topics %s", ", ".join(created))
    return created
