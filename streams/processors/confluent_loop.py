"""The scoring worker as a plain confluent-kafka loop: the alternative to the faust agent.

librdkafka fetches and decodes in C threads; the loop hands batches of raw records to the same
pipeline the faust agent uses, commits a batch's offsets only after the pipeline returned (state
committed, outputs acknowledged), and ticks the timer service between batches. Selected with
``LEADSTREAM_WORKER_ENGINE=confluent``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from config.settings import Settings
from streams.errors import BrokerUnavailable
from streams.processors.faust_app import BatchProcessor
from streams.records import SourceRecord
from streams.topics import kafka_client_config

logger = logging.getLogger(__name__)


async def run_loop(settings: Settings, processor: BatchProcessor, tick: Any, clock: Any) -> None:
    consumer = Consumer(
        {
            **kafka_client_config(settings),
            "group.id": settings.consumer_group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            "fetch.min.bytes": 1,
            "queued.max.messages.kbytes": 65536,
        }
    )
    consumer.subscribe(list(settings.topics.inputs()))
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    next_tick = 0.0
    logger.info("confluent worker consuming %s", ", ".join(settings.topics.inputs()))

    def fetch() -> Any:
        return loop.run_in_executor(None, consumer.consume, settings.batch_max, settings.batch_within_s)

    try:
        pending = fetch()
        while not stopping.is_set():
            messages = await pending
            # librdkafka fetches the next batch while this one is scored: the I/O overlaps the CPU.
            pending = fetch()
            batch = [_record(m) for m in messages if m.error() is None]
            if batch:
                await processor.process(batch)
                _commit(consumer, batch)
            if time.monotonic() >= next_tick:
                await tick(clock.now(time.time()))
                next_tick = time.monotonic() + settings.timer_interval_s
        await pending  # its records were not processed: the next owner consumes them again
    except KafkaException as exc:
        raise BrokerUnavailable(f"consumer failed: {exc}") from exc
    finally:
        consumer.close()


def _commit(consumer: Consumer, batch: list[SourceRecord]) -> None:
    """Commit the batch's offsets. A partition revoked meanwhile cannot be committed: its new owner
    consumes those records again, which processing makes harmless (watermarks, compare-and-set)."""
    offsets: dict[tuple[str, int], int] = {}
    for record in batch:
        offsets[(record.topic, record.partition)] = record.offset + 1
    try:
        consumer.commit(
            offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False
        )
    except KafkaException as exc:
        logger.warning("offset commit failed (%s); the records will be consumed again", exc)


def _record(message: Any) -> SourceRecord:
    kind, stamp = message.timestamp()
    return SourceRecord(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        value=message.value(),
        key=message.key(),
        timestamp_ms=stamp if kind != 0 else None,
        headers=tuple((k, v or b"") for k, v in (message.headers() or ())),
    )
