"""A contact's journal as stored: its recent timeline points, open to late inputs.

Parts of the contact's hash (see state/port.py): ``b``, the base state (the contact before the
first journal entry; ``~`` for a contact that had no state then); one ``j:`` part per entry: the
event's bytes as consumed, or a merged profile's state; ``c``, the decision checkpoint (the
contact right after its last published decision), while an entry at or before it remains; and
``jt``, when the journal may close.
Without a journal the stored value is the whole story. scoring/timeline.py says why.

A journal closes on its own once its contact has been quiet for the horizon (``close_due``): the
contact's commits keep a ``journal`` timer (engine/outbox.py) at the horizon after its latest
entry (and ``jt`` with it, so a commit knows whether the timer moves without reading the
entries), and the timer service (eventtime/timers.py) then drops the journal, base and checkpoint
in one compare-and-set when the stream allows it (``may_close``). The stored value already is
the state after the last entry: nothing is folded, only what a late input could have used goes.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from leadstream.scoring.accounts import Release
from leadstream.scoring.state import ContactState, PointKey
from leadstream.scoring.timeline import Entry
from leadstream.state.port import (
    BASE_PART,
    CHECKPOINT_PART,
    CLOSE_PART,
    JOURNAL_PART,
    StoredRecord,
    decode_journal,
    decode_state,
    journal_key,
    journal_name,
)

__all__ = [
    "CLOSE_STEP_S",
    "NO_STATE",
    "EntryCache",
    "Journal",
    "close_due",
    "close_moves",
    "closing_writes",
    "journal_writes",
    "kept_entries",
    "may_close",
]

logger = logging.getLogger(__name__)
# The base of a contact that had no state when its journal started (an empty part would read as
# a removal in the commit function).
NO_STATE: Final = b"~"
# Its due time is rounded up to this step (or a quarter of the horizon, if shorter), so a contact's
# events within one step move it once.
CLOSE_STEP_S: Final = 86_400.0


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)
class Journal:
    base: bytes | None  # None: no journal
    parts: dict[PointKey, bytes]  # entry key -> stored part value
    checkpoint: bytes | None
    close_at: float | None  # when it may close (None: not known, a journal of before)

    def __init__(
        self,
        base: bytes | None = None,
        parts: dict[PointKey, bytes] | None = None,
        checkpoint: bytes | None = None,
        close_at: float | None = None,
    ) -> None:
        self.base = base
        self.parts = {} if parts is None else parts
        self.checkpoint = checkpoint
        self.close_at = close_at

    @classmethod
    def of(cls, stored: StoredRecord) -> Journal:
        parts = {}
        for name, value in stored.parts.items():
            if name.startswith(JOURNAL_PART):
                parts[journal_key(name)] = value
        close_at = stored.parts.get(CLOSE_PART)
        return cls(
            stored.parts.get(BASE_PART),
            parts,
            stored.parts.get(CHECKPOINT_PART),
            float(close_at) if close_at else None,
        )

    def checkpoint_state(self) -> ContactState | None:
        if not self.checkpoint or self.checkpoint == NO_STATE:
            return None
        return decode_state(self.checkpoint)

    def base_state(self, contact: str) -> ContactState:
        return decode_state(self.base) if self.base and self.base != NO_STATE else ContactState(contact)

    def entries(
        self,
        parse_event: Callable[[bytes], Any],
        through: PointKey | None = None,
        decoded: EntryCache | None = None,
    ) -> list[Entry]:
        """The stored entries (up to ``through``), decoded to be applied again. ``decoded`` keeps
        entries decoded before (they never change: events are immutable, a merged state is
        only read)."""
        out = []
        for key, raw in sorted(self.parts.items()):
            if through is not None and key > through:
                break
            entry = decoded.get((key, raw)) if decoded is not None else None
            if entry is None:
                entry = _decode_entry(key, raw, parse_event)
                if entry is None:
                    continue
                if decoded is not None:
                    decoded.put((key, raw), entry)
            out.append(entry)
        return out


def _decode_entry(key: PointKey, raw: bytes, parse_event: Callable[[bytes], Any]) -> Entry | None:
    record_time, payload = decode_journal(raw)
    try:
        if key[3] == 0:  # a merge: the profile's state, or nothing for a plain link
            source = decode_state(payload) if payload else None
            return Entry(key, merged=(key[4], source), record_time=record_time)
        return Entry(key, event=parse_event(payload), record_time=record_time)
    except Exception as exc:  # a journal written by another release that no longer parses
        logger.warning("dropping journal entry %s of a contact: %s", key, exc)
        return None


class EntryCache:
    """Decoded journal entries, least recently used first out."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[tuple[PointKey, bytes], Entry] = OrderedDict()

    def get(self, key: tuple[PointKey, bytes]) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple[PointKey, bytes], entry: Entry) -> None:
        if self._capacity <= 0:
            return
        self._entries[key] = entry
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)


def _record_time(raw: bytes) -> float | None:
    """The Kafka record time in a journal part's header, without decoding the rest."""
    stamp = raw[: raw.find(b"\n")].partition(b"\t")[0]
    return None if stamp == b"None" else float(stamp)


def _latest(parts: Mapping[PointKey, bytes]) -> tuple[float, float | None]:
    """The latest entry's event time, and the latest record time of any entry (None: none known)."""
    at = max(key[0] for key in parts)
    times = [t for t in map(_record_time, parts.values()) if t is not None]
    return at, max(times) if times else None


