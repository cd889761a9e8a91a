"""What a worker engine tells the watermarks about its partitions (see streams/watermarks.py).

Both engines give their consumer's assignment and cached high watermarks (refreshed by the
client's background fetches); the group's committed offsets, where a newly assigned partition
starts, and the list of every input partition come from the admin API.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from config.settings import Settings
from streams.topics import kafka_client_config

logger = logging.getLogger(__name__)
METADATA_EVERY_S = 30.0


class KafkaFeed:
    def __init__(
        self,
        settings: Settings,
        assignment: Callable[[], Iterable[tuple[str, int]]],
        high: Callable[[str, int], tuple[int, float] | None],
        fetch_margin_s: float,
    ) -> None:
        """``high``: a partition's cached high watermark and the wall time it was read;
        ``fetch_margin_s``: how much older than that moment the client's cached value can be (its
        longest fetch wait plus a round trip)."""
        self._settings = settings
        self._assignment = assignment
        self._high = high
        self._margin = fetch_margin_s
        self._admin = AdminClient(kafka_client_config(settings))
        self._assigned: list[tuple[str, int]] = []
        self._starting: dict[tuple[str, int], int] = {}
        self._expected: list[str] | None = None
        self._next_metadata = 0.0
        self._next_offsets = 0.0

    def assigned(self) -> Sequence[tuple[str, int]]:
        return self._assigned

    def high_watermark(self, topic: str, partition: int) -> tuple[int, float] | None:
        try:
            read = self._high(topic, partition)
        except Exception:  # not fetched yet, or the partition just moved away
            return None
        if read is None or read[0] < 0:
            return None
        return read[0], read[1] - self._margin

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
        missing = [tp for tp in current if tp not in self._starting]
        if missing and time.monotonic() >= self._next_offsets:
            found = await loop.run_in_executor(None, self._committed, missing)
            self._starting.update(found)
            if len(found) < len(missing):
                self._next_offsets = time.monotonic() + 2.0
        if time.monotonic() >= self._next_metadata:
            self._next_metadata = time.monotonic() + METADATA_EVERY_S
            expected = await loop.run_in_executor(None, self._partitions)
            if expected is not None:
                self._expected = expected

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
