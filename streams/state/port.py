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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import orjson

from leadstream.scoring.state import AccountState, ContactState, MemberSnapshot, PointKey
from leadstream.state.codec import Codec, compress_value, decompress_value

__all__ = [
    "BASE_PART",
    "CHECKPOINT_PART",
    "CLOSE_PART",
    "JOURNAL_PART",
    "MEMBER_PART",
    "PENDING_PART",
    "Delivered",
    "RecordWrite",
    "StateStore",
    "StoredRecord",
    "TimerIndex",
    "decode_account",
    "decode_journal",
    "decode_state",
    "encode_contact",
    "encode_journal",
    "encode_state",
    "float_text",
    "journal_key",
    "journal_name",
    "member_parts",
    "pending_parts",
    "queued_encodings",
    "stored_address",
]


# A delivered outbox entry to drop: (record key, entry, the value delivered). None instead of the
# value: an entry whose name is never written twice (a commit's member snapshots, named by the
# version it made), dropped by name alone, without sending its value back to compare.
Delivered = tuple[str, str, bytes | None]


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)
class StoredRecord:
    value: bytes | None
    version: int
    outbox: dict[str, bytes]
    alias: str | None
    parts: dict[str, bytes]

    def __init__(
        self,
        value: bytes | None = None,
        version: int = 0,
        outbox: dict[str, bytes] | None = None,
        alias: str | None = None,
        parts: dict[str, bytes] | None = None,
    ) -> None:
        self.value = value
        self.version = version
        self.outbox = {} if outbox is None else outbox
        self.alias = alias
        self.parts = {} if parts is None else parts


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, frozen=True, slots=True)
class RecordWrite:
    key: str
    expected_version: int
    value: bytes | None  # None keeps the stored value (e.g. only setting an alias)
    new_outbox: dict[str, bytes]
    alias: str | None
    parts: dict[str, bytes | None]  # None removes the part

    def __init__(
        self,
        key: str,
        expected_version: int,
        value: bytes | None,
        new_outbox: dict[str, bytes] | None = None,
        alias: str | None = None,
        parts: dict[str, bytes | None] | None = None,
    ) -> None:
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "expected_version", expected_version)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "new_outbox", {} if new_outbox is None else new_outbox)
        object.__setattr__(self, "alias", alias)
        object.__setattr__(self, "parts", {} if parts is None else parts)


class StateStore(Protocol):
    async def load(self, keys: Sequence[str]) -> dict[str, StoredRecord]: ...

    async def values(self, keys: Sequence[str]) -> dict[str, tuple[int, bytes | None]]:
        """Only each record's version and value (an account's firmographics, without members)."""
        ...

    async def suppression_marks(self, key: str) -> tuple[str, int]:
        """What changes whenever the suppression hash ``key`` (erased people) does: the mark
        ``leadstream forget`` sets anew on each change, and the hash's length."""
        ...

    async def suppressed_tokens(self, key: str) -> set[str]:
        """Every pseudonym the suppression hash ``key`` holds."""
        ...

    async def commit(self, writes: Sequence[RecordWrite]) -> set[str]:
        """Apply every write whose version still matches; return the keys that conflicted."""
        ...

    async def ack(self, delivered: Sequence[Delivered]) -> None:
        """Drop (key, outbox entry, value) entries that were delivered, if unchanged since; a value
        of None drops the entry whatever it holds (a name written once only)."""
        ...


class TimerIndex(Protocol):
    """Due times of contacts' timers, so due ones are found without scanning contacts."""

    async def schedule(self, entries: Sequence[tuple[str, str, float]]) -> None:
        """Add or move (index key, member, due time) entries."""
        ...

    async def due(self, key: str, until: float, limit: int) -> list[tuple[str, float]]:
        """Members due at or before ``until``, earliest first."""
        ...

    async def due_in(
        self, keys: Sequence[str], until: float, limit: int
    ) -> dict[str, list[tuple[str, float]]]:
        """:meth:`due` of each index key (up to ``limit`` from each), in one round trip."""
        ...

    async def unschedule(self, entries: Sequence[tuple[str, str, float]]) -> None:
        """Remove entries, each only if still at the given due time (not moved since)."""
        ...

    async def schedule_earliest(self, entries: Sequence[tuple[str, str, float]]) -> None:
        """Add entries, or move them earlier; never later. One already at or before its due
        moves a millisecond earlier: a ``reschedule`` by whoever read it before then fails."""
        ...

    async def reschedule(self, entries: Sequence[tuple[str, str, float, float | None]]) -> None:
        """Move each entry ``(key, member, seen, due)`` to ``due`` (None: remove it), only if it
        is still at ``seen``: whoever moved it meanwhile knows better. One round trip for all."""
        ...


MEMBER_PART: Final = "m:"
PENDING_PART: Final = "q:"
BASE_PART: Final = "b"
CHECKPOINT_PART: Final = "c"
CLOSE_PART: Final = "jt"  # when a contact's journal may close (engine/stages/journal.py)
JOURNAL_PART: Final = "j:"


def encode_state(state: ContactState | AccountState) -> bytes:
    """A contact's state, or an account without its members (see :func:`member_parts`)."""
    return orjson.dumps(state.to_dict())


def encode_contact(state: ContactState, codec: Codec) -> bytes:
    """A contact's stored value: JSON, compressed as ``codec`` says (see codec.py)."""
    return compress_value(orjson.dumps(state.to_dict()), codec)


