"""Transport-neutral records: what a processor consumes and what it emits."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["OutputRecord", "SourceRecord"]


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One consumed Kafka record (or one line of a replay file), before decoding."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    timestamp_ms: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One record to produce: a handoff, a dead letter, or any other emitted event."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = field(default=())
