"""The state port: versioned records with an outbox, committed by compare-and-set.

A record is one Redis hash: a version, a value (an encoded contact or account state), an optional
alias (this profile was merged into another), parts (pieces of the value stored and rewritten
one by one: an account's member snapshots) and outbox entries: effects decided together with
the value but delivered elsewhere afterwards (a handoff to Kafka, a member snapshot to an
account). A commit writes the value, the alias and new outbox entries in one atomic step, only if
the version is still the one that was loaded; otherwise the key is reported as conflicted and the
caller reloads and re-applies. An outbox entry is removed only once delivered, and only if it
still holds what was delivered.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from streams.scoring.state import AccountState, ContactState, MemberSnapshot


@dataclass(slots=True)
class StoredRecord:
    value: bytes | None = None
    version: int = 0
    outbox: dict[str, bytes] = field(default_factory=dict)
    alias: str | None = None
    parts: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordWrite:
    key: str
    expected_version: int
    value: bytes | None  # None keeps the stored value (e.g. only setting an alias)
    new_outbox: dict[str, bytes] = field(default_factory=dict)
    alias: str | None = None
    parts: dict[str, bytes | None] = field(default_factory=dict)  # None removes the part


class StateStore(Protocol):
    async def load(self, keys: Sequence[str]) -> dict[str, StoredRecord]: ...

    async def commit(self, writes: Sequence[RecordWrite]) -> set[str]:
        """Apply every write whose version still matches; return the keys that conflicted."""
        ...

    async def ack(self, delivered: Sequence[tuple[str, str, bytes]]) -> None:
        """Drop (key, outbox entry, value) entries that were delivered, if unchanged since."""
        ...


class TimerIndex(Protocol):
    """Due times of contacts' timers, so due ones are found without scanning contacts."""

    async def schedule(self, entries: Sequence[tuple[str, str, float]]) -> None:
        """Add or move (index key, member, due time) entries."""
        ...

    async def due(self, key: str, until: float, limit: int) -> list[tuple[str, float]]:
        """Members due at or before ``until``, earliest first."""
        ...

    async def unschedule(self, entries: Sequence[tuple[str, str, float]]) -> None:
        """Remove entries, each only if still at the given due time (not moved since)."""
        ...


MEMBER_PART = "m:"


def encode_state(state: ContactState | AccountState) -> bytes:
    """A contact's state, or an account without its members (see :func:`member_parts`)."""
    return orjson.dumps(state.to_dict())


def encode_contact(state: ContactState, compress: bool) -> bytes:
    """A contact's stored value: JSON, or zlib-compressed JSON (about half the bytes, for
    ~20 microseconds per write; the decoded-state cache saves most of the reads)."""
    raw = orjson.dumps(state.to_dict())
    return zlib.compress(raw, 1) if compress else raw


def decode_state(raw: bytes) -> ContactState:
    """Either form: JSON starts with ``{``, a zlib stream never does."""
    if raw[:1] != b"{":
        raw = zlib.decompress(raw)
    return ContactState.from_dict(orjson.loads(raw))


def member_parts(account: AccountState, contact_ids: Iterable[str]) -> dict[str, bytes | None]:
    """The stored parts of the given members: their snapshot, or None for one no longer held."""
    members = account.members
    return {
        MEMBER_PART + c: orjson.dumps(members[c].to_dict()) if c in members else None for c in contact_ids
    }


def decode_account(raw: bytes, parts: dict[str, bytes] | None = None) -> AccountState:
    """An account from its value and its member parts (without parts: firmographics only)."""
    members = {
        name[len(MEMBER_PART) :]: MemberSnapshot.from_dict(orjson.loads(value))
        for name, value in (parts or {}).items()
        if name.startswith(MEMBER_PART)
    }
    return AccountState.from_dict(orjson.loads(raw), members)
