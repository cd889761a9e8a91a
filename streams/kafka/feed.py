"""What a worker engine tells the watermarks about its partitions (see engine/eventtime/watermarks.py).

Both engines give their consumer's assignment; the rest comes from the admin API: the
partitions' high watermarks (read actively, stamped with the moment the request was sent, never
the consumer's cached values, which go stale while a broker is away), the group's committed
offsets (where a newly assigned partition starts) and the list of every input partition.

A caught-up claim says "every record appended before this moment has been read". After Kafka was
unreachable or slow, producers deliver records they held back, stamped with the time they were
produced; claims made in that window would let an account move past them, so high watermarks
read within ``watermark_outage_recovery_s`` of an outage are not taken.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence

from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, KafkaError, TopicPartition
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from leadstream.config.settings import Settings
from leadstream.kafka.clients import make_admin

__all__ = ["HIGHS_EVERY_S", "METADATA_EVERY_S", "SLOW_READ_S", "HighsRead", "KafkaFeed"]

logger = logging.getLogger(__name__)
METADATA_EVERY_S = 30.0
HIGHS_EVERY_S = 0.25  # how often the high watermarks are read (a live point waits about this more)
# high watermarks by partition, the wall time the request was sent, how long it took
HighsRead = tuple[dict[tuple[str, int], int], float, float]
SLOW_READ_S = 2.0  # a read that took longer met a broker in trouble: an outage


class KafkaFeed:
    def __init__(
        self,
        settings: Settings,
        assignment: Callable[[], Iterable[tuple[str, int]]],
    ) -> None:
        self._settings = settings
        self._assignment = assignment
        self._admin = make_admin(settings, error_cb=self._kafka_error)
        self._assigned: list[tuple[str, int]] = []
        self._highs: dict[tuple[str, int], tuple[int, float]] = {}
        self._reading: asyncio.Future[HighsRead] | None = None
        self._committing: asyncio.Future[dict[tuple[str, int], int]] | None = None
        self._next_highs = 0.0
        self._disturbed = False  # a transport error since the last read
        self._trust_from = 0.0  # reads sent before this moment are not taken (an outage's recovery)
        self._starting: dict[tuple[str, int], int] = {}
        self._expected: list[str] | None = None
        self._next_metadata = 0.0
        self._next_offsets = 0.0

    def assigned(self) -> Sequence[tuple[str, int]]:
        return self._assigned

    def high_watermark(self, topic: str, partition: int) -> tuple[int, float] | None:
        return self._highs.get((topic, partition))

    def _kafka_error(self, error: KafkaError) -> None:
        self._disturbed = True

    def starting_offset(self, topic: str, partition: int) -> int | None:
        return self._starting.get((topic, partition))

    def expected(self) -> Sequence[str] | None:
        return self._expected

    async def refresh(self) -> None:
        """Follow the assignment (cheap when it did not change); now and then, the topics."""
        loop = asyncio.get_running_loop()
        inputs = set(self._settings.topics.inputs())  # faust also holds its own internal topic
        current = sorted({tp for tp in self._assignment() if tp[0] in inputs})
        self._assigned = current
        for gone in set(self._starting) - set(current):
            del self._starting[gone]
        self._read_committed(loop, [tp for tp in current if tp not in self._starting])
        self._read_highs(loop)
        if time.monotonic() >= self._next_metadata:
            self._next_metadata = time.monotonic() + METADATA_EVERY_S
            expected = await loop.run_in_executor(None, self._partitions)
            if expected is not None:
                self._expected = expected

    def _read_committed(self, loop: asyncio.AbstractEventLoop, missing: list[tuple[str, int]]) -> None:
        """Where newly assigned partitions start, read in the background: a coordinator that
        answers slowly after a broker restart must not hold the batches up."""
        reading = self._committing
        if reading is not None:
            if not reading.done():
                return
            self._committing = None
            found = reading.result() if reading.exception() is None else {}
            self._starting.update((tp, offset) for tp, offset in found.items() if tp in self._assigned)
            if not found:
                self._next_offsets = time.monotonic() + 2.0
            missing = [tp for tp in missing if tp not in self._starting]
        if missing and time.monotonic() >= self._next_offsets:
            self._committing = loop.run_in_executor(None, self._committed, missing)

    def _read_highs(self, loop: asyncio.AbstractEventLoop) -> None:
        """Take the last read's answer if it is in; start the next one when due (in the
        background: a broker away must not hold the batches up)."""
        self._admin.poll(0)  # serves error_cb
        reading = self._reading
        if reading is not None:
            if not reading.done():
                return
            self._reading = None
            self._took(reading)
        now = time.monotonic()
        if now >= self._next_highs and self._assigned:
            self._next_highs = now + HIGHS_EVERY_S
            self._reading = loop.run_in_executor(None, self._list_highs, list(self._assigned))

    def _took(self, reading: asyncio.Future[HighsRead]) -> None:
        exc = reading.exception()
        recovery = self._settings.watermark_outage_recovery_s
        if exc is not None:
            if self._trust_from != math.inf:
                logger.warning(
                    "cannot read the input partitions' high watermarks (%r): accounts wait for "
                    "Kafka to come back",
                    exc,
                )
            self._trust_from = math.inf  # until a read succeeds again
            self._disturbed = False
            return
        highs, sent, took = reading.result()
        if self._disturbed or took > SLOW_READ_S or self._trust_from == math.inf:
            self._trust_from = time.time() + recovery
            self._disturbed = False
            logger.warning(
                "Kafka was unreachable or slow; records producers held back may still arrive, so "
                "partitions count as caught up again in %.0f s (watermark_outage_recovery_s)",
                recovery,
            )
        if sent < self._trust_from:
            return
        for tp, high in highs.items():
            self._highs[tp] = (high, sent)
        for gone in set(self._highs) - set(self._assigned):
            del self._highs[gone]

    def _list_highs(self, partitions: list[tuple[str, int]]) -> HighsRead:
        """The partitions' high watermarks (as a read-committed consumer sees them), the wall time
        the request was sent (everything appended before it is below them) and how long it took."""
        sent = time.time()
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        futures = self._admin.list_offsets(
            {TopicPartition(t, p): latest for t, p in partitions},
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=10,
        )
        highs = {(tp.topic, tp.partition): f.result(timeout=15).offset for tp, f in futures.items()}
        return highs, sent, time.time() - sent

    def _committed(self, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Where the group resumes each partition: its committed offset, else the log start."""
        group = self._settings.consumer_group
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, p in partitions])
        out: dict[tuple[str, int], int] = {}
        try:
            answer = self._admin.list_consumer_group_offsets([request])[group].result(timeout=10)
            missing = []
            for tp in answer.topic_partitions:
                if tp.offset >= 0:
                    out[(tp.topic, tp.partition)] = tp.offset
                else:
                    missing.append(TopicPartition(tp.topic, tp.partition))
            if missing:
                earliest = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
                starts = self._admin.list_offsets({tp: earliest for tp in missing})
                for tp, future in starts.items():
                    out[(tp.topic, tp.partition)] = future.result(timeout=10).offset
        except Exception as exc:  # KafkaException, or a timeout while the broker is away
            logger.warning("could not read the group's committed offsets (%r); retrying shortly", exc)
            return {}
        return out

    def _partitions(self) -> list[str] | None:
        try:
            metadata = self._admin.list_topics(timeout=10)
        except Exception as exc:  # KafkaException, or a timeout while the broker is away
            logger.warning("could not read topic metadata (%r); retrying shortly", exc)
            self._next_metadata = time.monotonic() + 2.0
            return None
        out: list[str] = []
        for topic in self._settings.topics.inputs():
            described = metadata.topics.get(topic)
            if described is None or described.error is not None:
                continue
            out.extend(f"{topic}:{p}" for p in described.partitions)
        return out
