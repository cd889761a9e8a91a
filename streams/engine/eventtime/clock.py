"""The timer service's clock: stream time, bounded by the wall clock.

Timers follow the latest event time the worker has seen, so a backfill of history fires them in
step with the data, as a replay would. They never run ahead of the wall clock. When no event has
arrived for ``idle_s`` seconds, the wall clock takes over, so an SLA breach still shows on a quiet
stream.
"""

from __future__ import annotations

import time

__all__ = ["StreamClock"]


class StreamClock:
    def __init__(self, idle_s: float = 30.0) -> None:
        self._idle_s = idle_s
        self._stream_time: float | None = None
        self._last_seen = time.monotonic()

    def observe(self, event_time: float) -> None:
        self._last_seen = time.monotonic()
        if self._stream_time is None or event_time > self._stream_time:
            self._stream_time = event_time

    @property
    def stream_time(self) -> float:
        """The latest event time seen (-inf before any)."""
        return self._stream_time if self._stream_time is not None else float("-inf")

    def now(self, wall: float) -> float:
        if self._stream_time is None or time.monotonic() - self._last_seen > self._idle_s:
            return wall
        return min(wall, self._stream_time)
