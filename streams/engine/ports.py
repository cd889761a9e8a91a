"""What the engine needs from the outside world, as protocols: a processor of batches and a sink.

The Kafka adapters (leadstream.kafka) implement them for both engines; the in-memory sink here is
what replay, backtests and unit tests use. The engine imports no transport.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mypy_extensions import mypyc_attr

from leadstream.engine.records import OutputRecord, SourceRecord

__all__ = ["BatchProcessor", "MemorySink", "Sink"]


class BatchProcessor(Protocol):
    """Processes one batch fully (state written, outputs acknowledged) before returning."""

    async def process(self, batch: Sequence[SourceRecord]) -> None: ...


class Sink(Protocol):
    """Sends records; returns only when every record is acknowledged by the destination."""

    async def send_all(self, records: Sequence[OutputRecord]) -> None: ...


# Tests subclass it (a sink that dies before publishing); compiled classes allow that only when told.
@mypyc_attr(allow_interpreted_subclasses=True)
class MemorySink:
    """Keeps sent records in a list, per topic order preserved. Used by replay and tests."""

    def __init__(self) -> None:
        self.records: list[OutputRecord] = []

    async def send_all(self, records: Sequence[OutputRecord]) -> None:
        self.records.extend(records)

    def on_topic(self, topic: str) -> list[OutputRecord]:
        return [r for r in self.records if r.topic == topic]
