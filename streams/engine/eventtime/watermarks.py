"""Watermarks: how far every input partition has been read, so accounts decide in event-time order.

An account hears from its members' partitions, which progress at different speeds (a backfill
reads each partition at its own pace; a killed worker's partitions stop until they move). An
account therefore applies a member's point only once no input partition can still hold an earlier
one. Each worker publishes, after every batch, the progress of the partitions it owns:

- the latest event time it processed there (the partition is then past everything up to that
  time minus ``lateness_s``, the out-of-orderness tolerated within a partition), and
- whether it has processed everything the partition held at its last fetch (caught up), and when.

A point of event time ``t``, from a record that reached Kafka at ``r``, may be applied when every
input partition either is past ``t``, or was caught up at a fetch at least ``grace_s`` after ``r``
(so a record produced before ``r`` and still in flight would have been seen). The first rule keeps
backfills and restarts in event-time order; the second keeps a live stream's idle partitions from
holding everything up. A partition nobody reports holds everything: its data may be unread.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from leadstream.scoring.accounts import Release

__all__ = [
    "NEVER",
    "BatchIsEverything",
    "Everything",
    "FileOrder",
    "PartitionFeed",
    "PartitionProgress",
    "ReleaseBound",
    "Watermarks",
]

NEVER: Final = -math.inf


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """One input partition as its owner last saw it. Offsets are -1 when unknown."""

    partition: str  # "topic:partition"
    max_event_time: float = NEVER
    processed: int = -1  # every offset below this one is processed
    high: int = -1  # the log end offset at the owner's last fetch
    at: float = NEVER  # wall time of that fetch, seconds

    @property
    def caught_up(self) -> bool:
        return self.processed >= 0 and self.high >= 0 and self.processed >= self.high

    def encode(self) -> bytes:
        # repr() outside the f-string: mypyc builds one with ``!r`` through str.format.
        return f"{repr(self.max_event_time)}|{self.processed}|{self.high}|{repr(self.at)}".encode()  # noqa: RUF010

    @classmethod
    def decode(cls, partition: str, raw: bytes) -> PartitionProgress:
        max_event_time, processed, high, at = raw.decode().split("|")
        return cls(partition, float(max_event_time), int(processed), int(high), float(at))


class ReleaseBound(Release):
    """Which account points the stream's progress allows to apply now (see the module doc)."""

    def __init__(
        self,
        progress: Iterable[PartitionProgress],
        expected: Iterable[str] | None = None,
        lateness_s: float = 0.0,
        grace_s: float = 1.0,
    ) -> None:
        by_partition = {p.partition: p for p in progress}
        for name in expected or ():
            by_partition.setdefault(name, PartitionProgress(name))
        rows = sorted(
            (p.max_event_time - lateness_s, p.at if p.caught_up else NEVER) for p in by_partition.values()
        )
        self._through = [through for through, _ in rows]
        self._idle_since: list[float] = []  # prefix minimum of the caught-up fetch times
        low = math.inf
        for _, since in rows:
            low = min(low, since)
            self._idle_since.append(low)
        self._grace = grace_s
        blocking = [through for through, since in rows if since == NEVER]
        self.upper = min(blocking, default=math.inf)  # no point after this can be allowed yet
        # The latest event time any worker processed: the stream's time, whoever read it.
        self.stream_time = max((p.max_event_time for p in by_partition.values()), default=NEVER)

    def allows(self, at: float, record_time: float | None) -> bool:
        behind = bisect_left(self._through, at)  # partitions not yet past ``at``
        if behind == 0:
            return True
        if record_time is None:
            return False
        return self._idle_since[behind - 1] >= record_time + self._grace


class Everything(Release):
    """Every point may be applied: the embedded engine, where each batch is all there is."""

    upper = math.inf
    stream_time = NEVER  # the pipeline's own clock is the stream's time

    def allows(self, at: float, record_time: float | None) -> bool:
        return True


class PartitionFeed(Protocol):
    """What a worker engine knows of its partitions (see processors/feed.py)."""

    def assigned(self) -> Sequence[tuple[str, int]]:
        """The input partitions this process owns now."""
        ...

    def high_watermark(self, topic: str, partition: int) -> tuple[int, float] | None:
        """The partition's log end offset at the last fetch, and the wall time it held at."""
        ...

    def starting_offset(self, topic: str, partition: int) -> int | None:
        """Where this process started reading the partition (the group's committed offset)."""
        ...

    def expected(self) -> Sequence[str] | None:
        """Every input partition ("topic:partition"), or None when not known yet."""
        ...


class Watermarks(Protocol):
    """Progress of the input partitions, read and published around each batch."""

    def observe(self, event_times: Mapping[str, float], offsets: Mapping[str, int]) -> None:
        """This process is finishing a batch: per partition, its latest event time and next
        offset. It counts for this process's own bound at once, and is published only once
        :meth:`settle` says the batch's account snapshots are committed (:meth:`discard` if the
        batch failed: it is processed again)."""
        ...

    def settle(self) -> None: ...

    def discard(self) -> None: ...

    async def bound(self) -> ReleaseBound | Everything:
        """What may be applied now, from every worker's published progress and this one's."""
        ...

    async def publish(self) -> None:
        """Publish this process's progress (after the batch's account commits)."""
        ...

    def owns_shard(self, shard: int, shards: int) -> bool:
        """Whether this process sweeps the accounts of ``shard`` (see engine/stages/account.py)."""
        ...


class BatchIsEverything:
    """The embedded engine's watermarks: every batch is the whole stream so far."""

    def observe(self, event_times: Mapping[str, float], offsets: Mapping[str, int]) -> None:
        return None

    def settle(self) -> None:
        return None

    def discard(self) -> None:
        return None

    async def bound(self) -> Everything:
        return Everything()

    async def publish(self) -> None:
        return None

    def owns_shard(self, shard: int, shards: int) -> bool:
        return True


class FileOrder:
    """Replaying a file: one source read in order, past every event time it has shown so far;
    once :meth:`finish` is called nothing more is coming."""

    def __init__(self) -> None:
        self._through = NEVER
        self._finished = False

    def observe(self, event_times: Mapping[str, float], offsets: Mapping[str, int]) -> None:
        self._through = max([self._through, *event_times.values()])

    def settle(self) -> None:
        return None

    def discard(self) -> None:
        return None

    def finish(self) -> None:
        self._finished = True

    async def bound(self) -> ReleaseBound | Everything:
        if self._finished:
            return Everything()
        return ReleaseBound([PartitionProgress("file", self._through)])

    async def publish(self) -> None:
        return None

    def owns_shard(self, shard: int, shards: int) -> bool:
        return True
