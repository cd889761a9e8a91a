"""The contact stage of a batch: load -> resolve -> decide -> commit.

Load the profiles the batch's events name; resolve aliases (state/aliases.py) and link the profiles
an identify or form stitches; load the firmographics versions of their accounts; ask the pure
per-contact decisions (stages/contact_decisions.py) for each contact's outcome; commit them all
with compare-and-set, and try the contacts that changed under us again.

Routing: an event belongs to its contact id, else ``email:<address>``, else ``anon:<id>``.
Timeline, journal and late inputs: see contact_decisions.py and scoring/timeline.py.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from leadstream.engine.outbox import EntryKind, OutboxEntry, is_kind
from leadstream.engine.stages.contact_decisions import (
    REMOVAL_VERSION,
    ContactDecider,
    ContactOutcome,
    ContactPlan,
    PendingEvent,
)
from leadstream.engine.stages.firmographics_history import FirmographicsHistory, Incoming, Links
from leadstream.engine.stages.journal import EntryCache
from leadstream.engine.stages.stitching import Stitcher
from leadstream.errors import StateUnavailable
from leadstream.scoring import ContactState
from leadstream.scoring.firmographics import Version
from leadstream.scoring.signals import CompiledModel
from leadstream.scoring.state import AccountState, MemberSnapshot, state_weight
from leadstream.scoring.timeline import Bounds
from leadstream.state.aliases import resolve_aliases
from leadstream.state.codec import Codec
from leadstream.state.decoded_cache import DecodedCache
from leadstream.state.keys import contact_key
from leadstream.state.port import (
    Delivered,
    RecordWrite,
    StateStore,
    StoredRecord,
    decode_state,
)

__all__ = [
    "COMMIT_CHUNK",
    "DAY_S",
    "MAX_ATTEMPTS",
    "REMOVAL_VERSION",
    "ContactResult",
    "ContactStage",
    "Incoming",
    "PendingEvent",
    "PendingSnapshots",
]

logger = logging.getLogger(__name__)
MAX_ATTEMPTS: Final = 8
# Contacts decided between two sends of commits (see ContactStage._decide_and_commit).
COMMIT_CHUNK: Final = 100
DAY_S: Final = 86_400.0


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, frozen=True, slots=True)
class PendingSnapshots:
    """Member snapshots for the account stage, waiting in the contact's outbox: acknowledged
    (``outbox``: contact key, entry, value) once the account has applied or queued them."""

    domain: str
    snapshots: list[MemberSnapshot]
    outbox: Delivered

    def __init__(
        self,
        domain: str,
        snapshots: list[MemberSnapshot],
        outbox: Delivered,
    ) -> None:
        object.__setattr__(self, "domain", domain)
        object.__setattr__(self, "snapshots", snapshots)
        object.__setattr__(self, "outbox", outbox)


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)
class ContactResult:
    """What the contact stage produced, for the account stage and the emitter."""

    # Outbox entries to deliver after the commits: (key, entry, value); see engine/outbox.py.
    entries: list[tuple[str, str, bytes]]
    snapshots: list[PendingSnapshots]
    applied: int
    duplicates: int
    links: int
    identity_conflicts: int
    conflicts: int
    replays: int  # contacts whose journal was applied again (an input arrived late)
    rules: list[str]
    new_handoffs: list[dict[str, Any]]
    lifecycle: list[dict[str, Any]]

    def __init__(
        self,
        entries: list[tuple[str, str, bytes]] | None = None,
        snapshots: list[PendingSnapshots] | None = None,
        applied: int = 0,
        duplicates: int = 0,
        links: int = 0,
        identity_conflicts: int = 0,
        conflicts: int = 0,
        replays: int = 0,
        rules: list[str] | None = None,
        new_handoffs: list[dict[str, Any]] | None = None,
        lifecycle: list[dict[str, Any]] | None = None,
    ) -> None:
        self.entries = [] if entries is None else entries
        self.snapshots = [] if snapshots is None else snapshots
        self.applied = applied
        self.duplicates = duplicates
        self.links = links
        self.identity_conflicts = identity_conflicts
        self.conflicts = conflicts
        self.replays = replays
        self.rules = [] if rules is None else rules
        self.new_handoffs = [] if new_handoffs is None else new_handoffs
        self.lifecycle = [] if lifecycle is None else lifecycle


class ContactStage:
    def __init__(
        self,
        store: StateStore,
        compiled: CompiledModel,
        prefix: str,
        cache_size: int = 10_000,
        codec: Codec = "none",
        bounds: Bounds | None = None,
        accounts: DecodedCache[AccountState] | None = None,
        cache_bytes: int | None = None,
    ) -> None:
        """``accounts``: the account stage's decoded accounts (see FirmographicsHistory).
        ``cache_bytes``: the most memory the decoded contacts kept between batches may take."""
        self._store = store
        self._decoded: DecodedCache[ContactState] = DecodedCache(cache_size, cache_bytes, state_weight)
        self._compiled = compiled
        self._prefix = prefix
        self._bounds = bounds or Bounds(7 * DAY_S, 32)
        self._history = FirmographicsHistory(store, compiled, prefix, accounts)
        self._stitcher = Stitcher(store, prefix)
        # The stream's low watermark as last known (the pipeline sets it from the account stage's
        # release bound): journals keep their entries while a partition is read behind them.
        self.read_through = math.inf
        self._decider = ContactDecider(
            compiled, prefix, codec, self._bounds, EntryCache(min(cache_size, 10_000))
        )
        self.commit_chunk = COMMIT_CHUNK

    def _key(self, profile: str) -> str:
        return contact_key(self._prefix, profile)

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
        self._history.incoming = incoming or {}
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
        routes = await resolve_aliases(self._store, self._prefix, profiles, records)
        by_contact = _group(events, routes, (routes[c] for c in again))
        states = {c: self._state(records[self._key(c)], c) for c in by_contact}
        links = await self._stitcher.link(by_contact, states, records, result)
        if links is None:
            return events, again  # a profile changed while being linked: start over
        if links:
            # Profiles linked just now: their events in this batch go to their contact too.
            for contact, merged in links.items():
                for profile, _source, _item in merged:
                    routes.update({p: contact for p, target in routes.items() if target == profile})
            by_contact = _group(events, routes, (routes[c] for c in again))
            states = {c: states.get(c) or self._state(records[self._key(c)], c) for c in by_contact}
        history = await self._history.for_batch(by_contact, states, links)
        unmerged = self._unmerged(by_contact, states, links, records)
        plans = [
            self._decider.plan(
                c, records[self._key(c)], states[c], items, links.get(c, []), history, unmerged
            )
            for c, items in by_contact.items()
        ]
        await self._history.add_replays([p for p in plans if p.replay], history)
        outcomes, conflicts = await self._decide_and_commit(plans, history)
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

    async def _decide_and_commit(
        self, plans: list[ContactPlan], history: dict[str, list[Version]]
    ) -> tuple[list[ContactOutcome], set[str]]:
        """Decide every plan and commit what they decided; the keys whose commit found another
        version. A chunk's commits go out as soon as it is decided, so Redis runs them while the
        next chunk is decided (one round trip at the end: the worker waited for all of Redis's
        work, on the other core, after doing all of its own)."""
        outcomes: list[ContactOutcome] = []
        committing: list[asyncio.Future[set[str]]] = []
        failed: BaseException | None = None
        try:
            size = max(1, self.commit_chunk)
            for start in range(0, len(plans), size):
                chunk = [
                    self._decider.decide(plan, history, self.read_through)
                    for plan in plans[start : start + size]
                ]
                outcomes.extend(chunk)
                writes = [o.write for o in chunk if o.write is not None]
                if writes:
                    committing.append(asyncio.ensure_future(self._store.commit(writes)))
                    await asyncio.sleep(0)  # the commit task writes its round trip now
        except BaseException as exc:
            failed = exc  # raised below, once the commits already sent are done (none left running)
        # Not awaited inside the except clause: compiled (mypyc) coroutines mishandle that.
        replies = await asyncio.gather(*committing, return_exceptions=True)
        if failed is not None:
            raise failed
        conflicts: set[str] = set()
        for reply in replies:
            if isinstance(reply, BaseException):
                # A chunk's commits may have landed: harmless, the batch is consumed again (its
                # events skipped by their fingerprints) and their outbox entries delivered then.
                raise reply
            conflicts |= reply
        return outcomes, conflicts

    def _unmerged(
        self,
        by_contact: dict[str, list[PendingEvent]],
        states: dict[str, ContactState],
        links: Links,
        records: dict[str, StoredRecord],
    ) -> dict[str, ContactState]:
        """Profiles whose events go to a contact that has not merged them (yet), with their own
        state. A worker that died between a profile's alias commit and its contact's commit left
        such an alias: the profile's records, consumed again, reach the contact, and the link,
        consumed again, merges the profile's state, which already holds them."""
        linking = {profile: source for merged in links.values() for profile, source, _item in merged}
        unmerged: dict[str, ContactState] = {}
        for contact, items in by_contact.items():
            linked = states[contact].linked
            for item in items:
                profile = item.profile
                if profile == contact or profile in unmerged or profile in linked:
                    continue
                if profile in linking:
                    source = linking[profile]
                else:
                    stored = records.get(self._key(profile))
                    source = decode_state(stored.value) if stored is not None and stored.value else None
                if source is not None:
                    unmerged[profile] = source
        return unmerged

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

    def _collect(self, key: str, outcome: ContactOutcome, result: ContactResult) -> None:
        """After a successful commit: count, and queue every outbox entry for delivery."""
        result.applied += outcome.applied
        result.duplicates += outcome.duplicates
        result.rules.extend(outcome.rules)
        result.new_handoffs.extend(outcome.handoffs)
        result.lifecycle.extend(outcome.lifecycle)
        result.replays += outcome.plan.replay
        if outcome.plan.replay:
            logger.debug("contact %s: journal applied again for late inputs", outcome.plan.contact)
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
                # Named by the version that wrote it, never written again: acknowledged by name.
                result.snapshots.append(PendingSnapshots(domain, snapshots, (key, entry, None)))
            else:
                result.entries.append((key, entry, value))


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
        # (Most contacts have one event a batch: a sort still calls its key function for it.)
        if len(items) > 1:
            items.sort(key=lambda p: (p.at, p.event.event_id))
    return by_contact
