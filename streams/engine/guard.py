"""A batch's fate when processing it fails, as the error policy (engine/policy.py) decides.

Retrying a whole batch is safe because processing is idempotent; the batch is never acknowledged
while it fails, so nothing is lost: the stream stalls and says why, once per attempt, until the
dependency is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from leadstream.engine.policy import Action, ErrorPolicy, default_policy
from leadstream.engine.ports import BatchProcessor
from leadstream.engine.records import SourceRecord
from leadstream.errors import BrokerUnavailable, InvalidEvent, StateLost, StateUnavailable, StreamStopped

__all__ = ["DeadLetterBatch", "RetryingProcessor", "failure_kind"]

logger = logging.getLogger(__name__)

DeadLetterBatch = Callable[[Sequence[SourceRecord], BaseException], Awaitable[None]]


class RetryingProcessor:
    """Wraps a processor and asks the policy what to do with a batch that raised."""

    def __init__(
        self,
        inner: BatchProcessor,
        first_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        on_error: ErrorPolicy = default_policy,
        dead_letter_batch: DeadLetterBatch | None = None,
    ) -> None:
        self._inner = inner
        self._first = first_delay_s
        self._max = max_delay_s
        self._on_error = on_error
        self._dead_letter_batch = dead_letter_batch
        # Failed attempts by kind (redis, kafka, invalid, other), for the metrics.
        self.failures: dict[str, int] = {}

    async def process(self, batch: Sequence[SourceRecord]) -> None:
        delay = self._first
        attempt = 1
        while True:
            try:
                await self._inner.process(batch)
                if attempt > 1:
                    logger.warning("batch of %d records processed after %d attempts", len(batch), attempt)
                return
            except StateLost:
                raise  # not this batch's failure: the worker starts over (state/progress.py)
            except Exception as exc:
                kind = failure_kind(exc)
                self.failures[kind] = self.failures.get(kind, 0) + 1
                action = self._on_error(exc, None)
                if action is Action.RETRY:
                    logger.error("attempt %d failed, retrying in %.1fs: %s", attempt, delay, exc)
                    await asyncio.sleep(delay)
                    delay = min(self._max, delay * 2)
                    attempt += 1
                elif action is Action.SKIP:
                    logger.error("batch of %d records skipped by the error policy: %r", len(batch), exc)
                    return
                elif action is Action.DEAD_LETTER and self._dead_letter_batch is not None:
                    logger.error("batch of %d records dead-lettered by the error policy: %r", len(batch), exc)
                    await self._dead_letter_batch(batch, exc)
                    return
                else:
                    raise StreamStopped(
                        f"stopped on {type(exc).__name__}: {exc} (the error policy said {action.value}; "
                        "the batch was not acknowledged and is read again on restart)"
                    ) from exc


def failure_kind(exc: BaseException) -> str:
    """A failed batch's cause as a metrics label."""
    if isinstance(exc, StateUnavailable):
        return "redis"
    if isinstance(exc, BrokerUnavailable):
        return "kafka"
    if isinstance(exc, InvalidEvent):
        return "invalid"
    return "other"
