"""The contact stage of a batch: route events to contacts, stitch profiles, apply each contact's
timeline, commit.

Routing: an event belongs to its contact id, else ``email:<address>``, else ``anon:<id>``; a
profile merged into another carries an alias, which is followed. Stitching: an identify or form
event that names a contact and an anonymous id / email / previous contact ids links those
profiles to the contact: each linked profile first gets an alias (so its later events go to the
contact), then its contributions are merged into the contact, just before the linking event.

Timeline (scoring/timeline.py, journal.py): per contact, this batch's events (records consumed
before are skipped, by offset watermark or event id), the merges they cause, and the moments its
account's firmographics change (versions stored, plus this batch's). When every new input falls
after the contact's last applied point, the inputs are applied to the stored state; otherwise the
contact's journal is applied again from its base, with the new inputs in their place.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from leadstream.engine.input.decode import identity_links, parse_event
from leadstream.engine.outbox import (
    EntryKind,
    OutboxEntry,
    handoff_entries,
    is_kind,
    lifecycle_entries,
    snapshot_entries,
    timer_entries,
)
from leadstream.engine.records import SourceRecord
from leadstream.engine.stages.journal import EntryCache, Journal, journal_writes
from leadstream.errors import StateUnavailable
from leadstream.scoring import ContactState
from leadstream.scoring.accounts import account_of
from leadstream.scoring.firmographics import Version, add_version, valid_from_times
from leadstream.scoring.signals import CompiledModel
from leadstream.scoring.state import MemberSnapshot, PointKey, event_fingerprint
from leadstream.scoring.timeline import (
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
from leadstream.state.decoded_cache import DecodedCache
from leadstream.state.keys import account_key, contact_key
from leadstream.state.port import (
    RecordWrite,
    StateStore,
    StoredRecord,
    decode_account,
    decode_state,
    encode_contact,
    encode_journal,
    encode_state,
)

__all__ = [
    "DAY_S",
    "MAX_ALIAS_HOPS",
    "MAX_ATTEMPTS",
    "REMOVAL_VERSION",
    "ContactResult",
    "ContactStage",
    "Incoming",
    "PendingEvent",
    "PendingSnapshots",
]

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
MAX_ALIAS_HOPS = 4
# A merged profile's removal from its account outranks every snapshot that profile ever sent.
REMOVAL_VERSION = 1 << 62
DAY_S = 86_400.0
Incoming = dict[str, list[Version]]  # account domain -> firmographics versions of this batch


@dataclass(slots=True)
class PendingEvent:
    record: SourceRecord
    event: Any
    profile: str  # the id the event names: contact id, email:<address> or anon:<id>
    at: float  # event time, epoch seconds

    @property
    def record_time(self) -> float | None:
        stamp = self.record.timestamp_ms
        return stamp / 1000.0 if stamp is not None else None


@dataclass(frozen=True, slots=True)
class PendingSnapshots:
    """Member snapshots for the account stage, waiting in the contact's outbox: acknowledged
    (``outbox``: contact key, entry, value) once the account has applied or queued them."""

    domain: str
    snapshots: list[MemberSnapshot]
    outbox: tuple[str, str, bytes]


@dataclass(slots=True)
class ContactResult:
    """What the contact stage produced, for the account stage and the emitter."""

    # Outbox entries to deliver after the commits: (key, entry, value); see engine/outbox.py.
    entries: list[tuple[str, str, bytes]] = field(default_factory=list)
    snapshots: list[PendingSnapshots] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    links: int = 0
    identity_conflicts: int = 0
    conflicts: int = 0
    replays: int = 0  # contacts whose journal was applied again (an input arrived late)
    rules: list[str] = field(default_factory=list)
    new_handoffs: list[dict[str, Any]] = field(default_factory=list)
    lifecycle: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _Plan:
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
    replay: bool = False
    replayed: list[Entry] = field(default_factory=list)  # the journal's entries, when replaying


@dataclass(slots=True)
class _Outcome:
    """One contact's result in one attempt; counted only once its commit succeeded."""

    plan: _Plan
    state: ContactState
    write: RecordWrite | None = None
    handoffs: list[dict[str, Any]] = field(default_factory=list)
    lifecycle: list[dict[str, Any]] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    rules: list[str] = field(default_factory=list)
    snapshots: dict[str, list[MemberSnapshot]] = field(default_factory=dict)


