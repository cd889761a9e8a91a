"""Transport-neutral records: what a processor consumes and what it emits."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OutputRecord", "SourceRecord"]


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, frozen=True, slots=True)
class SourceRecord:
    """One consumed Kafka record (or one line of a replay file), before decoding."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None
    timestamp_ms: int | None
    headers: tuple[tuple[str, bytes], ...]

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        value: bytes | None,
        key: bytes | None = None,
        timestamp_ms: int | None = None,
        headers: tuple[tuple[str, bytes], ...] = (),
    ) -> None:
        object.__setattr__(self, "topic", topic)
        object.__setattr__(self, "partition", partition)
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "timestamp_ms", timestamp_ms)
        object.__setattr__(self, "headers", headers)


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, frozen=True, slots=True)
class OutputRecord:
    """One record to produce: a handoff, a dead letter, or any other emitted event."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def __init__(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: tuple[tuple[str, bytes], ...] = (),
    ) -> None:
        object.__setattr__(self, "topic", topic)
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "headers", headers)
