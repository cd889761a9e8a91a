"""Walking skeleton: JSON event in, a counter per contact in Redis, a record on the handoff topic.

Issue 3 replaces this logic with the scoring engine; the wiring around it stays.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from config.settings import Topics
from streams.dead_letters import dead_letter
from streams.errors import InvalidEvent
from streams.records import OutputRecord, SourceRecord
from streams.sinks import Sink


class SkeletonProcessor:
    """Counts events per contact and publishes the running count, one Redis pipeline per batch."""

    def __init__(self, redis: Any, sink: Sink, topics: Topics, prefix: str) -> None:
        self._prefix = prefix
        self._redis = redis
        self._sink = sink
        self._topics = topics

    async def process(self, batch: Sequence[SourceRecord]) -> None:
        outputs: list[OutputRecord] = []
        contacts: list[str] = []
        for record in batch:
            try:
                contacts.append(_contact_id(record.value))
            except InvalidEvent as exc:
                outputs.append(dead_letter(record, exc, self._topics.dead_letters, "decode"))
        if contacts:
            pipe = self._redis.pipeline(transaction=False)
            for contact in contacts:
                pipe.hincrby(f"{self._prefix}:{{c:{contact}}}", "events", 1)
            counts = await pipe.execute()
            for contact, count in zip(contacts, counts, strict=True):
                value = json.dumps({"contact_id": contact, "events_seen": count}).encode()
                outputs.append(OutputRecord(self._topics.handoffs, contact.encode(), value))
        await self._sink.send_all(outputs)


def _contact_id(value: bytes | None) -> str:
    try:
        event = json.loads(value or b"")
    except ValueError as exc:
        raise InvalidEvent("json", f"not JSON: {exc}") from exc
    contact = event.get("contact_id") if isinstance(event, dict) else None
    if not isinstance(contact, str) or not contact:
        raise InvalidEvent("schema", "contact_id: a non-empty string is required")
    return contact