class ContactStage:
    def __init__(
        self,
        store: StateStore,
        compiled: CompiledModel,
        prefix: str,
        cache_size: int = 50_000,
        compress: bool = False,
        bounds: Bounds | None = None,
    ) -> None:
        self._store = store
        self._compress = compress
        self._decoded: DecodedCache[ContactState] = DecodedCache(cache_size)
        self._compiled = compiled
        self._prefix = prefix
        self._bounds = bounds or Bounds(7 * DAY_S, 32)
        self._accounts_enabled = compiled.model.accounts is not None
        self._incoming: Incoming = {}
        self._versions_cache: dict[str, tuple[int, list[Version]]] = {}
        self._entries = EntryCache(min(cache_size, 20_000))

    def _key(self, profile: str) -> str:
        return contact_key(self._prefix, profile)

    def _encode(self, state: ContactState) -> bytes:
        return encode_contact(state, self._compress)

    async def run(
        self,
        events: Sequence[PendingEvent],
        result: ContactResult,
        incoming: Incoming | None = None,
        reevaluate: Iterable[str] = (),
    ) -> None:
        """Apply ``events``; ``incoming``: this batch's firmographics versions, which count for its
        contacts already; ``reevaluate``: contacts to decide again without events (their account
        holds a firmographics version they have not taken into account)."""
        self._incoming = incoming or {}
        remaining, again = list(events), set(reevaluate)
        for _attempt in range(MAX_ATTEMPTS):
            if not remaining and not again:
                return
            remaining, again = await self._attempt(remaining, again, result)
        raise StateUnavailable(
            f"{len(remaining) + len(again)} contacts kept changing under this worker ({MAX_ATTEMPTS} "
            "attempts): another worker is writing the same contacts; check that all workers share one "
            "consumer group"
        )

    async def _attempt(
        self, events: list[PendingEvent], again: set[str], result: ContactResult
    ) -> tuple[list[PendingEvent], set[str]]:
        profiles = {e.profile for e in events} | again
        records = await self._store.load([self._key(p) for p in profiles])
        routes = await self._resolve(records, profiles)
        by_contact = _group(events, routes, (routes[c] for c in again))
        states = {c: self._state(records[self._key(c)], c) for c in by_contact}
        links = await self._link(by_contact, states, records, result)
        if links is None:
            return events, again  # a profile changed while being linked: start over
        if links:
            # Profiles linked just now: their events in this batch go to their contact too.
            for contact, merged in links.items():
                for profile, _source, _item in merged:
                    routes.update({p: contact for p, target in routes.items() if target == profile})
            by_contact = _group(events, routes, (routes[c] for c in again))
            states = {c: states.get(c) or self._state(records[self._key(c)], c) for c in by_contact}
        history = await self._history(by_contact, states, links, result)
        plans = [
            self._prepare(c, records[self._key(c)], states[c], items, links.get(c, []), history)
            for c, items in by_contact.items()
        ]
        await self._history_of_replays([p for p in plans if p.replay], history, result)
        outcomes = [self._apply(plan, history) for plan in plans]
        conflicts = await self._store.commit([o.write for o in outcomes if o.write is not None])
        result.conflicts += len(conflicts)
        retry: list[PendingEvent] = []
        retry_again: set[str] = set()
        for outcome in outcomes:
            plan = outcome.plan
            key = self._key(plan.contact)
            if key in conflicts:
                retry.extend(by_contact[plan.contact])
                if not by_contact[plan.contact]:
                    retry_again.add(plan.contact)
                continue
            self._collect(key, outcome, result)
            self._keep(key, plan.stored, outcome.write, outcome.state)
        return retry, retry_again

    def _state(self, stored: StoredRecord, contact: str) -> ContactState:
        if not stored.value:
            return ContactState(contact)
        return self._decoded.take(self._key(contact), stored.version, stored.value, decode_state)

    def _keep(self, key: str, stored: StoredRecord, write: RecordWrite | None, state: ContactState) -> None:
        """Keep the committed state decoded for the contact's next batch."""
        if write is not None and write.value is not None:
            self._decoded.put(key, stored.version + 1, write.value, state)
        elif write is None and stored.value:
            self._decoded.put(key, stored.version, stored.value, state)

    def _prepare(
        self,
        contact: str,
        stored: StoredRecord,
        state: ContactState,
        items: list[PendingEvent],
        merges: list[tuple[str, ContactState | None, PendingEvent]],
        history: dict[str, list[Version]],
    ) -> _Plan:
        journal = Journal.of(stored)
        plan = _Plan(contact, stored, state, journal, [], {}, {}, 0, dict(state.timers), list(state.fit_seen))
        seen = state.applied
        for item in items:
            record = item.record
            source_partition = f"{record.topic}:{record.partition}"
            if record.offset <= seen.get(source_partition, -1):
                plan.duplicates += 1  # consumed again after a restart, a rebalance or a reset
                continue
            plan.offsets[source_partition] = max(record.offset, plan.offsets.get(source_partition, -1))
            event_id = item.event.event_id
            if event_fingerprint(event_id) in state.seen_ids or event_id in state.seen_ids:
                plan.duplicates += 1  # the producer sent the same event twice
                continue
            entry = Entry(
                event_key(item.at, event_id), event=item.event, record_time=item.record_time, new=True
            )
            plan.new.append(entry)
            plan.payloads[entry.key] = encode_journal(entry.record_time, record.value or b"")
        for profile, source, item in merges:
            entry = Entry(
                merge_key(item.at, item.event.event_id, profile),
                merged=(profile, source),
                record_time=item.record_time,
                new=True,
            )
            plan.new.append(entry)
            plan.payloads[entry.key] = encode_journal(
                entry.record_time, encode_state(source) if source is not None else b""
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

    def _apply(self, plan: _Plan, history: dict[str, list[Version]]) -> _Outcome:
        contact, stored, journal = plan.contact, plan.stored, plan.journal
        checkpoint = None
        if plan.replay:
            state = journal.base_state(contact)
            entries = plan.replayed + plan.new
            checkpoint = journal.checkpoint_state()
        else:
            state, entries = plan.state, plan.new
        outcome = _Outcome(plan, state)
        applied = dict(plan.state.applied)
        for source_partition, offset in plan.offsets.items():
            applied[source_partition] = max(offset, applied.get(source_partition, -1))
        points = run(state, entries, self._compiled, history, self._encode, checkpoint=checkpoint)
        state.applied = applied
        domain = account_of(self._compiled, state)
        state.fit_seen = valid_from_times(history.get(domain, [])) if domain else []
        outcome.duplicates = plan.duplicates
        first_new = min((e.key for e in plan.new), default=None)
        version = stored.version + 1
        for point in points:
            self._count(point, outcome)
            # Member snapshots depend on events and merges only: a replay caused by a late
            # firmographics version leaves those before the first new input as they were sent.
            if plan.replay and (first_new is None or point.key < first_new):
                continue
            for account, snapshot in point.snapshots:
                snapshot.version = REMOVAL_VERSION if snapshot.contact_id != contact else version
                snapshot.fit_seen = state.fit_seen
                outcome.snapshots.setdefault(account, []).append(snapshot)
        if plan.replay:
            logger.debug("contact %s: journal applied again for late inputs", contact)
        changed = bool(entries) or bool(points) or state.fit_seen != plan.fit_seen_before
        if not changed:
            return outcome
        parts = self._journal_parts(plan, points, state, history)
        entries_out = handoff_entries(outcome.handoffs)
        entries_out.update(lifecycle_entries(outcome.lifecycle))
        entries_out.update(timer_entries(plan.timers_before, state.timers))
        for account, snapshots in outcome.snapshots.items():
            entries_out.update(snapshot_entries(account, contact, version, snapshots))
        outcome.write = RecordWrite(
            self._key(contact), stored.version, self._encode(state), entries_out, parts=parts
        )
        return outcome

    def _count(self, point: PointOutcome, outcome: _Outcome) -> None:
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
        self, plan: _Plan, points: list[PointOutcome], state: ContactState, history: dict[str, list[Version]]
    ) -> dict[str, bytes | None]:
        """Where the journal goes: the new entries join it, the bounds cut its oldest entries into
        the base, and the last published decision's state becomes the checkpoint."""
        journal = plan.journal
        published = [p for p in points if p.published]
        state_after = published[-1].state_after if published else None
        checkpoint_bytes = state_after or journal.checkpoint
        through = cut([*journal.parts, *plan.payloads], state.clock, self._bounds)
        new_base = None
        if through is not None:
            checkpoint = decode_state(checkpoint_bytes) if checkpoint_bytes and state.published_key else None
            new_base = self._fold_base(plan, through, checkpoint, history)
        return journal_writes(
            journal, plan.payloads, through, new_base, plan.stored.value, (state.published_key, state_after)
        )

    def _fold_base(
        self,
        plan: _Plan,
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
        run(base, entries, self._compiled, history, self._encode, until=through, checkpoint=checkpoint)
        return self._encode(base)

    def _collect(self, key: str, outcome: _Outcome, result: ContactResult) -> None:
        """After a successful commit: count, and queue every outbox entry for delivery."""
        result.applied += outcome.applied
        result.duplicates += outcome.duplicates
        result.rules.extend(outcome.rules)
        result.new_handoffs.extend(outcome.handoffs)
        result.lifecycle.extend(outcome.lifecycle)
        result.replays += outcome.plan.replay
        write = outcome.write
        entries = {**outcome.plan.stored.outbox, **(write.new_outbox if write is not None else {})}
        fresh = {
            OutboxEntry.snapshots(account, outcome.plan.contact, outcome.plan.stored.version + 1).encode(): (
                snapshots
            )
            for account, snapshots in outcome.snapshots.items()
        }
        for entry, value in entries.items():
            if is_kind(entry, EntryKind.SNAPSHOTS):
                # Snapshots taken just now are at hand; only older pending ones need decoding.
                snapshots = fresh.get(entry) or _snapshots(value)
                domain = OutboxEntry.parse(entry).domain
                result.snapshots.append(PendingSnapshots(domain, snapshots, (key, entry, value)))
            else:
                result.entries.append((key, entry, value))

    async def _history(
        self,
        by_contact: dict[str, list[PendingEvent]],
        states: dict[str, ContactState],
        links: dict[str, list[tuple[str, ContactState | None, PendingEvent]]],
        result: ContactResult,
    ) -> dict[str, list[Version]]:
        """Firmographics versions of every account the batch's contacts may belong to."""
        if not self._accounts_enabled:
            return {}
        domains: set[str | None] = set()
        for contact, items in by_contact.items():
            domains.add(account_of(self._compiled, states[contact]))
            for item in items:
                domains.add(item.event.company_domain)
                domains.add(item.event.email_domain)
            for _profile, source, _item in links.get(contact, []):
                if source is not None:
                    domains.add(account_of(self._compiled, source))
        history: dict[str, list[Version]] = {}
        await self._load_versions({d for d in domains if d}, history)
        return history

    async def _history_of_replays(
        self, plans: list[_Plan], history: dict[str, list[Version]], result: ContactResult
    ) -> None:
        """A replayed journal may name accounts this batch's events do not."""
        if not self._accounts_enabled:
            return
        domains: set[str] = set()
        for plan in plans:
            for entry in plan.replayed:
                if entry.event is not None:
                    domains.update(d for d in (entry.event.company_domain, entry.event.email_domain) if d)
                elif entry.merged is not None and entry.merged[1] is not None:
                    domains.update(d for d in [account_of(self._compiled, entry.merged[1])] if d)
            base = plan.journal.base_state(plan.contact)
            domains.update(d for d in [account_of(self._compiled, base)] if d)
        await self._load_versions(domains - set(history), history)

    async def _load_versions(self, domains: set[str], history: dict[str, list[Version]]) -> None:
        keys = {d: account_key(self._prefix, d) for d in domains}
        # The accounts' values only: their member snapshots are the account stage's business.
        stored = await self._store.values(list(keys.values()))
        for domain, key in keys.items():
            version, value = stored[key]
            versions: list[Version] = []
            if value:
                cached = self._versions_cache.get(key)
                if cached is None or cached[0] != version:
                    # decode once per stored version
                    cached = (version, decode_account(value).versions)
                    if len(self._versions_cache) > 100_000:
                        self._versions_cache.clear()
                    self._versions_cache[key] = cached
                versions = list(cached[1])
            for valid_from, values, record_time in self._incoming.get(domain, []):
                add_version(versions, valid_from, values, record_time)
            if versions:
                history[domain] = versions

    async def _resolve(self, records: dict[str, StoredRecord], profiles: set[str]) -> dict[str, str]:
        """Follow aliases (a merged profile points at the contact it became)."""
        routes = {p: p for p in profiles}
        for _hop in range(MAX_ALIAS_HOPS):
            moved = {p: records[self._key(t)].alias for p, t in routes.items() if records[self._key(t)].alias}
            if not moved:
                break
            missing = [self._key(t) for t in moved.values() if t is not None and self._key(t) not in records]
            records.update(await self._store.load(missing))
            for profile, target in moved.items():
                if target is not None:
                    routes[profile] = target
        return routes

    async def _link(
        self,
        by_contact: dict[str, list[PendingEvent]],
        states: dict[str, ContactState],
        records: dict[str, StoredRecord],
        result: ContactResult,
    ) -> dict[str, list[tuple[str, ContactState | None, PendingEvent]]] | None:
        """Alias every profile the batch links to a contact; return the profiles to merge, each
        with the event that linked it."""
        wanted: dict[str, tuple[str, PendingEvent]] = {}  # linked profile -> contact, linking event
        for contact, items in by_contact.items():
            for item in items:
                for profile in identity_links(item.event):
                    if profile != contact and profile not in states[contact].linked:
                        wanted.setdefault(profile, (contact, item))
        if not wanted:
            return {}
        missing = [self._key(p) for p in wanted if self._key(p) not in records]
        records.update(await self._store.load(missing))
        alias_writes: list[RecordWrite] = []
        merges: dict[str, list[tuple[str, ContactState | None, PendingEvent]]] = {}
        for profile, (contact, item) in wanted.items():
            stored = records[self._key(profile)]
            if stored.alias not in (None, contact):
                result.identity_conflicts += 1  # already someone else's: first link wins
                logger.warning(
                    "profile %s is already linked to %s, not to %s", profile, stored.alias, contact
                )
                continue
            if stored.alias is None and stored.value is None and profile.startswith("email:"):
                # No email-only profile to stitch: skip the alias rather than keep one per contact.
                # An email-only event arriving later starts one, merged at the next identify or form.
                continue
            if stored.alias is None:
                alias_writes.append(RecordWrite(self._key(profile), stored.version, None, alias=contact))
            source = decode_state(stored.value) if stored.value else None
            merges.setdefault(contact, []).append((profile, source, item))
        if await self._store.commit(alias_writes):
            return None
        result.links += len(alias_writes)
        return merges


def _snapshots(value: bytes) -> list[MemberSnapshot]:
    raw = orjson.loads(value)
    return [MemberSnapshot.from_dict(s) for s in (raw if isinstance(raw, list) else [raw])]


def _group(
    events: Sequence[PendingEvent], routes: dict[str, str], also: Iterable[str] = ()
) -> dict[str, list[PendingEvent]]:
    by_contact: dict[str, list[PendingEvent]] = {c: [] for c in also}
    for item in events:
        by_contact.setdefault(routes[item.profile], []).append(item)
    for items in by_contact.values():
        # Event-time order within the batch: crossings are evaluated in the order things happened.
        items.sort(key=lambda p: (p.at, p.event.event_id))
    return by_contact
