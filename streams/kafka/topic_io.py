"""Producing and reading whole topics, for the CLI, the generator, the tools and the tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from leadstream.config.settings import Settings
from leadstream.errors import BrokerUnavailable
from leadstream.kafka.clients import make_consumer

__all__ = ["TopicTail", "committed_offsets", "consumer_lag", "consumer_lags", "produce_all", "read_topic"]


def produce_all(
    producer: Producer,
    records: Iterable[tuple[str, bytes | None, bytes | None] | tuple[str, bytes | None, bytes | None, int]],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Produce (topic, key, value[, timestamp ms]) records; wait until all are acknowledged."""
    failures: list[str] = []

    def on_delivery(err: object, _msg: Message) -> None:
        if err is not None:
            failures.append(str(err))

    count = 0
    for record in records:
        topic, key, value = record[0], record[1], record[2]
        while True:
            try:
                producer.produce(
                    topic,
                    value=value,
                    key=key,
                    on_delivery=on_delivery,
                    timestamp=record[3] if len(record) > 3 else 0,
                )
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                producer.poll(0.1)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
            if progress is not None:
                progress(count)
    remaining = producer.flush(60)
    if remaining or failures:
        raise BrokerUnavailable(f"{remaining} records undelivered, {len(failures)} failed: {failures[:3]}")
    return count


class TopicTail:
    """Reads a topic from its current end (or its beginning) without joining a consumer group."""

    def __init__(self, settings: Settings, topic: str, from_beginning: bool = False) -> None:
        self._consumer = make_consumer(settings, "leadstream-tail", **{"enable.partition.eof": False})
        try:
            metadata = self._consumer.list_topics(topic, timeout=15)
        except KafkaException as exc:
            raise BrokerUnavailable(f"cannot read topic {topic}: {exc}") from exc
        partitions = metadata.topics[topic].partitions
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        assignment = [TopicPartition(topic, p, start) for p in partitions]
        if not from_beginning:
            # Resolve the end offsets now, so records produced after this call are not missed.
            assignment = [TopicPartition(topic, tp.partition, self._end_offset(tp)) for tp in assignment]
        self._consumer.assign(assignment)

    def _end_offset(self, tp: TopicPartition) -> int:
        # A topic created a moment ago may not have elected its leaders yet.
        deadline = time.monotonic() + 15
        while True:
            try:
                return int(self._consumer.get_watermark_offsets(tp, timeout=5)[1])
            except KafkaException as exc:
                if time.monotonic() > deadline:
                    raise BrokerUnavailable(f"cannot read the end of {tp.topic}: {exc}") from exc
                time.sleep(0.2)

    def poll(self, until: float, wait_s: float = 0.5) -> Iterator[Message]:
        """Yield records until the monotonic deadline ``until``. A fetch returns once it holds
        500 records or after ``wait_s``: keep it short where arrival times are measured."""
        while time.monotonic() < until:
            batch = self._consumer.consume(500, timeout=min(wait_s, max(0.0, until - time.monotonic())))
            for message in batch:
                if message.error() is None:
                    yield message

    def read(self, count: int, timeout_s: float) -> list[Message]:
        """Collect ``count`` records, or as many as arrive within ``timeout_s``."""
        out: list[Message] = []
        for message in self.poll(time.monotonic() + timeout_s):
            out.append(message)
            if len(out) >= count:
                break
        return out

    def close(self) -> None:
        self._consumer.close()


def consumer_lag(settings: Settings, topics: Iterable[str], group: str | None = None) -> int:
    """Records in ``topics`` not yet committed by the consumer group (all of them if it never committed)."""
    return sum(consumer_lags(settings, topics, group).values())


def committed_offsets(
    settings: Settings, topics: Iterable[str], group: str | None = None
) -> dict[tuple[str, int], int]:
    """Per (topic, partition) of ``topics``: the consumer group's committed offset (negative: none)."""
    consumer = make_consumer(settings, group or settings.consumer_group)
    try:
        return {(tp.topic, tp.partition): tp.offset for tp in _committed(consumer, topics)}
    except KafkaException as exc:
        raise BrokerUnavailable(f"cannot read committed offsets: {exc}") from exc
    finally:
        consumer.close()


def _committed(consumer: Consumer, topics: Iterable[str]) -> list[TopicPartition]:
    partitions: list[TopicPartition] = []
    for topic in topics:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        partitions.extend(TopicPartition(topic, p) for p in metadata.partitions)
    return list(consumer.committed(partitions, timeout=10))


def consumer_lags(
    settings: Settings, topics: Iterable[str], group: str | None = None
) -> dict[tuple[str, int], int]:
    """Per (topic, partition): records not yet committed by the consumer group."""
    consumer = make_consumer(settings, group or settings.consumer_group)
    try:
        committed = _committed(consumer, topics)
        lags = {}
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            position = tp.offset if tp.offset >= 0 else low
            lags[(tp.topic, tp.partition)] = max(0, high - position)
        return lags
    except KafkaException as exc:
        raise BrokerUnavailable(f"cannot read consumer lag: {exc}") from exc
    finally:
        consumer.close()


def read_topic(settings: Settings, topic: str, settle_s: float = 2.0) -> list[dict[str, Any]]:
    """Every JSON record on ``topic`` from the beginning, until nothing new for ``settle_s``."""
    import json

    tail = TopicTail(settings, topic, from_beginning=True)
    out: list[dict[str, Any]] = []
    try:
        while True:
            batch = list(tail.poll(time.monotonic() + settle_s))
            if not batch:
                return out
            out.extend(json.loads(m.value() or b"{}") for m in batch)
    finally:
        tail.close()
