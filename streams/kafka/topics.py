"""Creating leadstream's topics with the Kafka admin API, idempotently."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from leadstream.config.settings import Settings
from leadstream.errors import BrokerUnavailable, ConfigurationError
from leadstream.kafka.clients import make_admin, require_kafka

__all__ = ["ensure_topics", "uneven_inputs"]

logger = logging.getLogger(__name__)


def ensure_topics(settings: Settings, timeout_s: float = 30.0, create: bool | None = None) -> list[str]:
    """Create every leadstream topic that does not exist yet; return the names created. Without
    ``create`` (default: ``LEADSTREAM_CREATE_TOPICS``) a missing topic is an error naming it."""
    require_kafka(settings)
    admin = make_admin(settings)
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise BrokerUnavailable(
            f"cannot reach Kafka at {settings.kafka_bootstrap_servers}: {exc}. "
            "Start the local stack with scripts/stack up, or set LEADSTREAM_KAFKA_BOOTSTRAP_SERVERS."
        ) from exc
    existing = set(metadata.topics)
    topics = settings.topics
    uneven = uneven_inputs({n: len(t.partitions) for n, t in metadata.topics.items()}, topics.inputs())
    if uneven:
        logger.warning(
            "the input topics have different partition counts (%s): a contact's events, keyed "
            "alike, land on different partition numbers, so different workers read them and a "
            "decision can be published before an earlier event from another topic is read. Give "
            "them the same count (kafka-topics.sh --alter --partitions N; new topics get "
            "LEADSTREAM_TOPIC_PARTITIONS)",
            uneven,
        )
    wanted = [
        *topics.inputs(),
        topics.handoffs,
        topics.dead_letters,
        topics.lifecycle,
        topics.assignments,
        topics.models,
        topics.erasures,
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
    if not (settings.create_topics if create is None else create):
        raise ConfigurationError(
            f"topics missing: {', '.join(t.topic for t in missing)}. LEADSTREAM_CREATE_TOPICS is off: have "
            "them created by an admin (`leadstream topics` with credentials that may create topics), or "
            "allow this process to create them"
        )
    created = []
    for name, future in admin.create_topics(missing, operation_timeout=timeout_s).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:  # a concurrent worker won
                continue
            if exc.args and exc.args[0].code() in (
                KafkaError.TOPIC_AUTHORIZATION_FAILED,
                KafkaError.CLUSTER_AUTHORIZATION_FAILED,
            ):
                raise ConfigurationError(
                    f"Kafka does not allow user {settings.kafka_sasl_username or 'ANONYMOUS'!r} to create "
                    f"topic "
                    f"{name}: create the topics with an admin's credentials (`leadstream topics`), then run "
                    "this with LEADSTREAM_CREATE_TOPICS=false"
                ) from exc
            raise BrokerUnavailable(f"creating topic {name} failed: {exc}") from exc
    logger.info("created topics %s", ", ".join(created))
    return created


def uneven_inputs(partitions: dict[str, int], inputs: Iterable[str]) -> str:
    """``topic count, ...`` when the existing input topics do not all have the same number of
    partitions (the workers' range assignment keeps a contact's topics together only if they
    do), else ``""``."""
    counts = {name: partitions[name] for name in inputs if name in partitions}
    if len(set(counts.values())) <= 1:
        return ""
    return ", ".join(f"{name} {count}" for name, count in counts.items())
