"""A contact's timeline: its events, the profile merges they cause and the moments its account's
firmographics change, applied in event-time order whatever order they were consumed in.

Inputs reach a worker out of order: one contact's events come over several topics, and
firmographics arrive before or, often, after the events they concern. A contact therefore keeps
its recent points (its journal, bounded in time and count) and the state before them (its base).
An input that falls before the last applied point is put in its place and the journal is applied
again from the base: the scores, and the member snapshots its account gets, are those of
event-time order, and decisions not yet published are those event-time order gives.

A published decision (a handoff, a lifecycle event) is never revisited: the contact keeps the
state right after its last one (the decision checkpoint), and a replay takes the decision fields
(stage, qualification count, timers...) from it when it passes that point. Only later points
decide anew.

Pure: no I/O, no clock. The caller loads, encodes and commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from leadstream.scoring.accounts import account_of, member_snapshot
from leadstream.scoring.engine import Decision, apply, fire_due, reevaluate
from leadstream.scoring.events import AnyEvent, SalesOutcome
from leadstream.scoring.firmographics import FirmographicsAsOf, Version
from leadstream.scoring.fit import evaluate_fit
from leadstream.scoring.lifecycle import sales_outcome
from leadstream.scoring.merge import merge_contacts
from leadstream.scoring.signals import CompiledModel
from leadstream.scoring.state import ContactState, MemberSnapshot, PointKey

__all__ = [
    "DECISION_FIELDS",
    "LAST",
    "Bounds",
    "Entry",
    "PointOutcome",
    "cut",
    "decisions_only",
    "event_key",
    "fired_key",
    "firmographics_key",
    "late",
    "merge_key",
    "recheck_key",
    "restore_decisions",
    "run",
]

LAST: Final[PointKey] = (float("inf"), 9, "", 9, "")


def event_key(at: float, event_id: str) -> PointKey:
    return (at, 0, event_id, 1, "")


def merge_key(at: float, event_id: str, profile: str) -> PointKey:
    """A merge happens just before the event that linked the profile."""
    return (at, 0, event_id, 0, profile)


def firmographics_key(valid_from: float, domain: str) -> PointKey:
    return (valid_from, 1, domain, 0, "")


def fired_key(at: float) -> PointKey:
    """Timers fired between events (SLA breaches, decayed MQLs): after every input at that time."""
    return (at, 3, "timers", 0, "")


def recheck_key(at: float, domain: str) -> PointKey:
    """Deciding again at an already applied moment: a firmographics version arrived after the
    contact's journal had closed over the points it concerns, so it applies from here on."""
    return (at, 2, domain, 0, "")


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)  # not frozen: built per event, frozen __init__ is ~4x slower
class Entry:
    """One input on the timeline: an event, or a merge of another profile into this contact."""

    key: PointKey
    event: AnyEvent | None
    merged: tuple[str, ContactState | None] | None  # (profile, its state; None: link only)
    record_time: float | None  # the Kafka record's time, seconds
    new: bool  # consumed in this batch (counted), rather than applied again from the journal
    recheck: bool  # no input: decide again at this moment (see ``recheck_key``)

    def __init__(
        self,
        key: PointKey,
        event: AnyEvent | None = None,
        merged: tuple[str, ContactState | None] | None = None,
        record_time: float | None = None,
        new: bool = False,
        recheck: bool = False,
    ) -> None:
        self.key = key
        self.event = event
        self.merged = merged
        self.record_time = record_time
        self.new = new
        self.recheck = recheck


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)
class PointOutcome:
    key: PointKey
    entry: Entry | None  # None: a firmographics version started to hold
    decision: Decision | None  # None for a merge
    snapshots: list[tuple[str, MemberSnapshot]]  # (account, snapshot)
    published: bool  # a handoff or a lifecycle event to publish
    suppressed: bool  # at or before the last published decision: applied, not decided
    state_after: bytes | None  # the encoded decision fields right after a publishing point

    def __init__(
        self,
        key: PointKey,
        entry: Entry | None,
        decision: Decision | None,
        snapshots: list[tuple[str, MemberSnapshot]] | None = None,
        published: bool = False,
        suppressed: bool = False,
        state_after: bytes | None = None,
    ) -> None:
        self.key = key
        self.entry = entry
        self.decision = decision
        self.snapshots = [] if snapshots is None else snapshots
        self.published = published
        self.suppressed = suppressed
        self.state_after = state_after


# What a decision changes on a contact; the rest of its state depends on its inputs alone.
DECISION_FIELDS: Final = (
    "mql_count",
    "last_mql_at",
    "dipped_since_mql",
    "last_handoff_id",
    "stage",
    "transitions",
    "timers",
    "sla_step",
    "published_key",
)


def restore_decisions(state: ContactState, checkpoint: ContactState) -> None:
    """Take the decision fields of ``checkpoint`` (the state after the last published decision)."""
    for name in DECISION_FIELDS:
        value = getattr(checkpoint, name)
        setattr(state, name, dict(value) if isinstance(value, dict) else value)


