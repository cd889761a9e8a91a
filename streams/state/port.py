"""The state port: load contacts, commit them with compare-and-set, acknowledge the outbox.

Each contact is one record holding a version, its score state and an outbox of handoffs decided
but not yet confirmed as published. A commit writes the new state and any new outbox entries in
one atomic step, only if the version is still the one that was loaded; otherwise the contact is
reported as conflicted and the caller reloads and re-applies it. That makes every state change
atomic and safe with several workers, without a lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from streams.scoring.state import ContactState


@dataclass(slots=True)
class StoredContact:
    state: ContactState | None
    version: int = 0
    outbox: dict[str, bytes] = field(default_factory=dict)  # handoff id -> handoff record value


@dataclass(frozen=True, slots=True)
class ContactWrite:
    contact_id: str
    expected_version: int
    state: ContactState
    new_outbox: dict[str, bytes] = field(default_factory=dict)


class ContactStore(Protocol):
    async def load(self, contact_ids: Sequence[str]) -> dict[str, StoredContact]: ...

    async def commit(self, writes: Sequence[ContactWrite]) -> set[str]:
        """Apply every write whose version still matches; return the ids that conflicted."""
        ...

    async def ack_outbox(self, delivered: Sequence[tuple[str, str]]) -> None:
        """Drop (contact id, handoff id) entries whose records are confirmed in Kafka."""
        ...


def encode_state(state: ContactState) -> bytes:
    return orjson.dumps(state.to_dict())


def decode_state(raw: bytes) -> ContactState:
    return ContactState.from_dict(orjson.loads(raw))
