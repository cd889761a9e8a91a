"""A contact's decisions in one batch, as a pure function of what was loaded: no store, no I/O.

``plan`` sorts a contact's new inputs (records consumed before are skipped, by offset or event
id; merges become points of their own) and says whether its journal must be applied again (an
input falls before the last applied point). ``decide`` applies the timeline (scoring/timeline.py)
and returns the outcome: the state to write, the journal's parts, the outbox entries (handoffs,
lifecycle events, timers, member snapshots per account), and what to count. The contact stage
(stages/contact.py) loads, resolves aliases, links profiles, asks these two, and commits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from leadstream.engine.input.decode import parse_event
from leadstream.engine.outbox import (
    handoff_entries,
    journal_timer_entry,
    lifecycle_entries,
    snapshot_entries,
    timer_entries,
)
from leadstream.engine.records import SourceRecord
from leadstream.engine.stages.journal import (
    EntryCache,
    Journal,
    close_moves,
    journal_writes,
    kept_entries,
)
from leadstream.scoring import ContactState
from leadstream.scoring.accounts import account_of
from leadstream.scoring.events import AnyEvent
from leadstream.scoring.firmographics import Version, valid_from_times
from leadstream.scoring.signals import CompiledModel
from leadstream.scoring.state import MemberSnapshot, PointKey, event_fingerprint
from leadstream.scoring.timeline import (
    LAST,
    Bounds,
    Entry,
    PointOutcome,
    cut,
    event_key,
    late,
    merge_key,
    recheck_key,
    run,
)
from leadstream.state.codec import Codec
from leadstream.state.keys import contact_key
from leadstream.state.port import (
    RecordWrite,
    StoredRecord,
    decode_state,
    encode_contact,
    encode_journal,
    encode_state,
)

__all__ = ["REMOVAL_VERSION", "ContactDecider", "ContactOutcome", "ContactPlan", "PendingEvent"]

# A merged profile's removal from its account outranks every snapshot that profile ever sent.
REMOVAL_VERSION: Final = 1 << 62
EMPTY_SOURCES: Final[Mapping[str, ContactState]] = MappingProxyType({})


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)
class PendingEvent:
    record: SourceRecord
    event: AnyEvent
    profile: str  # the id the event names: contact id, email:<address> or anon:<id>
    at: float  # event time, epoch seconds

    def __init__(
        self,
        record: SourceRecord,
        event: AnyEvent,
        profile: str,
        at: float,
    ) -> None:
        self.record = record
        self.event = event
        self.profile = profile
        self.at = at

    @property
    def record_time(self) -> float | None:
        stamp = self.record.timestamp_ms
        return stamp / 1000.0 if stamp is not None else None


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)
class ContactPlan:
    """One contact in one attempt: what is new, and whether its journal is applied again."""

    contact: str
    stored: StoredRecord
    state: ContactState  # as stored (applied to in place unless replaying)
    journal: Journal
    new: list[Entry]
    payloads: dict[PointKey, bytes]  # journal parts of the new entries
    offsets: dict[str, int]  # source partition -> highest new offset
    duplicates: int
    timers_before: dict[str, float]
    fit_seen_before: list[float]
    replay: bool
    replayed: list[Entry]  # the journal's entries, when replaying

    def __init__(
        self,
        contact: str,
        stored: StoredRecord,
        state: ContactState,
        journal: Journal,
        new: list[Entry],
        payloads: dict[PointKey, bytes],
        offsets: dict[str, int],
        duplicates: int,
        timers_before: dict[str, float],
        fit_seen_before: list[float],
        replay: bool = False,
        replayed: list[Entry] | None = None,
    ) -> None:
        self.contact = contact
        self.stored = stored
        self.state = state
        self.journal = journal
        self.new = new
        self.payloads = payloads
        self.offsets = offsets
        self.duplicates = duplicates
        self.timers_before = timers_before
        self.fit_seen_before = fit_seen_before
        self.replay = replay
        self.replayed = [] if replayed is None else replayed


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)
class ContactOutcome:
    """One contact's result in one attempt; counted only once its commit succeeded."""

    plan: ContactPlan
    state: ContactState
    write: RecordWrite | None
    handoffs: list[dict[str, Any]]
    lifecycle: list[dict[str, Any]]
    applied: int
    duplicates: int
    rules: list[str]
    snapshots: dict[str, list[MemberSnapshot]]

    def __init__(
        self,
        plan: ContactPlan,
        state: ContactState,
        write: RecordWrite | None = None,
        handoffs: list[dict[str, Any]] | None = None,
        lifecycle: list[dict[str, Any]] | None = None,
        applied: int = 0,
        duplicates: int = 0,
        rules: list[str] | None = None,
        snapshots: dict[str, list[MemberSnapshot]] | None = None,
    ) -> None:
        self.plan = plan
        self.state = state
        self.write = write
        self.handoffs = [] if handoffs is None else handoffs
        self.lifecycle = [] if lifecycle is None else lifecycle
        self.applied = applied
        self.duplicates = duplicates
        self.rules = [] if rules is None else rules
        self.snapshots = {} if snapshots is None else snapshots