def close_due(parts: Mapping[PointKey, bytes], horizon_s: float) -> float | None:
    """When a journal holding ``parts`` may close, at the earliest: the horizon after its latest
    entry, by event time or by the time its record reached Kafka, whichever is later (a backfill
    of old events keeps its journals for the horizon of wall time too), rounded up to the step.
    None for no journal."""
    if not parts:
        return None
    at, record_time = _latest(parts)
    return _rounded(max(at, record_time) if record_time is not None else at, horizon_s)


def _rounded(latest: float, horizon_s: float) -> float:
    step = min(CLOSE_STEP_S, horizon_s / 4) or 1.0
    return math.ceil((latest + horizon_s) / step) * step


def close_moves(
    journal: Journal,
    added: Sequence[Entry],
    kept: Callable[[], Mapping[PointKey, bytes]],
    writes: dict[str, bytes | None],
    horizon_s: float,
) -> float | None:
    """Where a commit moves the journal's timer, or None when it stays; the close time (``jt``)
    joins ``writes`` whenever it moves, the timer only when it must: when the journal starts (or
    has no ``jt`` or no entry yet), not when a visit only makes it close later. ``added``: the
    entries joining the journal, whose record times are at hand (the stored ones are read only
    for a journal of before, without ``jt``)."""
    if writes.get(BASE_PART, journal.base) is None:  # no journal after this commit
        if journal.close_at is not None:
            writes[CLOSE_PART] = None
        return None
    if journal.close_at is None and journal.base is not None:  # a journal of before
        due = close_due(kept(), horizon_s)
    else:
        latest = max(
            (max(e.key[0], e.record_time) if e.record_time is not None else e.key[0] for e in added),
            default=None,
        )
        # Never earlier: entries cut away only make the journal close later than need be.
        before = journal.close_at if journal.close_at is not None else -math.inf
        due = max(before, _rounded(latest, horizon_s)) if latest is not None else None
    if due is None or due == journal.close_at:
        return None
    writes[CLOSE_PART] = repr(due).encode()
    if journal.close_at is not None and journal.parts and due > journal.close_at:
        # Later, and the timer index already holds this journal's timer, due no later (while a
        # journal has entries, its timer leaves the index only when it closes): that one fires,
        # finds the contact not quiet and moves itself to ``jt`` then (eventtime/timers.py). Moved
        # on every visit instead, the timer cost an outbox entry, its delivery and Redis's
        # compare-and-delete of it a visit: most of a sparse stream's acknowledgements.
        return None
    return due


def may_close(journal: Journal, horizon_s: float, release: Release) -> bool:
    """Whether the stream is past the horizon after the journal's latest entry: every input
    partition has read past it in event time, or has been read to its end a horizon after the
    latest entry's record was written (an idle partition), as the account stage's release rule
    says. An input that falls before the journal after that is applied after the contact's
    latest point, as one older than its journal always was (README: "Beyond the horizon")."""
    if journal.base is None or not journal.parts:
        return False
    at, record_time = _latest(journal.parts)
    return release.allows(at + horizon_s, record_time + horizon_s if record_time is not None else None)


def closing_writes(stored_parts: Mapping[str, bytes]) -> dict[str, bytes | None]:
    """The part writes that drop a contact's journal, base and checkpoint."""
    return {
        name: None
        for name in stored_parts
        if name.startswith(JOURNAL_PART) or name in (BASE_PART, CHECKPOINT_PART, CLOSE_PART)
    }


def kept_entries(
    journal: Journal, added: dict[PointKey, bytes], through: PointKey | None
) -> dict[PointKey, bytes]:
    """The entries a journal holds after ``added`` joined it and it was cut at ``through``."""
    return {k: v for k, v in {**journal.parts, **added}.items() if through is None or k > through}


def journal_writes(
    journal: Journal,
    added: dict[PointKey, bytes],
    through: PointKey | None,
    new_base: bytes | None,
    value_before: bytes | None,
    checkpoint: tuple[PointKey | None, bytes | None],
) -> dict[str, bytes | None]:
    """The part writes that take the stored journal to its next form.

    ``added``: new entries (key -> stored part value); ``through``: entries at or before it leave
    the journal and ``new_base`` (the state right after ``through``) becomes the base.
    ``value_before`` is the contact as stored before this batch: the base of a journal that starts
    now. ``checkpoint``: the last published decision's point and the state right after it (None
    when unchanged); kept while an entry at or before that point remains.
    """
    writes: dict[str, bytes | None] = {}
    kept = kept_entries(journal, added, through)
    for key in journal.parts:
        if key not in kept:
            writes[journal_name(key)] = None
    for key, value in added.items():
        if key in kept:
            writes[journal_name(key)] = value
    if not kept:
        if journal.base is not None:
            writes[BASE_PART] = None
    elif through is not None:
        assert new_base is not None
        writes[BASE_PART] = new_base
    elif journal.base is None:
        writes[BASE_PART] = value_before or NO_STATE
    # Kept while there is a journal to apply again: a late input may fall before the decision.
    published, state_after = checkpoint
    needed = published is not None and bool(kept)
    if needed and state_after is not None:
        writes[CHECKPOINT_PART] = state_after
    elif needed and journal.checkpoint is None:
        writes[CHECKPOINT_PART] = value_before or NO_STATE  # decided before this journal began
    elif not needed and journal.checkpoint is not None:
        writes[CHECKPOINT_PART] = None
    return writes