def decode_state(raw: bytes) -> ContactState:
    """Any stored form (plain JSON, zstd, zlib), whatever the setting is now."""
    return ContactState.from_dict(orjson.loads(decompress_value(raw)))


def stored_address(raw: bytes) -> str | None:
    """A stored contact's address as typed, else as normalised (``email_display or email`` of
    :func:`decode_state`), without building the state: a buying-group handoff asks it of every
    member, and building a state is most of decoding one."""
    fields = orjson.loads(decompress_value(raw))
    address: str | None = fields.get("ed") or fields.get("e")
    return address


def member_parts(
    account: AccountState,
    contact_ids: Iterable[str],
    codec: Codec = "none",
    encoded: dict[int, bytes] | None = None,
) -> dict[str, bytes | None]:
    """The stored parts of the given members: their snapshot, or None for one no longer held.
    ``encoded``: snapshots stored already (by ``id``, see :func:`queued_encodings`), written as
    those bytes instead of being encoded again."""
    members = account.members
    out: dict[str, bytes | None] = {}
    for c in contact_ids:
        member = members.get(c)
        if member is None:
            out[MEMBER_PART + c] = None
            continue
        known = encoded.get(id(member)) if encoded else None
        out[MEMBER_PART + c] = known if known is not None else _snapshot_value(member, codec)
    return out


def queued_encodings(waiting: dict[str, MemberSnapshot], parts: dict[str, bytes]) -> dict[int, bytes]:
    """The stored bytes of snapshots that waited in an account (its ``pending`` as loaded, and
    its stored ``parts``), by the snapshot's ``id``: a point applied later makes its snapshot a
    member, the very object that waited, so its bytes are the ones stored already. The caller
    keeps ``waiting`` alive while it uses the result (an ``id`` is unique only while its object
    lives)."""
    out: dict[int, bytes] = {}
    for name, snapshot in waiting.items():
        stored = parts.get(PENDING_PART + name)
        if stored is not None:
            out[id(snapshot)] = stored
    return out


def pending_parts(
    account: AccountState, names: Iterable[str], codec: Codec = "none"
) -> dict[str, bytes | None]:
    """The stored parts of snapshots waiting to be applied: written, or None once applied."""
    pending = account.pending
    return {PENDING_PART + n: _snapshot_value(pending[n], codec) if n in pending else None for n in names}


def _snapshot_value(snapshot: MemberSnapshot, codec: Codec) -> bytes:
    return compress_value(orjson.dumps(snapshot.to_dict()), codec)


def decode_account(raw: bytes, parts: dict[str, bytes] | None = None) -> AccountState:
    """An account from its value and its parts (without parts: firmographics only)."""
    members, pending = {}, {}
    for name, value in (parts or {}).items():
        if name.startswith(MEMBER_PART):
            members[name[len(MEMBER_PART) :]] = MemberSnapshot.from_dict(
                orjson.loads(decompress_value(value))
            )
        elif name.startswith(PENDING_PART):
            pending[name[len(PENDING_PART) :]] = MemberSnapshot.from_dict(
                orjson.loads(decompress_value(value))
            )
    return AccountState.from_dict(orjson.loads(decompress_value(raw)), members, pending)


def journal_name(key: PointKey) -> str:
    """The part holding one journal entry of a contact (see scoring/timeline.py)."""
    at, _group, point_id, rank, sub = key
    return f"{JOURNAL_PART}{float_text(at)}\t{point_id}\t{rank}\t{sub}"


def float_text(value: float) -> str:
    """``repr(value)``, made without the shortest-digits search for the values event times are
    (whole microseconds, from 1 s to 2**32 s): repr was ~7k instructions, most of a journal name.

    For such a value the decimal of its microseconds, trailing zeros dropped, is what repr gives:
    it reads back as ``value`` (checked), and no shorter decimal can: below 2**32 doubles are at
    most 2**-20 s apart (under a microsecond), so any other decimal of a microsecond or coarser
    reads back as another double. From 1 s up repr writes no exponent."""
    if 1.0 <= value < _EXACT_BELOW:
        micros = int(value * 1_000_000.0 + 0.5)
        if micros / 1_000_000 == value:
            whole = micros // 1_000_000
            part = micros % 1_000_000
            if part == 0:
                return f"{whole}.0"
            return f"{whole}.{str(1_000_000 + part)[1:].rstrip('0')}"
    return repr(value)


_EXACT_BELOW: Final = float(2**32)


def journal_key(name: str) -> PointKey:
    at, point_id, rank, sub = name[len(JOURNAL_PART) :].split("\t")
    return (float(at), 0, point_id, int(rank), sub)


def encode_journal(record_time: float | None, payload: bytes, codec: Codec = "none") -> bytes:
    """A journal entry: the Kafka record time, then the event's bytes as consumed (or, for a
    merge, the merged profile's encoded state; empty for a link without state). Compressed, the
    header says so (a record's bytes as consumed need not start with ``{``)."""
    stamp = "None" if record_time is None else float_text(record_time)  # repr's text, cheaper
    if codec == "none" or not payload:
        return f"{stamp}\n".encode() + payload
    return f"{stamp}\t{codec}\n".encode() + compress_value(payload, codec)


def decode_journal(raw: bytes) -> tuple[float | None, bytes]:
    head, _, payload = raw.partition(b"\n")
    stamp, tab, _codec = head.partition(b"\t")
    return (None if stamp == b"None" else float(stamp)), decompress_value(payload) if tab else payload
