"""The outbox: what a commit decided, kept in the record until it is delivered.

Every entry is a field of the contact's (or account's) hash, named ``<kind>:<name>``:

    h:<handoff id>                  a handoff            -> the handoff topic
    e:<event id>                    a lifecycle event    -> the lifecycle topic
    t:<timer kind>                  a timer's due time   -> the timer index (a sorted set);
                                    ``t:journal`` closes a quiet contact's journal
    a:<domain>|<contact>|<version>  the member snapshots of one commit -> the account (stages/account.py)

An entry is acknowledged (removed) only after it was delivered: a timer's only if unchanged since
(it keeps its name when it moves), the others by name (their names are never reused for another
value). This module is the only place that writes or reads those names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import orjson

from leadstream.config.settings import Topics
from leadstream.engine.records import OutputRecord
from leadstream.scoring.state import MemberSnapshot
from leadstream.state.keys import record_id, timer_key, timer_member, timer_shard
from leadstream.state.port import Delivered, float_text

__all__ = [
    "JOURNAL_TIMER",
    "Deliveries",
    "EntryKind",
    "OutboxEntry",
    "handoff_entries",
    "is_kind",
    "journal_timer_entry",
    "lifecycle_entries",
    "plan",
    "snapshot_entries",
    "timer_entries",
]


# The timer kind that closes a quiet contact's journal (stages/journal.py).
JOURNAL_TIMER: Final = "journal"


class EntryKind(StrEnum):
    HANDOFF = "h"
    LIFECYCLE = "e"
    TIMER = "t"
    SNAPSHOTS = "a"


# An enum's ``.value`` and ``EntryKind(text)`` are Python-level calls (~0.5-1 µs each), made
# per outbox field: looked up in plain dicts instead (an enum member hashes as its text).
_PREFIXES: Final[dict[EntryKind, str]] = {kind: f"{kind.value}:" for kind in EntryKind}
_KINDS: Final[dict[str, EntryKind]] = {kind.value: kind for kind in EntryKind}


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, frozen=True, slots=True)
class OutboxEntry:
    """One outbox field name, typed. ``name`` is the handoff id, event id, timer kind, or, for
    snapshots, ``<domain>|<contact>|<version>``."""

    kind: EntryKind
    name: str

    def __init__(
        self,
        kind: EntryKind,
        name: str,
    ) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "name", name)

    def encode(self) -> str:
        return _PREFIXES[self.kind] + self.name

    @classmethod
    def parse(cls, text: str) -> OutboxEntry:
        kind, sep, name = text.partition(":")
        if not sep:
            raise ValueError(f"not an outbox entry: {text!r}")
        found = _KINDS.get(kind)
        if found is None:
            raise ValueError(f"not an outbox entry: {text!r} (unknown kind {kind!r})")
        return cls(found, name)

    @classmethod
    def snapshots(cls, domain: str, contact: str, version: int) -> OutboxEntry:
        return cls(EntryKind.SNAPSHOTS, f"{domain}|{contact}|{version}")

    @property
    def domain(self) -> str:
        """The account a snapshots entry is for."""
        if self.kind is not EntryKind.SNAPSHOTS:
            raise ValueError(f"{self.encode()!r} is not a snapshots entry")
        return self.name.split("|", 1)[0]


def is_kind(entry: str, kind: EntryKind) -> bool:
    """Whether an encoded entry is of ``kind``, without building one (called per outbox field)."""
    return entry.startswith(_PREFIXES[kind])


def handoff_entries(handoffs: Iterable[Mapping[str, Any]]) -> dict[str, bytes]:
    return {OutboxEntry(EntryKind.HANDOFF, h["handoff_id"]).encode(): orjson.dumps(h) for h in handoffs}


def lifecycle_entries(events: Sequence[Mapping[str, Any]]) -> dict[str, bytes]:
    return {
        OutboxEntry(EntryKind.LIFECYCLE, e.get("transition_id") or e["breach_id"]).encode(): orjson.dumps(e)
        for e in events
    }


def snapshot_entries(
    domain: str, contact: str, version: int, snapshots: Sequence[MemberSnapshot]
) -> dict[str, bytes]:
    """The snapshots one contact commit took for one account, in the contact's outbox until the
    account has them (a crash in between loses nothing: the next load delivers them again)."""
    entry = OutboxEntry.snapshots(domain, contact, version).encode()
    return {entry: orjson.dumps([s.to_dict() for s in snapshots])}


def timer_entries(before: dict[str, float], after: dict[str, float]) -> dict[str, bytes]:
    """An entry for every timer set or moved (a cancelled timer fires stale and does nothing)."""
    return {
        OutboxEntry(EntryKind.TIMER, kind).encode(): float_text(due).encode()
        for kind, due in after.items()
        if before.get(kind) != due
    }


_JOURNAL_TIMER_ENTRY: Final = OutboxEntry(EntryKind.TIMER, JOURNAL_TIMER).encode()


def journal_timer_entry(due: float) -> dict[str, bytes]:
    """The timer that closes a quiet contact's journal (stages/journal.py); not a scoring timer,
    so it is kept out of the contact's state."""
    return {_JOURNAL_TIMER_ENTRY: float_text(due).encode()}  # repr's text, cheaper


@dataclass(slots=True)
class Deliveries:
    records: list[OutputRecord] = field(default_factory=list)
    timers: list[tuple[str, str, float]] = field(default_factory=list)
    acks: list[Delivered] = field(default_factory=list)


def plan(entries: Sequence[tuple[str, str, bytes]], topics: Topics, prefix: str) -> Deliveries:
    """Where each (record key, entry, value) goes; snapshots are left to the account stage."""
    out = Deliveries()
    for key, text, value in entries:
        entry = OutboxEntry.parse(text)
        if entry.kind is EntryKind.HANDOFF:
            out.records.append(OutputRecord(topics.handoffs, record_id(key).encode(), value))
        elif entry.kind is EntryKind.LIFECYCLE:
            out.records.append(OutputRecord(topics.lifecycle, record_id(key).encode(), value))
        elif entry.kind is EntryKind.TIMER:
            contact = record_id(key)
            out.timers.append(
                (timer_key(prefix, timer_shard(contact)), timer_member(contact, entry.name), float(value))
            )
        else:
            continue
        # A timer's entry keeps its name when the timer moves: dropped only if unchanged. The
        # others are named by deterministic ids (a commit never writes one id twice but as the
        # same output): dropped by name, a plain HDEL, not a compare-and-delete function call.
        out.acks.append((key, text, value if entry.kind is EntryKind.TIMER else None))
    return out