class ContactDecider:
    """The per-contact decisions of a model; holds only configuration and a decode memo."""

    def __init__(
        self, compiled: CompiledModel, prefix: str, codec: Codec, bounds: Bounds, entries: EntryCache
    ) -> None:
        self._compiled = compiled
        self._prefix = prefix
        self._codec = codec
        self._bounds = bounds
        self._entries = entries

    def _key(self, profile: str) -> str:
        return contact_key(self._prefix, profile)

    def _encode(self, state: ContactState) -> bytes:
        return encode_contact(state, self._codec)

    def plan(
        self,
        contact: str,
        stored: StoredRecord,
        state: ContactState,
        items: list[PendingEvent],
        merges: list[tuple[str, ContactState | None, PendingEvent]],
        history: dict[str, list[Version]],
        unmerged: Mapping[str, ContactState] = EMPTY_SOURCES,
    ) -> ContactPlan:
        """``unmerged``: profiles routed here whose state the contact has not merged yet (see
        ContactStage._unmerged); what they hold already comes with the merge."""
        journal = Journal.of(stored)
        plan = ContactPlan(
            contact, stored, state, journal, [], {}, {}, 0, dict(state.timers), list(state.fit_seen)
        )
        seen = state.applied
        for item in items:
            record = item.record
            source_partition = f"{record.topic}:{record.partition}"
            if record.offset <= seen.get(source_partition, -1):
                plan.duplicates += 1  # consumed again after a restart, a rebalance or a reset
                continue
            plan.offsets[source_partition] = max(record.offset, plan.offsets.get(source_partition, -1))
            event_id = item.event.event_id
            if item.event.fingerprint in state.seen_ids or event_id in state.seen_ids:
                plan.duplicates += 1  # the producer sent the same event twice
                continue
            source = unmerged.get(item.profile) if item.profile != contact else None
            if source is not None and _holds(source, source_partition, record.offset, event_id):
                plan.duplicates += 1  # consumed again; counted in the profile the contact merges
                continue
            entry = Entry(
                event_key(item.at, event_id), event=item.event, record_time=item.record_time, new=True
            )
            plan.new.append(entry)
            plan.payloads[entry.key] = encode_journal(entry.record_time, record.value or b"", self._codec)
        for profile, source, item in merges:
            entry = Entry(
                merge_key(item.at, item.event.event_id, profile),
                merged=(profile, source),
                record_time=item.record_time,
                new=True,
            )
            plan.new.append(entry)
            plan.payloads[entry.key] = encode_journal(
                entry.record_time, encode_state(source) if source is not None else b"", self._codec
            )
        domain = account_of(self._compiled, state)
        replay, unseen = late(state, [e.key for e in plan.new], history.get(domain) if domain else None)
        if replay and journal.base is not None:
            plan.replay = True
            plan.replayed = journal.entries(parse_event, decoded=self._entries)
        elif domain and state.last_key is not None and any(u <= state.last_key[0] for u in unseen):
            # A version for points no journal holds any more: it applies from the last one.
            plan.new.append(Entry(recheck_key(state.last_key[0], domain), recheck=True))
        return plan

    def decide(
        self, plan: ContactPlan, history: dict[str, list[Version]], read_through: float = math.inf
    ) -> ContactOutcome:
        """``read_through``: the event time every input partition still being read has passed (the
        stream's low watermark); the journal keeps what is newer than the horizon before it."""
        contact, stored, journal = plan.contact, plan.stored, plan.journal
        checkpoint = None
        if plan.replay:
            state = journal.base_state(contact)
            entries = plan.replayed + plan.new
            checkpoint = journal.checkpoint_state()
        else:
            state, entries = plan.state, plan.new
        outcome = ContactOutcome(plan, state)
        applied = dict(plan.state.applied)
        for source_partition, offset in plan.offsets.items():
            applied[source_partition] = max(offset, applied.get(source_partition, -1))
        first_new = min((e.key for e in plan.new), default=None)
        # Member snapshots depend on events and merges only: a replay caused by a late
        # firmographics version leaves those before the first new input as they were sent.
        snapshots_from = (first_new or LAST) if plan.replay else None
        points = run(
            state,
            entries,
            self._compiled,
            history,
            self._encode,
            checkpoint=checkpoint,
            snapshots_from=snapshots_from,
        )
        state.applied = applied
        domain = account_of(self._compiled, state)
        state.fit_seen = valid_from_times(history.get(domain, [])) if domain else []
        outcome.duplicates = plan.duplicates
        version = stored.version + 1
        for point in points:
            self._count(point, outcome)
            for account, snapshot in point.snapshots:  # none before snapshots_from
                snapshot.version = REMOVAL_VERSION if snapshot.contact_id != contact else version
                snapshot.fit_seen = state.fit_seen
                outcome.snapshots.setdefault(account, []).append(snapshot)
        changed = bool(entries) or bool(points) or state.fit_seen != plan.fit_seen_before
        if not changed:
            return outcome
        parts, close_at = self._journal_parts(plan, points, state, history, read_through)
        entries_out = handoff_entries(outcome.handoffs)
        entries_out.update(lifecycle_entries(outcome.lifecycle))
        entries_out.update(timer_entries(plan.timers_before, state.timers))
        if close_at is not None:
            entries_out.update(journal_timer_entry(close_at))
        for account, snapshots in outcome.snapshots.items():
            entries_out.update(snapshot_entries(account, contact, version, snapshots))
        outcome.write = RecordWrite(
            self._key(contact), stored.version, self._encode(state), entries_out, parts=parts
        )
        return outcome

    def _count(self, point: PointOutcome, outcome: ContactOutcome) -> None:
        decision = point.decision
        if decision is not None and not point.suppressed:
            outcome.lifecycle.extend(decision.lifecycle)
            if decision.handoff is not None:
                outcome.handoffs.append(decision.handoff)
        if point.entry is None or not point.entry.new or decision is None:
            return
        if decision.duplicate:
            outcome.duplicates += 1
        else:
            outcome.applied += 1
            outcome.rules.extend(decision.counted)

    def _journal_parts(
        self,
        plan: ContactPlan,
        points: list[PointOutcome],
        state: ContactState,
        history: dict[str, list[Version]],
        read_through: float,
    ) -> tuple[dict[str, bytes | None], float | None]:
        """Where the journal goes: the new entries join it, the bounds cut its oldest entries into
        the base, and the last published decision's state becomes the checkpoint. With it, when
        the journal may close if the contact stays quiet, if that moved (else None)."""
        journal = plan.journal
        published = [p for p in points if p.published]
        state_after = published[-1].state_after if published else None
        checkpoint_bytes = state_after or journal.checkpoint
        # The horizon counts back from the contact's clock, or from the stream's low watermark when
        # that is behind it: while another topic's partitions are read days behind this contact's
        # (a backlog, a lagging consumer), its inputs from them still find their place.
        horizon_from = min(state.clock, read_through)
        through = cut([*journal.parts, *plan.payloads], horizon_from, self._bounds)
        new_base = None
        if through is not None:
            checkpoint = decode_state(checkpoint_bytes) if checkpoint_bytes and state.published_key else None
            new_base = self._fold_base(plan, through, checkpoint, history)
        writes = journal_writes(
            journal, plan.payloads, through, new_base, plan.stored.value, (state.published_key, state_after)
        )
        added = [e for e in plan.new if e.key in plan.payloads]
        close_at = close_moves(
            journal,
            added,
            lambda: kept_entries(journal, plan.payloads, through),
            writes,
            self._bounds.horizon_s,
        )
        return writes, close_at

    def _fold_base(
        self,
        plan: ContactPlan,
        through: PointKey,
        checkpoint: ContactState | None,
        history: dict[str, list[Version]],
    ) -> bytes:
        """The state right after ``through``, from the base: the bounds cut the journal there."""
        contact, journal = plan.contact, plan.journal
        if journal.base is not None:
            base = journal.base_state(contact)
        else:  # the journal starts in this batch: its base is the contact as stored before it
            base = decode_state(plan.stored.value) if plan.stored.value else ContactState(contact)
        stored_entries = (
            plan.replayed if plan.replay else journal.entries(parse_event, through, self._entries)
        )
        entries = [e for e in [*stored_entries, *plan.new] if e.key <= through]
        run(
            base,
            entries,
            self._compiled,
            history,
            self._encode,
            until=through,
            checkpoint=checkpoint,
            snapshots_from=LAST,  # a base only: its points' snapshots were sent when they were applied
        )
        return self._encode(base)


def _holds(state: ContactState, source_partition: str, offset: int, event_id: str) -> bool:
    """Whether ``state`` has applied this record (by its offset) or this event (by its id)."""
    return (
        offset <= state.applied.get(source_partition, -1)
        or event_fingerprint(event_id) in state.seen_ids
        or event_id in state.seen_ids
    )
