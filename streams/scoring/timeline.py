"""A contact's timeline: its events, the profile merges they cause and the moments its account's
firmographics change, applied in event-time order whatever order they were consumed in.

Inputs reach a worker out of order: one contact's events come over several topics, and
firmographics arrive before or, often, after the events they concern. A contact therefore keeps
the points it applied since its last published decision (its journal) and the state before them
(its base). An input that falls before the last applied point is put in its place, and the points
after the base are applied again: the outcome is the one the inputs would have given in event-time
order. Decisions already published are never revisited: a point that publishes something (a
handoff, a lifecycle event) becomes the new base. See ``plan`` for the bounds.

Pure: no I/O, no clock. The caller loads, encodes and commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streams.scoring.accounts import account_of, member_snapshot
from streams.scoring.engine import Decision, apply, reevaluate
from streams.scoring.firmographics import FirmographicsAsOf, Version
from streams.scoring.fit import evaluate_fit
from streams.scoring.merge import merge_contacts
from streams.scoring.signals import CompiledModel
from streams.scoring.state import ContactState, MemberSnapshot, PointKey

LAST: PointKey = (float("inf"), 9, "", 9, "")


def event_key(at: float, event_id: str) -> PointKey:
    return (at, 0, event_id, 1, "")


def merge_key(at: float, event_id: str, profile: str) -> PointKey:
    """A merge happens just before the event that linked the profile."""
    return (at, 0, event_id, 0, profile)


def firmographics_key(valid_from: float, domain: str) -> PointKey:
    return (valid_from, 1, domain, 0, "")


def recheck_key(at: float, domain: str) -> PointKey:
    """Deciding again at an already applied moment: a firmographics version arrived after the
    contact's journal had closed over the points it concerns, so it applies from here on."""
    return (at, 2, domain, 0, "")


@dataclass(frozen=True, slots=True)
class Entry:
    """One input on the timeline: an event, or a merge of another profile into this contact."""

    key: PointKey
    event: Any = None
    merged: tuple[str, ContactState | None] | None = None  # (profile, its state; None: link only)
    record_time: float | None = None  # the Kafka record's time, seconds
    new: bool = False  # consumed in this batch (counted), rather than applied again from the journal
    recheck: bool = False  # no input: decide again at this moment (see ``recheck_key``)


@dataclass(slots=True)
class PointOutcome:
    key: PointKey
    entry: Entry | None  # None: a firmographics version started to hold
    decision: Decision | None  # None for a merge
    snapshots: list[tuple[str, MemberSnapshot]] = field(default_factory=list)  # (account, snapshot)
    published: bool = False  # a handoff or a lifecycle event: the journal folds up to here
    state_after: bytes | None = None  # the encoded state right after a publishing point


def run(
    state: ContactState,
    entries: Iterable[Entry],
    compiled: CompiledModel,
    history: Mapping[str, list[Version]],
    encode: Callable[[ContactState], bytes],
    until: PointKey = LAST,
) -> list[PointOutcome]:
    """Apply ``entries`` to ``state`` in key order, and every firmographics change of the
    contact's account among them and after them (up to ``until``)."""
    outcomes: list[PointOutcome] = []
    for entry in sorted(entries, key=lambda e: e.key):
        _firmographics_points(state, entry.key, compiled, history, encode, outcomes)
        outcome = _apply(state, entry, compiled, history)
        state.last_key = max(state.last_key or entry.key, entry.key)
        if outcome.published:
            outcome.state_after = encode(state)
        outcomes.append(outcome)
    _firmographics_points(state, until, compiled, history, encode, outcomes)
    return outcomes


def _apply(
    state: ContactState, entry: Entry, compiled: CompiledModel, history: Mapping[str, list[Version]]
) -> PointOutcome:
    accounts = compiled.model.accounts is not None
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
    else:
        now = max(state.clock, entry.key[0])
        decision = apply(state, entry.event, compiled, now, FirmographicsAsOf(history, now))
        outcome.decision = decision
        outcome.published = decision.handoff is not None or bool(decision.lifecycle)
        if decision.duplicate:
            return outcome
        disqualified = decision.disqualified
    if accounts:
        after = account_of(compiled, state)
        if after:
            snapshot = member_snapshot(compiled, state, 0, disqualified)
            snapshot.point, snapshot.record_time = entry.key, entry.record_time
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
    history: Mapping[str, list[Version]],
    encode: Callable[[ContactState], bytes],
    outcomes: list[PointOutcome],
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
        trigger = f"firmographics:{domain}@{datetime.fromtimestamp(valid_from, tz=UTC).isoformat()}"
        decision = reevaluate(state, compiled, valid_from, FirmographicsAsOf(history, valid_from), trigger)
        state.last_key = key
        outcome = PointOutcome(key, None, decision)
        outcome.published = decision.handoff is not None or bool(decision.lifecycle)
        if outcome.published:
            outcome.state_after = encode(state)
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


@dataclass(frozen=True, slots=True)
class Fold:
    """Where a contact's journal starts after a run: entries at or before ``through`` leave it
    and the base becomes the state right after ``through``. That state is known when ``through``
    is the last publishing point (``state_after``); when the bounds cut further, the caller
    applies the entries between ``published`` and ``through`` to the base it has."""

    through: PointKey | None = None
    published: PointKey | None = None
    state_after: bytes | None = None


def fold(keys: Sequence[PointKey], outcomes: Sequence[PointOutcome], clock: float, bounds: Bounds) -> Fold:
    """The journal keeps the points after the last published decision, within the bounds."""
    published, state_after = None, None
    for outcome in outcomes:
        if outcome.published:
            published, state_after = outcome.key, outcome.state_after
    remaining = sorted(k for k in keys if published is None or k > published)
    too_old = sum(1 for k in remaining if k[0] < clock - bounds.horizon_s)
    excess = len(remaining) - bounds.max_points
    # Fold down to half the allowance at once, so a busy contact does not fold at every event.
    cut = max(too_old, excess + bounds.max_points // 2 if excess > 0 else 0)
    if cut > 0:
        return Fold(remaining[min(cut, len(remaining)) - 1], published, state_after)
    return Fold(published, published, state_after)
