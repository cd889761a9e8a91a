"""Score a worker's partitions close to event-time order: hold back records far ahead.

A contact's events come from several topics (page views, forms, trials...), each read at its own
pace: a fetch brings a sparse topic's records days ahead of a dense one's. The engine is exact
whatever the order (a late input re-applies the contact's journal, scoring/timeline.py), but every
late input costs that replay: on a generated backlog over five topics, 42% of the events arrived
behind their contact's latest one (20,132 replays for 48,020 events) and the worker spent ~1.5x
the CPU per event it spent on the same events read from one topic.

Partition pausing (kafka/alignment.py) keeps partitions within a day of each other; within that,
this module orders by holding back, as Kafka Streams' partition group picks the partition head
with the lowest timestamp. After each fetch it knows, for every partition the worker owns, how
far in event time its reading has got (the latest record consumed, held or processed). A record
more than ``slack_s`` past the slowest of them that still has records to read is held for a
later batch; each partition releases a prefix, in offset order, so an offset is committed only
when everything before it has been scored. A partition that is caught up still holds the others
back for ``idle_s`` after it last brought a record (Kafka Streams' ``max.task.idle.ms``): a
producer writing a contact's events to several topics at once makes each visible a few
milliseconds apart, and a form read before the webinar that came first would publish the MQL at
the form. After that an idle topic holds nothing back. Records from the last ``LIVE_S`` of
wall-clock time never wait (a partition with a backlog must not delay the live records of the
others: a handoff's latency matters more than the CPU of a replay), and records without a
readable event time pass (the
pipeline dead-letters them). Only the order of scoring changes, never a result: the engine is
exact in any order.

The confluent engine only: faust keeps every message it handed over until it is acknowledged,
and holding them back (acknowledged once scored) took a faust worker past 400 MiB on the bench
backlog, and slowed it on a larger one, while its fetcher's pauses dropped and fetched again.

It is an optimisation and must never stop the stream or lose a record: held records are not
committed (a crash or a revocation reads them again), at most ``max_held`` are held (beyond
that the oldest go), and if the slowest partition does not move for ``patience_s`` of the
worker fetching (its leader unreachable, say) everything passes until it does. Time the worker
spent on one batch (retried while Redis or Kafka was away) does not count.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime

import orjson

from leadstream.engine.eventtime.watermarks import NEVER, PartitionProgress
from leadstream.engine.records import SourceRecord

__all__ = ["HELD_RECORDS", "LIVE_S", "InStep", "held_limit", "peek_event_time"]

Partition = tuple[str, int]
# At most this many records are held back (a few MB: about what librdkafka's own fetch queue
# holds, see kafka/confluent_loop.py), or four batches if batches are larger; past it, the
# earliest go. Not a multiple of the batch alone: at 5,000 records a batch that held 100k.
HELD_RECORDS = 20_000
# Records whose event time is within this of the wall clock are live: they never wait.
LIVE_S = 300.0


def held_limit(batch_max: int) -> int:
    """How many records may be held back with batches of up to ``batch_max``."""
    return max(HELD_RECORDS, 4 * batch_max)


def peek_event_time(record: SourceRecord) -> float | None:
    """The event time the pipeline will read from ``record`` (an event's ``occurred_at``, an
    account's ``updated_at``), cheaply, or None when it is not plainly there."""
    try:
        body = orjson.loads(record.value or b"")
        stamp = body.get("occurred_at") or body.get("updated_at")
        if not isinstance(stamp, str):
            return None
        parsed = datetime.fromisoformat(stamp)
    except (orjson.JSONDecodeError, AttributeError, ValueError):
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


class InStep:
    """The records consumed and held back, per partition in offset order (see the module doc)."""

    def __init__(
        self,
        slack_s: float,
        max_held: int,
        patience_s: float = 5.0,
        event_time: Callable[[SourceRecord], float | None] = peek_event_time,
        idle_s: float = 0.0,
    ) -> None:
        self.slack_s, self.max_held, self.patience_s, self.idle_s = slack_s, max_held, patience_s, idle_s
        self._event_time = event_time
        # Monotonic time a partition last brought a record (or was first seen): caught up, it
        # still bounds the others until idle_s after that.
        self._brought: dict[Partition, float] = {}
        self._held: dict[Partition, deque[tuple[SourceRecord, float | None]]] = {}
        self._consumed: dict[Partition, float] = {}  # the latest event time consumed
        self._position: dict[Partition, int] = {}  # the offset after the last record consumed
        self._bound, self._bound_since, self._gave_up = math.inf, 0.0, False
        self._last_take = -math.inf

    @property
    def held(self) -> int:
        return sum(len(queue) for queue in self._held.values())

    def take(
        self,
        batch: Sequence[SourceRecord],
        progress: Iterable[PartitionProgress],
        now: float,
        wall: float | None = None,
    ) -> list[SourceRecord]:
        """The records to score now: those held before and those of ``batch`` that are not too
        far ahead; the rest wait. ``progress``: the partitions this worker owns, as processed;
        ``now``: monotonic seconds; ``wall``: epoch seconds (default: the clock's)."""
        held, consumed, position = self._held, self._consumed, self._position
        on = self.slack_s > 0
        brought = self._brought
        for record in batch:
            at = self._event_time(record) if on else None
            key = (record.topic, record.partition)
            brought[key] = now
            held.setdefault(key, deque()).append((record, at))
            position[key] = max(record.offset + 1, position.get(key, -1))
            if at is not None:
                consumed[key] = max(at, consumed.get(key, NEVER))
        bound = self._slowest(progress, now) if on else math.inf
        if now - self._last_take > self.patience_s:
            # The worker was held up elsewhere (a batch retried while Redis or Kafka was away):
            # that time says nothing of the slowest partition, whose records could not be read
            # either. Counted, it let every held record pass at once when the store came back.
            self._bound_since = now
        self._last_take = now
        if bound != self._bound:
            self._bound, self._bound_since, self._gave_up = bound, now, False
        elif not self._gave_up and held and now - self._bound_since > self.patience_s:
            self._gave_up = True  # the slowest is not moving: let everything pass until it does
        limit = math.inf if self._gave_up else bound + self.slack_s
        live = (time.time() if wall is None else wall) - LIVE_S
        out: list[SourceRecord] = []
        for key in list(held):
            queue = held[key]
            while queue and ((at := queue[0][1]) is None or at <= limit or at >= live):
                out.append(queue.popleft()[0])
            if not queue:
                del held[key]
        excess = self.held - self.max_held
        if excess > 0:
            out += self._earliest(excess)
        return out

    def _slowest(self, progress: Iterable[PartitionProgress], now: float) -> float:
        """How far in event time the slowest partition with records left to read has got (one
        never read: not at all). A partition read to its end (held records or not) holds nothing
        back once ``idle_s`` passed since it last brought a record."""
        slowest = math.inf
        brought, idle_s = self._brought, self.idle_s
        for key, p in self._read(progress):
            if p.caught_up:
                since = brought.setdefault(key, now)
                if now - since >= idle_s:
                    continue
            slowest = min(slowest, p.max_event_time)
        return slowest

    def _earliest(self, count: int) -> list[SourceRecord]:
        """Release ``count`` held records, the earliest partition head first each time: past
        ``max_held`` the order degrades to a merge of what is at hand, nothing is lost."""
        held, out = self._held, []
        for _ in range(count):
            key = min(held, key=lambda k: _head_time(held[k]))
            out.append(held[key].popleft()[0])
            if not held[key]:
                del held[key]
        return out

    def waiting(self) -> set[Partition]:
        """The partitions with records held back."""
        return set(self._held)

    def first_held(self) -> dict[Partition, int]:
        """Per partition, the offset of its first held record: its commits must stop there."""
        return {key: queue[0][0].offset for key, queue in self._held.items()}

    def reading(self, progress: Iterable[PartitionProgress]) -> list[PartitionProgress]:
        """``progress`` as far as each partition has been read, held records included (its
        offset and event time): what partition pausing must see to keep fetches in step."""
        return [p for _key, p in self._read(progress)]

    def _read(self, progress: Iterable[PartitionProgress]) -> list[tuple[Partition, PartitionProgress]]:
        out = []
        for p in progress:
            topic, _, number = p.partition.rpartition(":")
            key = (topic, int(number))
            read_to = max(p.processed, self._position.get(key, -1))
            at = max(p.max_event_time, self._consumed.get(key, NEVER))
            out.append((key, replace(p, max_event_time=at, processed=read_to)))
        return out

    def drop(self, partitions: Iterable[Partition]) -> None:
        """Partitions this worker no longer owns: their held records are their next owner's."""
        for key in partitions:
            self._held.pop(key, None)
            self._consumed.pop(key, None)
            self._position.pop(key, None)
            self._brought.pop(key, None)

    def clear(self) -> None:
        """A new consumer: it starts again from the committed offsets."""
        self.drop([*self._held, *self._consumed, *self._position, *self._brought])


def _head_time(queue: deque[tuple[SourceRecord, float | None]]) -> float:
    at = queue[0][1]
    return NEVER if at is None else at
