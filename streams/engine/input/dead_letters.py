"""Dead-letter records: the original bytes and headers, plus headers saying where and why.

Header names mirror Kafka Connect's ``__connect.errors.*`` convention so existing DLQ tooling
reads them unchanged.
"""

from __future__ import annotations

from leadstream.engine.records import OutputRecord, SourceRecord
from leadstream.errors import InvalidEvent

__all__ = ["HEADER_PREFIX", "MAX_MESSAGE_BYTES", "dead_letter", "suppressed_letter"]

HEADER_PREFIX = "__connect.errors."
MAX_MESSAGE_BYTES = 2000


def dead_letter(source: SourceRecord, error: InvalidEvent, topic: str, stage: str) -> OutputRecord:
    """Wrap a record that failed ``stage`` into a record for the dead-letter topic."""
    message = str(error).encode("utf-8", "replace")[:MAX_MESSAGE_BYTES]
    headers = (
        *source.headers,
        (HEADER_PREFIX + "topic", source.topic.encode()),
        (HEADER_PREFIX + "partition", str(source.partition).encode()),
        (HEADER_PREFIX + "offset", str(source.offset).encode()),
        (HEADER_PREFIX + "stage", stage.encode()),
        (HEADER_PREFIX + "exception.class.name", f"InvalidEvent.{error.reason}".encode()),
        (HEADER_PREFIX + "exception.message", message),
    )
    return OutputRecord(topic=topic, key=source.key, value=source.value, headers=headers)


def suppressed_letter(source: SourceRecord, topic: str, pseudonym: str) -> OutputRecord:
    """An event of a person who asked to be forgotten: where it was and why it was dropped, and
    nothing of it (no key, value or headers of the original: they would copy the person's data).
    Keyed by the person's pseudonym (a record needs a key or a value)."""
    error = InvalidEvent("suppressed", "the person this event names was erased (leadstream forget)")
    letter = dead_letter(
        SourceRecord(source.topic, source.partition, source.offset, None), error, topic, "suppress"
    )
    return OutputRecord(topic=topic, key=pseudonym.encode(), value=None, headers=letter.headers)
