"""Watermarks in Redis: every worker's partition progress in one hash, read and written per batch."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from redis.exceptions import RedisError

from leadstream.engine.eventtime.watermarks import NEVER, PartitionFeed, PartitionProgress, ReleaseBound
from leadstream.state.redis_failures import redis_failed

__all__ = ["RedisWatermarks", "stream_clock"]

logger = logging.getLogger(__name__)


class RedisWatermarks:
    """The progress this process makes on its partitions, published to a Redis hash that every
    worker reads to bound its accounts (see engine/eventtime/watermarks.py)."""

    def __init__(self, client: Any, key: str, lateness_s: float, grace_s: float, shard_topic: str) -> None:
        self._redis = client
        self._key = key
        self._lateness = lateness_s
        self._grace = grace_s
        self._shard_topic = shard_topic
        self._feed: PartitionFeed | None = None
        self._event_times: dict[str, float] = {}
        self._offsets: dict[str, int] = {}
        self._staged: tuple[dict[str, float], dict[str, int]] = ({}, {})
        self._table: dict[str, PartitionProgress] = {}

    def attach(self, feed: PartitionFeed) -> None:
        """The engine's view of its partitions; until attached this process owns none."""
        self._feed = feed

    def observe(self, event_times: Mapping[str, float], offsets: Mapping[str, int]) -> None:
        self._staged = (dict(event_times), dict(offsets))

    def settle(self) -> None:
        """The batch's account snapshots are committed: its progress can be published."""
        event_times, offsets = self._staged
        for name, at in event_times.items():
            self._event_times[name] = max(at, self._event_times.get(name, NEVER))
        for name, offset in offsets.items():
            self._offsets[name] = max(offset, self._offsets.get(name, -1))
        self._staged = ({}, {})

    def discard(self) -> None:
        """The batch failed before its snapshots reached their accounts: it is processed again."""
        self._staged = ({}, {})

    def _own(self, staged: bool = False) -> list[PartitionProgress]:
        feed = self._feed
        if feed is None:
            return []
        event_times, offsets = self._staged if staged else ({}, {})
        out = []
        for topic, partition in feed.assigned():
            name = f"{topic}:{partition}"
            held = self._table.get(name)
            start = feed.starting_offset(topic, partition)
            # Whoever owned the partition before (this process before a restart, or another
            # worker) published how far it had processed: its effects are in Redis, so that
            # counts as processed here too, should the group's committed offset be unreadable.
            processed = max(
                self._offsets.get(name, -1),
                offsets.get(name, -1),
                -1 if start is None else start,
                held.processed if held else -1,
            )
            high = feed.high_watermark(topic, partition)
            out.append(
                PartitionProgress(
                    name,
                    max(
                        self._event_times.get(name, NEVER),
                        event_times.get(name, NEVER),
                        held.max_event_time if held else NEVER,
                    ),
                    processed,
                    high[0] if high else -1,
                    high[1] if high else NEVER,
                )
            )
        return out

    def own_progress(self) -> list[PartitionProgress]:
        """The partitions this process owns, as far as it has processed them (kafka/alignment.py)."""
        return self._own()

    async def bound(self) -> ReleaseBound:
        try:
            raw = await self._redis.hgetall(self._key)
        except RedisError as exc:
            raise redis_failed("reading the watermarks", exc) from exc
        self._table = {}
        for field, value in raw.items():
            name = field.decode()
            try:
                self._table[name] = PartitionProgress.decode(name, value)
            except ValueError:
                logger.warning("ignoring an unreadable watermark for %s: %r", name, value)
        # This process's own partitions include the batch in hand (its snapshots are this
        # process's to apply); what it publishes does not, until the batch settles.
        progress = {**self._table, **{p.partition: p for p in self._own(staged=True)}}
        expected = self._feed.expected() if self._feed is not None else None
        return ReleaseBound(progress.values(), expected, self._lateness, self._grace)

    async def publish(self) -> None:
        own = self._own()
        if not own:
            return
        try:
            await self._redis.hset(self._key, mapping={p.partition: p.encode() for p in own})
        except RedisError as exc:
            raise redis_failed("publishing the watermarks", exc) from exc

    def owns_shard(self, shard: int, shards: int) -> bool:
        """A shard of waiting accounts belongs to the owner of one partition of the first input
        topic, so each is swept by one worker; the others only touch its accounts when their own
        batches do."""
        feed = self._feed
        if feed is None:
            return False
        owned = [p for t, p in feed.assigned() if t == self._shard_topic]
        expected = feed.expected()
        count = sum(1 for name in expected or () if name.rsplit(":", 1)[0] == self._shard_topic)
        if not count:
            return bool(owned)
        return shard % count in owned


async def stream_clock(client: Any, key: str) -> float | None:
    """How far the stream has got in event time: the latest event time any worker of the group
    published (see RedisWatermarks.publish), None before the first batch settled. Read-only
    tools score at this time, as the engine would, rather than at the wall clock."""
    try:
        raw = await client.hgetall(key)
    except RedisError as exc:
        raise redis_failed("reading the watermarks", exc) from exc
    latest = NEVER
    for field, value in raw.items():
        try:
            latest = max(latest, PartitionProgress.decode(field.decode(), value).max_event_time)
        except ValueError:
            continue
    return None if latest == NEVER else latest