def decisions_only(state: ContactState) -> ContactState:
    """The checkpoint of a published decision: its decision fields, the rest as a new contact's.
    A checkpoint is only ever read by :func:`restore_decisions`, and the whole state (signals,
    pages, seen ids) was ~3x its bytes, encoded at every publishing point and stored while the
    journal is open."""
    checkpoint = ContactState(state.contact_id)
    restore_decisions(checkpoint, state)
    return checkpoint


def run(
    state: ContactState,
    entries: Sequence[Entry],
    compiled: CompiledModel,
    history: dict[str, list[Version]],
    encode: Callable[[ContactState], bytes],
    until: PointKey = LAST,
    checkpoint: ContactState | None = None,
    snapshots_from: PointKey | None = None,
) -> list[PointOutcome]:
    """Apply ``entries`` to ``state`` in key order, and every firmographics change of the
    contact's account among them and after them (up to ``until``).

    ``snapshots_from``: points before it take no member snapshots for the account (None: every
    point does). A run that only rebuilds a state (a journal's base) or applies again points
    whose snapshots were sent before needs none, and copying a member's rules at every point was
    a tenth of applying it.

    ``checkpoint``: when applying again from a base before the last published decision (at
    ``checkpoint.published_key``), points up to it are applied for their inputs only, and the
    decision fields are taken from the checkpoint once the run passes it. A new input that falls
    before that decision still decides, just after it (:func:`_decide_late`): a sales outcome
    that reaches the stream after an SLA breach fired is recorded, not dropped.
    """
    outcomes: list[PointOutcome] = []
    decided = checkpoint.published_key if checkpoint is not None else None
    behind: list[Entry] = []  # new inputs at or before the checkpoint: they decide after it

    def passing(key: PointKey) -> None:
        nonlocal decided
        if decided is not None and checkpoint is not None and key > decided:
            restore_decisions(state, checkpoint)
            for late in behind:
                outcomes.append(_decide_late(state, late, decided, compiled, history, encode))
            decided = None

    # One entry (most runs): no sort, which would still call its key function.
    for entry in sorted(entries, key=lambda e: e.key) if len(entries) > 1 else entries:
        _firmographics_points(state, entry.key, compiled, history, encode, outcomes, passing, decided)
        if decided is not None:  # else a no-op, and a closure's call is a generic one
            passing(entry.key)
        outcome = _apply(
            state,
            entry,
            compiled,
            history,
            decided is None or entry.key > decided,
            snapshots_from is None or entry.key >= snapshots_from,
        )
        state.last_key = max(state.last_key or entry.key, entry.key)
        _settle(outcome, state, encode, decided)
        if outcome.suppressed and entry.new and not entry.recheck:
            behind.append(entry)
        outcomes.append(outcome)
    _firmographics_points(state, until, compiled, history, encode, outcomes, passing, decided)
    if decided is not None and checkpoint is not None and decided <= until:
        passing(LAST)
    return outcomes


def _decide_late(
    state: ContactState,
    entry: Entry,
    decided: PointKey,
    compiled: CompiledModel,
    history: dict[str, list[Version]],
    encode: Callable[[ContactState], bytes],
) -> PointOutcome:
    """A new input that fell before the last published decision: its inputs were applied in
    their place; its decision is taken right after that decision (the published ones stand)."""
    key: PointKey = (decided[0], 4, entry.key[2], entry.key[3], entry.key[4])
    now = max(state.clock, entry.key[0])
    event = entry.event
    if type(event) is SalesOutcome:
        lifecycle = fire_due(compiled, state, now) + sales_outcome(compiled, state, event, entry.key[0])
        decision = Decision(state, lifecycle=tuple(lifecycle))
    else:
        trigger = event.event_id if event is not None else f"merge:{entry.key[4]}"
        decision = reevaluate(state, compiled, now, FirmographicsAsOf(history, now), trigger)
    outcome = PointOutcome(key, None, decision, published=True)
    # Always a new checkpoint (even with nothing to publish): a later replay must not decide it again.
    state.published_key = key
    outcome.state_after = encode(decisions_only(state))
    return outcome


def _settle(
    outcome: PointOutcome,
    state: ContactState,
    encode: Callable[[ContactState], bytes],
    decided: PointKey | None,
) -> None:
    if decided is not None and outcome.key <= decided:
        outcome.suppressed, outcome.published = True, False
    elif outcome.published:
        state.published_key = outcome.key
        outcome.state_after = encode(decisions_only(state))


