"""The contact stage of a batch: route events to contacts, stitch profiles, score, commit.

Routing: an event belongs to its contact id, else ``email:<address>``, else ``anon:<id>``; a
profile merged into another carries an alias, which is followed. Stitching: an identify or form
event that names a contact and an anonymous id / email / previous contact ids links those
profiles to the contact: each linked profile first gets an alias (so its later events go to the
contact), then its contributions are merged into the contact once, with their original times.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.decode import identity_links
from streams.delivery import lifecycle_entries, timer_entries
from streams.errors import StateUnavailable
from streams.records import SourceRecord
from streams.scoring import ContactState, apply
from streams.scoring.accounts import account_of, member_snapshot
from streams.scoring.fit import evaluate_fit
from streams.scoring.merge import merge_contacts
from streams.scoring.signals import CompiledModel
from streams.scoring.state import MemberSnapshot
from streams.state.decoded_cache import DecodedCache
from streams.state.keys import account_key, contact_key
from streams.state.port import (
    RecordWrite,
    StateStore,
    StoredRecord,
    decode_account,
    decode_state,
    encode_contact,
)

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
MAX_ALIAS_HOPS = 4


@dataclass(slots=True)
class PendingEvent:
    record: SourceRecord
    event: Any
    profile: str  # the id the event names: contact id, email:<address> or anon:<id>
    at: float  # event time, epoch seconds


@dataclass(frozen=True, slots=True)
class PendingSnapshot:
    """A member snapshot for the account stage; ``outbox`` is set when it waits in the contact's
    outbox, to be acknowledged once the account has it."""

    domain: str
    snapshot: MemberSnapshot
    outbox: tuple[str, str, bytes] | None = None


@dataclass(slots=True)
class ContactResult:
    """What the contact stage produced, for the account stage and the emitter."""

    # Outbox entries to deliver after the commits: (key, entry, value); see streams/delivery.py.
    entries: list[tuple[str, str, bytes]] = field(default_factory=list)
    snapshots: list[PendingSnapshot] = field(default_factory=list)
    accounts: dict[str, StoredRecord] = field(default_factory=dict)  # account key -> record, loaded here
    applied: int = 0
    duplicates: int = 0
    links: int = 0
    identity_conflicts: int = 0
    conflicts: int = 0
    rules: list[str] = field(default_factory=list)
    new_handoffs: list[dict[str, Any]] = field(default_factory=list)
    lifecycle: list[dict[str, Any]] = field(default_factory=list)


class ContactStage:
    def __init__(
        self,
        store: StateStore,
        compiled: CompiledModel,
        prefix: str,
        cache_size: int = 50_000,
        compress: bool = False,
    ) -> None:
        self._store = store
        self._compress = compress
        self._decoded: DecodedCache[ContactState] = DecodedCache(cache_size)
        self._compiled = compiled
        self._prefix = prefix
        self._accounts_enabled = compiled.model.accounts is not None
        self._incoming: dict[str, tuple[dict[str, Any], float]] = {}
        self._firmographics_cache: dict[str, tuple[int, str, dict[str, Any], float]] = {}

    def _key(self, profile: str) -> str:
        return contact_key(self._prefix, profile)

    async def run(
        self,
        events: Sequence[PendingEvent],
        result: ContactResult,
        incoming_firmographics: dict[str, tuple[dict[str, Any], float]] | None = None,
    ) -> None:
        """``incoming_firmographics``: this batch's accounts-topic updates, domain -> (values, time);
        they count for the batch's contacts already, as if applied first."""
        self._incoming = incoming_firmographics or {}
        remaining = list(events)
        for _attempt in range(MAX_ATTEMPTS):
            if not remaining:
                return
            remaining = await self._attempt(remaining, result)
        raise StateUnavailable(
            f"{len(remaining)} events' contacts kept changing under this worker ({MAX_ATTEMPTS} attempts): "
            "another worker is writing the same contacts; check that all workers share one consumer group"
        )

    async def _attempt(self, events: list[PendingEvent], result: ContactResult) -> list[PendingEvent]:
        records = await self._store.load(list({self._key(e.profile) for e in events}))
        routes = await self._resolve(records, {e.profile for e in events})
        by_contact = _group(events, routes)
        states = {c: self._state(records[self._key(c)], c) for c in by_contact}
        links = await self._link(by_contact, states, records, result)
        if links is None:
            return events  # a profile changed while being linked: start over
        if links:
            # Profiles linked just now: their events in this batch go to their contact too.
            for contact, merged in links.items():
                for profile, _source in merged:
                    routes.update({p: contact for p, target in routes.items() if target == profile})
            by_contact = _group(events, routes)
            states = {c: states.get(c) or self._state(records[self._key(c)], c) for c in by_contact}
        firmographics = await self._firmographics(by_contact, states, result)

        writes, outcomes = [], {}
        for contact, items in by_contact.items():
            stored = records[self._key(contact)]
            outcome = self._apply(
                contact, states[contact], stored, items, links.get(contact, []), firmographics
            )
            outcomes[contact] = outcome
            if outcome.write is not None:
                writes.append(outcome.write)
        conflicts = await self._store.commit(writes)
        result.conflicts += len(conflicts)
        retry: list[PendingEvent] = []
        for contact, outcome in outcomes.items():
            key = self._key(contact)
            if key in conflicts:
                retry.extend(by_contact[contact])
                continue
            self._collect(key, records[key], outcome, result)
            self._keep(key, records[key], outcome.write, states[contact])
        return retry

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
    ) -> dict[str, list[tuple[str, ContactState | None]]] | None:
        """Alias every profile the batch links to a contact; return the profiles to merge."""
        wanted: dict[str, str] = {}  # linked profile -> contact
        for contact, items in by_contact.items():
            for item in items:
                for profile in identity_links(item.event):
                    if profile != contact and profile not in states[contact].linked:
                        wanted.setdefault(profile, contact)
        if not wanted:
            return {}
        missing = [self._key(p) for p in wanted if self._key(p) not in records]
        records.update(await self._store.load(missing))
        alias_writes: list[RecordWrite] = []
        merges: dict[str, list[tuple[str, ContactState | None]]] = {}
        for profile, contact in wanted.items():
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
            merges.setdefault(contact, []).append((profile, source))
        if await self._store.commit(alias_writes):
            return None
        result.links += len(alias_writes)
        return merges

    async def _firmographics(
        self,
        by_contact: dict[str, list[PendingEvent]],
        states: dict[str, ContactState],
        result: ContactResult,
    ) -> dict[str, dict[str, Any]]:
        """Firmographics of every account the batch's contacts may belong to (for fit)."""
        if not self._accounts_enabled:
            return {}
        domains = set()
        for contact, items in by_contact.items():
            domains.add(account_of(self._compiled, states[contact]))
            for item in items:
                domains.add(item.event.company_domain)
                domains.add(item.event.email_domain)
        keys = [account_key(self._prefix, d) for d in domains if d]
        loaded = await self._store.load([k for k in keys if k not in result.accounts])
        result.accounts.update(loaded)
        out, known_at = {}, {}
        for key in keys:
            stored = result.accounts[key]
            if not stored.value:
                continue
            cached = self._firmographics_cache.get(key)
            if cached is None or cached[0] != stored.version:
                account = decode_account(stored.value)  # members and all: decode once per version
                cached = (stored.version, account.domain, account.firmographics, account.firmographics_at)
                if len(self._firmographics_cache) > 100_000:
                    self._firmographics_cache.clear()
                self._firmographics_cache[key] = cached
            _version, domain, values, at = cached
            if values:
                out[domain] = values
                known_at[domain] = at
        for domain, (values, at) in self._incoming.items():
            if at >= known_at.get(domain, float("-inf")):
                out[domain] = values
        return out

    def _apply(
        self,
        contact: str,
        state: ContactState,
        stored: StoredRecord,
        items: list[PendingEvent],
        merges: list[tuple[str, ContactState | None]],
        firmographics: dict[str, dict[str, Any]],
    ) -> _Outcome:
        outcome = _Outcome()
        changed = False
        accounts_before = {account_of(self._compiled, state)}
        for profile, source in merges:
            if source is not None:
                merge_contacts(state, source, profile, self._compiled)
                if self._accounts_enabled:
                    domain = account_of(self._compiled, source)
                    if domain:
                        outcome.removed.append((domain, MemberSnapshot(profile, 1 << 62, removed=True)))
            elif profile not in state.linked:
                state.linked.append(profile)
            changed = True
        disqualified = False
        timers_before = dict(state.timers)
        # Watermarks as they were before this batch: the batch is applied in event-time order, so
        # a later record may be applied before an earlier one and must not hide it.
        watermarks = dict(state.applied)
        for item in items:
            record = item.record
            source_partition = f"{record.topic}:{record.partition}"
            if record.offset <= watermarks.get(source_partition, -1):
                outcome.duplicates += 1  # consumed again after a restart, a rebalance or a reset
                continue
            state.applied[source_partition] = max(record.offset, state.applied.get(source_partition, -1))
            changed = True
            now = max(state.clock, item.at)
            decision = apply(state, item.event, self._compiled, now, firmographics)
            disqualified = decision.disqualified
            outcome.lifecycle.extend(decision.lifecycle)
            if decision.duplicate:
                outcome.duplicates += 1  # the producer sent the same event twice
                continue
            outcome.applied += 1
            outcome.rules.extend(decision.counted)
            if decision.handoff is not None:
                outcome.handoffs.append(decision.handoff)
        if not changed:
            if outcome.duplicates and stored.version and self._accounts_enabled:
                # Every record was consumed before: a restart, a rebalance or a reset. The account
                # may have missed this contact's last snapshot (a crash between the two commits),
                # so send the current one again; an account ignores what it already holds.
                domain = account_of(self._compiled, state)
                if domain:
                    gone = evaluate_fit(self._compiled, state).disqualified_by is not None
                    outcome.snapshots.append(
                        (domain, member_snapshot(self._compiled, state, stored.version, gone))
                    )
            return outcome
        entries = {f"h:{h['handoff_id']}": orjson.dumps(h) for h in outcome.handoffs}
        entries.update(lifecycle_entries(outcome.lifecycle))
        entries.update(timer_entries(timers_before, state.timers))
        if self._accounts_enabled:
            version = stored.version + 1
            domain = account_of(self._compiled, state)
            if domain:
                snapshot = member_snapshot(self._compiled, state, version, disqualified)
                outcome.snapshots.append((domain, snapshot))
            for old in accounts_before - {domain, None}:  # the contact moved to another account
                assert old is not None
                outcome.removed.append((old, MemberSnapshot(contact, version, removed=True)))
            # The contact's own snapshot goes straight to the account stage: if the batch dies
            # before the account commit, its records come again and resend it (see above). A
            # removal (a merged profile, a move to another account) would not be decided again,
            # so it waits in the outbox until the account has it.
            for domain_, snapshot in outcome.removed:
                entries[f"a:{domain_}|{snapshot.contact_id}"] = orjson.dumps(snapshot.to_dict())
        value = encode_contact(state, self._compress)
        outcome.write = RecordWrite(self._key(contact), stored.version, value, entries)
        return outcome

    def _collect(self, key: str, stored: StoredRecord, outcome: _Outcome, result: ContactResult) -> None:
        """After a successful commit: count, and queue every outbox entry for delivery."""
        result.applied += outcome.applied
        result.duplicates += outcome.duplicates
        result.rules.extend(outcome.rules)
        result.new_handoffs.extend(outcome.handoffs)
        result.lifecycle.extend(outcome.lifecycle)
        entries = dict(stored.outbox)
        if outcome.write is not None:
            entries.update(outcome.write.new_outbox)
        for domain, snapshot in outcome.snapshots:
            result.snapshots.append(PendingSnapshot(domain, snapshot))
        fresh = {f"a:{domain}|{s.contact_id}": s for domain, s in outcome.removed}
        for entry, value in entries.items():
            if entry.startswith("a:"):
                # Snapshots written just now are at hand; only older pending ones need decoding.
                snapshot = fresh.get(entry) or MemberSnapshot.from_dict(orjson.loads(value))
                domain = entry[2:].split("|", 1)[0]
                result.snapshots.append(PendingSnapshot(domain, snapshot, (key, entry, value)))
            else:
                result.entries.append((key, entry, value))


@dataclass(slots=True)
class _Outcome:
    """One contact's result in one attempt; counted only once its commit succeeded."""

    write: RecordWrite | None = None
    handoffs: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[tuple[str, MemberSnapshot]] = field(default_factory=list)
    removed: list[tuple[str, MemberSnapshot]] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    rules: list[str] = field(default_factory=list)
    lifecycle: list[dict[str, Any]] = field(default_factory=list)


def _group(events: Sequence[PendingEvent], routes: dict[str, str]) -> dict[str, list[PendingEvent]]:
    by_contact: dict[str, list[PendingEvent]] = {}
    for item in events:
        by_contact.setdefault(routes[item.profile], []).append(item)
    for items in by_contact.values():
        # Event-time order within the batch: crossings are evaluated in the order things happened.
        items.sort(key=lambda p: (p.at, p.event.event_id))
    return by_contact
