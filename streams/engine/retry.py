"""Retrying a whole batch while Redis or Kafka recover: safe because processing is idempotent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from leadstream.engine.records import SourceRecord
from leadstream.errors import InfrastructureError
from leadstream.kafka.faust_app import BatchProcessor

logger = logging.getLogger(__name__)


class RetryingProcessor:
    """Wraps a processor: on an infrastructure error, wait (exponential backoff) and retry.

    The batch is never acknowledged while it fails, so nothing is lost; the stream stalls and
    says why, once per attempt, until the dependency is back.
    """

    def __init__(self, inner: BatchProcessor, first_delay_s: float = 0.5, max_delay_s: float = 30.0) -> None:
        self._inner = inner
        self._first = first_delay_s
        self._max = max_delay_s

    async def process(self, batch: Sequence[SourceRecord]) -> None:
        delay = self._first
        attempt = 1
        while True:
            try:
                await self._inner.process(batch)
                if attempt > 1:
                    logger.warning("batch of %d records processed after %d attempts", len(batch), attempt)
                return
            except InfrastructureError as exc:
                logger.error("attempt %d failed, retrying in %.1fs: %s", attempt, delay, exc)
                await asyncio.sleep(delay)
                delay = min(self._max, delay * 2)
                attempt += 1
