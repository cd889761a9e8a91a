"""Read a worker's partitions in step in event time: pause those far ahead of the slowest.

A backlog (a replay from offset 0, a worker back after an outage, a new deployment) is read by
librdkafka in fetches of at most ``fetch.max.bytes``, filled partition by partition: with more
partitions than fit in one fetch, some were not read at all for minutes while others ran months
ahead in event time. Nothing was wrong in the results (the engine places late inputs), but
everything got slower as the backlog went on: a contact's page views, read a month after its
forms, re-applied its journal; journals could not be cut while a partition had not been read
(the stream's low watermark); accounts held every member's point back until it was, growing
(one worker on a 1M-event backlog: 2,167 events/s in the first minute, 613 after ten; no
buying-group handoff for 700k events; RSS still rising at 295 MiB).

Kafka Streams reads a task's partitions in timestamp order for the same reason. Here, after
each batch, a partition this process owns is paused while it is more than ``window_s`` of event
time ahead of the slowest of them that still holds unread records (one never read counts as
the slowest of all), and resumed once it is within half of that. Paused partitions stop
fetching, so the fetches go to the ones behind. Partitions that are caught up are never paused
(live data is never held back), and if the slowest partition does not move (in event time or
in offsets) for ``patience_s`` (its leader unreachable, say) every partition is resumed until it
does: alignment is an optimisation, and must never stop the stream.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from leadstream.engine.eventtime.watermarks import PartitionProgress

__all__ = ["Alignment", "EventTimeAlignment", "keep_in_step"]

logger = logging.getLogger(__name__)

Partitions = list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class Alignment:
    """What to change after a batch: partitions ("topic:partition") to pause and to resume."""

    pause: frozenset[str] = frozenset()
    resume: frozenset[str] = frozenset()


@dataclass(slots=True)
class EventTimeAlignment:
    window_s: float
    patience_s: float = 10.0
    paused: set[str] = field(default_factory=set)
    _low: tuple[float, int] | None = None  # the slowest partitions' event time and offsets at the last plan
    _low_since: float = 0.0
    _gave_up: bool = False

    def plan(self, progress: Iterable[PartitionProgress], now: float) -> Alignment:
        """The pauses and resumes that keep ``progress`` (this process's partitions) in step;
        ``now``: monotonic seconds. Partitions no longer in ``progress`` are forgotten."""
        rows = {p.partition: p for p in progress}
        self.paused &= rows.keys()  # revoked: nothing to resume
        if self.window_s <= 0:
            return self._resume_all()
        behind = [p for p in rows.values() if not p.caught_up]
        low = min((p.max_event_time for p in behind), default=math.inf)
        # The slowest moves when its event time does, or its offsets do: a topic whose records
        # all carry one event time (a firmographics snapshot) is read without moving in time.
        mark = (low, sum(p.processed for p in behind if p.max_event_time <= low))
        if mark != self._low:
            self._low, self._low_since, self._gave_up = mark, now, False
        elif self.paused and now - self._low_since > self.patience_s:
            self._gave_up = True  # the slowest is not moving: read everything until it does
        if self._gave_up or low == math.inf:
            return self._resume_all()
        pause = {
            name
            for name, p in rows.items()
            if name not in self.paused and not p.caught_up and p.max_event_time > low + self.window_s
        }
        resume = {
            name
            for name in self.paused
            if rows[name].caught_up or rows[name].max_event_time <= low + self.window_s / 2
        }
        self.paused = (self.paused | pause) - resume
        return Alignment(frozenset(pause), frozenset(resume))

    def _resume_all(self) -> Alignment:
        resume, self.paused = frozenset(self.paused), set()
        return Alignment(resume=resume)


def keep_in_step(
    alignment: EventTimeAlignment,
    progress: Iterable[PartitionProgress],
    pause: Callable[[Partitions], None],
    resume: Callable[[Partitions], None],
) -> None:
    """Plan with ``alignment`` after a batch and apply it through the consumer's ``pause`` and
    ``resume`` (each given (topic, partition) pairs, sorted). Both engines' loops call this."""
    was_paused = bool(alignment.paused)
    plan = alignment.plan(progress, time.monotonic())
    for change, names in ((pause, plan.pause), (resume, plan.resume)):
        if names:
            change([(t, int(p)) for t, p in (n.rsplit(":", 1) for n in sorted(names))])
    if alignment.paused and not was_paused:
        logger.info(
            "reading partitions in step: %d paused while more than %.0f s of event time ahead of "
            "this worker's slowest partition with unread records",
            len(alignment.paused),
            alignment.window_s,
        )
    elif was_paused and not alignment.paused:
        logger.info("reading partitions in step: none paused now")
