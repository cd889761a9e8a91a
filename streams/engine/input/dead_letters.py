"""Dead-letter records: the original bytes and headers, plus headers saying where and why.

Header names mirror Kafka Connect's ``__connect.errors.*`` convention so existing DLQ tooling
reads them unchanged.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from leadstream.engine.records import OutputRecord, SourceRecord
from leadstream.errors import InvalidEvent
from leadstream.state.pseudonyms import pseudonym

__all__ = [
    "HEADER_PREFIX",
    "MAX_MESSAGE_BYTES",
    "PERSONAL_FIELDS",
    "REDACTED_HEADER",
    "dead_letter",
    "redacted",
    "suppressed_letter",
]

# Fields that name a person, at any depth of an event (ours and Segment's spellings): with
# LEADSTREAM_DEAD_LETTER_REDACT their values become pseudonyms (equal values stay equal, so an
# operator can still tell one sender's records from another's).
PERSONAL_FIELDS: Final = frozenset(
    {
        "email",
        "contact_id",
        "anonymous_id",
        "anonymousId",
        "userId",
        "user_id",
        "previous_ids",
        "previousId",
        "first_name",
        "last_name",
        "firstName",
        "lastName",
        "name",
        "phone",
        "ip",
    }
)
REDACTED_HEADER: Final = "__leadstream.redacted"

HEADER_PREFIX: Final = "__connect.errors."
MAX_MESSAGE_BYTES: Final = 2000


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


def redacted(letter: OutputRecord, secret: bytes) -> OutputRecord:
    """A dead letter without the person: its key and every personal field's value (see
    PERSONAL_FIELDS) replaced by pseudonyms; a value that is not JSON is dropped whole."""
    key = pseudonym(secret, letter.key.decode("utf-8", "replace")).encode() if letter.key else None
    value: bytes | None = None
    what = b"key,fields"
    if letter.value is not None:
        try:
            value = orjson.dumps(_scrub(orjson.loads(letter.value), secret))
        except orjson.JSONDecodeError:
            what = b"key,value"
    if key is None and value is None:
        key = b"redacted"  # a record needs a key or a value
    return OutputRecord(letter.topic, key, value, (*letter.headers, (REDACTED_HEADER, what)))


def _scrub(node: Any, secret: bytes, personal: bool = False) -> Any:
    if isinstance(node, dict):
        return {k: _scrub(v, secret, personal or k in PERSONAL_FIELDS) for k, v in node.items()}
    if isinstance(node, list):
        return [_scrub(v, secret, personal) for v in node]
    if personal and node is not None:
        return pseudonym(secret, str(node))
    return node