def _apply(
    state: ContactState,
    entry: Entry,
    compiled: CompiledModel,
    history: dict[str, list[Version]],
    decide: bool = True,
    snapshots: bool = True,
) -> PointOutcome:
    accounts = snapshots and compiled.accounts is not None
    before = account_of(compiled, state) if accounts else None
    outcome = PointOutcome(entry.key, entry, None)
    if entry.recheck:
        now = max(state.clock, entry.key[0])
        trigger = f"firmographics:{entry.key[2]}@{datetime.fromtimestamp(now, tz=UTC).isoformat()}"
        decision = reevaluate(state, compiled, now, FirmographicsAsOf(history, now), trigger)
        outcome.decision = decision
        outcome.published = decision.handoff is not None or bool(decision.lifecycle)
        return outcome
    if entry.merged is not None:
        profile, source = entry.merged
        if source is not None:
            merge_contacts(state, source, profile, compiled)
            gone = accounts and account_of(compiled, source)
            if gone:
                outcome.snapshots.append((gone, _removed(profile, entry)))
        elif profile not in state.linked:
            state.linked.append(profile)
        disqualified = evaluate_fit(compiled, state).disqualified_by is not None
    elif entry.event is not None:
        now = max(state.clock, entry.key[0])
        decision = apply(
            state, entry.event, compiled, now, FirmographicsAsOf(history, now), decide, at=entry.key[0]
        )
        outcome.decision = decision
        outcome.published = decision.handoff is not None or bool(decision.lifecycle)
        if decision.duplicate:
            return outcome
        disqualified = decision.disqualified
    else:
        raise ValueError(f"timeline entry {entry.key} holds no event, merge or recheck")
    if accounts:
        after = account_of(compiled, state)
        if after:
            snapshot = member_snapshot(compiled, state, 0, disqualified)
            # An input older than the journal's base is applied late: its snapshot shows the
            # contact as of now, so it takes its place at now.
            at, group, point_id, rank, sub = entry.key
            snapshot.point = (max(at, state.clock), group, point_id, rank, sub)
            snapshot.record_time = entry.record_time
            outcome.snapshots.append((after, snapshot))
        if before and before != after:  # the contact moved to another account
            outcome.snapshots.append((before, _removed(state.contact_id, entry)))
    return outcome


def _removed(contact_id: str, entry: Entry) -> MemberSnapshot:
    # The version is set by the contact's commit, like any snapshot's; a removal of a merged
    # profile outranks every snapshot that profile ever sent.
    return MemberSnapshot(contact_id, 0, removed=True, point=entry.key, record_time=entry.record_time)


def _firmographics_points(
    state: ContactState,
    limit: PointKey,
    compiled: CompiledModel,
    history: dict[str, list[Version]],
    encode: Callable[[ContactState], bytes],
    outcomes: list[PointOutcome],
    passing: Callable[[PointKey], None],
    decided: PointKey | None,
) -> None:
    """Decide again at each moment the account's firmographics change, between the contact's
    first event and ``limit``: a record valid from a later time applies from that time."""
    if state.since is None:
        return
    domain = account_of(compiled, state)
    versions = history.get(domain) if domain else None
    if not versions or domain is None:
        return
    for valid_from, _values, _record_time in list(versions):
        key = firmographics_key(valid_from, domain)
        if key >= limit:
            break
        if valid_from <= state.since or (state.last_key is not None and key <= state.last_key):
            continue
        if decided is not None and key <= decided:
            state.last_key = key  # decided and published before: nothing to take again
            continue
        passing(key)
        trigger = f"firmographics:{domain}@{datetime.fromtimestamp(valid_from, tz=UTC).isoformat()}"
        decision = reevaluate(state, compiled, valid_from, FirmographicsAsOf(history, valid_from), trigger)
        state.last_key = key
        outcome = PointOutcome(key, None, decision)
        outcome.published = decision.handoff is not None or bool(decision.lifecycle)
        _settle(outcome, state, encode, decided if decided is not None and key <= decided else None)
        outcomes.append(outcome)


@dataclass(frozen=True, slots=True)
class Bounds:
    """How much of a contact's past stays open to late inputs: the points within ``horizon_s`` of
    its latest event time, and at most ``max_points`` of them."""

    horizon_s: float
    max_points: int


def late(
    state: ContactState, new_keys: Sequence[PointKey], versions: Sequence[Version] | None
) -> tuple[bool, list[float]]:
    """Whether inputs fall before the last applied point (the journal must be applied again), and
    the firmographics versions of the contact's account it has not taken into account yet."""
    last = state.last_key
    unseen = [v[0] for v in versions or () if v[0] not in state.fit_seen]
    if last is None:
        return False, unseen
    if any(key < last for key in new_keys):
        return True, unseen
    return any(valid_from <= last[0] for valid_from in unseen), unseen


def cut(keys: Sequence[PointKey], clock: float, bounds: Bounds) -> PointKey | None:
    """Where the journal must be cut to stay within its bounds (entries at or before the returned
    key fold into the base), or None. It is cut down to half its length allowance at once, so a
    busy contact does not fold at every event."""
    remaining = sorted(keys)
    too_old = 0
    if remaining and remaining[0][0] < clock - bounds.horizon_s:
        # Past the horizon: fold down to half of it at once, not one entry per event.
        too_old = sum(1 for k in remaining if k[0] < clock - bounds.horizon_s / 2)
    excess = len(remaining) - bounds.max_points
    count = max(too_old, excess + bounds.max_points // 2 if excess > 0 else 0)
    if count <= 0:
        return None
    return remaining[min(count, len(remaining)) - 1]
