"""The faust application: one agent over the input topics, consuming in batches.

Values stay raw bytes: decoding is ours, so an undecodable record can be dead-lettered with its
original bytes instead of crashing faust's deserializer.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faust
from aiokafka import TopicPartition

from leadstream.config.settings import Settings
from leadstream.engine.eventtime.watermarks import PartitionProgress
from leadstream.engine.ports import BatchProcessor
from leadstream.engine.records import SourceRecord
from leadstream.kafka.alignment import EventTimeAlignment, keep_in_step
from leadstream.kafka.clients import kafka_ssl_context
from leadstream.kafka.faust_batches import ready_batches
from leadstream.kafka.feed import KafkaFeed
from leadstream.kafka.rebalances import count_rebalance
from leadstream.kafka.unreadable import tolerate_unreadable_batches

__all__ = ["attach_batch_agent", "attach_timer", "faust_feed", "make_app"]

logger = logging.getLogger(__name__)


def make_app(settings: Settings) -> faust.App:
    """A faust app for ``settings``; nothing connects until the worker starts."""
    tolerate_unreadable_batches()
    app = faust.App(
        settings.consumer_group,
        broker=[f"kafka://{s.strip()}" for s in settings.kafka_bootstrap_servers.split(",")],
        broker_credentials=_credentials(settings),
        # A stray BROKER_URL in the environment would otherwise override the broker above.
        env_prefix="LEADSTREAM_FAUST_",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        # faust keeps table data in "<app id>-data" under the working directory by default; we
        # hold no faust tables, so keep its empty directories out of the user's checkout.
        datadir=str(Path(tempfile.gettempdir()) / "leadstream-faust-{conf.name}"),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        stream_buffer_maxsize=max(4096, settings.batch_max * 4),
        # 256 KB a partition a fetch (faust's default is 1 MB): a worker reads a few MB/s at most,
        # and every assigned partition's fetch is held in memory at once.
        consumer_max_fetch_size=256 * 1024,
        # A batch can block on Redis or Kafka while they recover; that is not a hang.
        stream_processing_timeout=600.0,
        # Static membership: a worker restarted within the session timeout gets its partitions
        # back without a rebalance (faust's assignor is eager: a rebalance stops every worker).
        consumer_group_instance_id=settings.instance_id,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 4),
        # Without the right to create topics, faust must neither declare ours nor make its
        # leader topic (we never use faust's leader election).
        topic_allow_declare=settings.create_topics,
        topic_disable_leader=not settings.create_topics,
    )
    _log_rebalances(app)
    return app


def _log_rebalances(app: faust.App) -> None:
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def revoked(app: faust.App, revoked: Any, **_kwargs: Any) -> None:
        count_rebalance("revoked")
        logger.info("partitions revoked: %s", _names(revoked))

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def assigned(app: faust.App, assigned: Any, **_kwargs: Any) -> None:
        count_rebalance("assigned")
        logger.info("partitions assigned: %s", _names(assigned))


def _names(partitions: Any) -> str:
    return ", ".join(sorted(f"{tp.topic}:{tp.partition}" for tp in partitions)) or "none"


def faust_feed(app: faust.App, settings: Settings) -> KafkaFeed:
    """The faust consumer's partitions for the watermarks."""

    def assignment() -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in app.consumer.assignment()]

    return KafkaFeed(settings, assignment)


def attach_batch_agent(
    app: faust.App,
    settings: Settings,
    processor: BatchProcessor,
    feed: KafkaFeed | None = None,
    progress: Callable[[], list[PartitionProgress]] | None = None,
) -> Any:
    """Subscribe ``processor`` to the input topics in batches (faust_batches.py): each batch is
    what arrived while the last one was processed, acknowledged only after the loop body returns,
    so offsets are committed only for batches whose state writes and outputs are done
    (at-least-once). ``progress``: this worker's partitions' progress, to read them in step in
    event time (kafka/alignment.py) after each batch."""
    topic = app.topic(*settings.topics.inputs(), key_serializer="raw", value_serializer="raw")
    alignment = EventTimeAlignment(settings.partition_alignment_s)

    async def score_events(stream: Any) -> None:
        async for events in ready_batches(stream, settings.batch_max, settings.batch_within_s):
            if feed is not None:
                await feed.refresh()
            await processor.process([_source_record(event) for event in events])
            if progress is not None:
                await _align(app, alignment, progress())

    return app.agent(topic, name="leadstream.score_events")(score_events)


async def _align(app: faust.App, alignment: EventTimeAlignment, progress: list[PartitionProgress]) -> None:
    """Pause and resume partitions in the aiokafka consumer under faust, in its own thread.

    Not faust's ``pause_partitions``: that only stops handing over records, and records already
    fetched for a partition it pauses are skipped and never handed over (faust seeks back only
    around a rebalance), so they would wait for a restart. aiokafka's pause drops a paused
    partition's fetched, unread records without moving its position, and fetches them again on
    resume. A rebalance makes fresh, unpaused partition states, so pauses are asserted again
    after every batch while any are held."""
    resume: list[tuple[str, int]] = []
    # New pauses need no list of their own: every held partition is paused below.
    keep_in_step(alignment, progress, lambda _new: None, resume.extend)
    if not (alignment.paused or resume):
        return
    held = [TopicPartition(t, int(p)) for t, p in (n.rsplit(":", 1) for n in alignment.paused)]
    freed = [TopicPartition(t, p) for t, p in resume]

    async def in_consumer_thread() -> None:
        consumer = thread._ensure_consumer()
        assigned = consumer.assignment()  # a partition revoked meanwhile is not ours to pause
        consumer.pause(*(tp for tp in held if tp in assigned))
        consumer.resume(*(tp for tp in freed if tp in assigned))

    thread: Any = app.consumer._thread  # type: ignore[attr-defined]  # faust's aiokafka driver
    await thread.call_thread(in_consumer_thread)


def attach_timer(app: faust.App, interval_s: float, tick: Any, name: str) -> Any:
    """Run ``tick(now)`` every ``interval_s`` seconds on the worker (wall clock)."""

    async def run_tick() -> None:
        await tick(time.time())

    return app.timer(interval=interval_s, name=f"leadstream.{name}")(run_tick)


def _source_record(event: Any) -> SourceRecord:
    message = event.message
    timestamp = message.timestamp
    return SourceRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        value=message.value,
        key=message.key,
        timestamp_ms=int(timestamp * 1000) if timestamp else None,
        headers=tuple((k, v if isinstance(v, bytes) else b"") for k, v in (message.headers or ())),
    )


def _credentials(settings: Settings) -> Any:
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    if settings.kafka_security_protocol == "SSL":
        return faust.SSLCredentials(kafka_ssl_context(settings))
    if settings.kafka_sasl_username is None or settings.kafka_sasl_password is None:
        raise ValueError("SASL needs LEADSTREAM_KAFKA_SASL_USERNAME and LEADSTREAM_KAFKA_SASL_PASSWORD")
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        mechanism=settings.kafka_sasl_mechanism or "PLAIN",
        ssl_context=kafka_ssl_context(settings) if settings.kafka_security_protocol == "SASL_SSL" else None,
    )
