"""The account stage of a batch: take member snapshots and firmographics in, apply the account's
points in event-time order as far as the stream allows, decide buying groups.

Accounts live in their own Redis slot, apart from their contacts, so an account is never in the
same atomic step as a contact. A contact's commit leaves its snapshots in its own outbox; this
stage queues them on the account (a snapshot replaces one of the same point only if newer, so
taking it twice is harmless), and the contact's outbox entry is acknowledged only after the
account commit. A crash in between leaves the entry, which the contact's next load delivers again.

Points wait on the account until the watermarks (engine/eventtime/watermarks.py) say no partition can
still hold an earlier one; an account with waiting points is indexed in a sharded sorted set by
the event time it waits for, and swept when the stream gets there (``AccountSweep``).
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from leadstream.engine.outbox import EntryKind, handoff_entries, is_kind
from leadstream.engine.stages.contact import Incoming, PendingSnapshots
from leadstream.errors import StateUnavailable
from leadstream.scoring.accounts import Release, add_firmographics, advance, lacks_versions, receive
from leadstream.scoring.signals import CompiledModel
from leadstream.scoring.state import AccountState, state_weight
from leadstream.state.codec import Codec, compress_value
from leadstream.state.decoded_cache import DecodedCache
from leadstream.state.keys import ACCOUNT_SHARDS, account_key, account_queue_key, contact_key
from leadstream.state.port import (
    Delivered,
    RecordWrite,
    StateStore,
    StoredRecord,
    TimerIndex,
    decode_account,
    encode_state,
    member_parts,
    pending_parts,
    queued_encodings,
    stored_address,
)

__all__ = ["HELD_BACK_MEMO", "MAX_ATTEMPTS", "AccountResult", "AccountStage", "Limits", "account_shard"]

logger = logging.getLogger(__name__)
MAX_ATTEMPTS: Final = 8
HELD_BACK_MEMO: Final = 200_000  # accounts remembered as held back by the stream (see worth_sweeping)


def account_shard(domain: str) -> int:
    return zlib.crc32(domain.encode()) % ACCOUNT_SHARDS


@dataclass(slots=True)
class AccountResult:
    handoffs: list[tuple[str, str, bytes]] = field(default_factory=list)  # (key, entry, record value)
    new_handoffs: list[dict[str, Any]] = field(default_factory=list)
    acks: list[Delivered] = field(default_factory=list)  # contacts' snapshot entries taken
    requests: set[str] = field(default_factory=set)  # contacts to decide again (new firmographics)
    conflicts: int = 0
    applied: int = 0  # points applied
    late: int = 0  # snapshots that arrived after their account had moved past their point
    # Swept accounts to move in (or drop from) the waiting index: (key, domain, seen, new score).
    reindex: list[tuple[str, str, float, float | None]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Limits:
    """How long an account without firmographics holds its points for them (stream time), and
    how many points it holds at most."""

    horizon_s: float = 7 * 86_400.0
    max_pending: int = 256


class AccountStage:
    def __init__(
        self,
        store: StateStore,
        queue: TimerIndex,
        compiled: CompiledModel,
        prefix: str,
        cache_size: int = 10_000,
        limits: Limits | None = None,
        codec: Codec = "none",
        cache_bytes: int | None = None,
    ) -> None:
        """``cache_bytes``: the most memory the decoded accounts kept between batches may take."""
        self._codec = codec
        self._store = store
        self._queue = queue
        self.decoded: DecodedCache[AccountState] = DecodedCache(cache_size, cache_bytes, state_weight)
        # Accounts this process left waiting for the stream: their indexed due, and the (event
        # time, record time) of the first point the stream held back (see ``worth_sweeping``).
        self._held_back: dict[str, tuple[float, float, float | None]] = {}
        self._compiled = compiled
        self._prefix = prefix
        self._limits = limits or Limits()

    async def reindex(self, result: AccountResult) -> None:
        """After the swept accounts' handoffs are delivered: move them in the waiting index."""
        await self._queue.reschedule(result.reindex)  # one round trip (a sweep moves hundreds)

    async def run(
        self,
        snapshots: Sequence[PendingSnapshots],
        incoming: Incoming,
        release: Release,
        stream_time: float,
        result: AccountResult,
        swept: dict[str, float] | None = None,
    ) -> None:
        """``swept``: accounts taken from the waiting index, with the score they had there."""
        by_domain: dict[str, list[PendingSnapshots]] = {}
        for pending in snapshots:
            by_domain.setdefault(pending.domain, []).append(pending)
        remaining = sorted(set(by_domain) | set(incoming) | set(swept or ()))
        for _attempt in range(MAX_ATTEMPTS):
            if not remaining:
                return
            keys = {d: account_key(self._prefix, d) for d in remaining}
            loaded = await self._store.load(list(keys.values()))
            records = {d: loaded[keys[d]] for d in remaining}
            plans = [
                self._plan(d, records[d], by_domain.get(d, []), incoming.get(d, []), release, stream_time)
                for d in remaining
            ]
            # A swept account already indexed at or before its new due is moved by ``reindex``
            # (after delivery); indexed again here, it would move a millisecond earlier, fail
            # that reschedule and be swept again at once, and again.
            waiting = [
                (self._queue_key(p.domain), p.domain, p.waiting_at)
                for p in plans
                if p.waiting_at is not None and not (swept and swept.get(p.domain, math.inf) <= p.waiting_at)
            ]
            await self._add_member_emails(plans)
            await self._queue.schedule_earliest(waiting)  # before the commit: a crash leaves it indexed
            conflicts = await self._store.commit([p.write for p in plans if p.write is not None])
            result.conflicts += len(conflicts)
            for plan in plans:
                key = keys[plan.domain]
                if key in conflicts:
                    continue
                self._done(plan, key, result)
                if swept and plan.domain in swept:
                    # Re-indexed only once its handoffs are delivered (see ``reindex``): an account
                    # dropped from the index before that would keep an undelivered handoff.
                    result.reindex.append(
                        (self._queue_key(plan.domain), plan.domain, swept[plan.domain], plan.waiting_at)
                    )
            remaining = [d for d in remaining if keys[d] in conflicts]
        raise StateUnavailable(
            f"{len(remaining)} accounts kept changing under this worker ({MAX_ATTEMPTS} attempts); "
            "check that Redis is healthy and the workers are not overloaded"
        )

    def worth_sweeping(self, due: dict[str, float], release: Release) -> dict[str, float]:
        """The due accounts (domain -> indexed due) a sweep should load. In a live stream the
        bound moves at every tick, and most due accounts wait for a point whose record is too
        recent for the partitions' idle grace: loading them again would apply nothing (they were
        most of each sweep, and a sweep holds the batches up). One this process left waiting,
        still indexed where it left it, whose first point the stream still holds back, stays in
        the index for a later sweep. Another worker moving it (an earlier point) changes its due,
        so it is loaded; a process without the memo (a restart) loads every due account."""
        out = {}
        for domain, seen in due.items():
            held = self._held_back.get(domain)
            if held is not None and held[0] == seen and not release.allows(held[1], held[2]):
                continue
            out[domain] = seen
        return out

    async def _add_member_emails(self, plans: list[_Plan]) -> None:
        """A buying-group handoff names its members' addresses for the rep; the account keeps none
        (member snapshots hold no email: the address lives in the contact's state and the
        handoff only), so they are read from the members' states when a group hands off."""
        decided = [p for p in plans if p.decided]
        if not decided:
            return
        members = {m["contact_id"] for p in decided for h in p.decided for m in h["members"]}
        keys = {c: contact_key(self._prefix, c) for c in members}
        stored = await self._store.values(list(keys.values()))
        emails = {}
        for contact, key in keys.items():
            value = stored[key][1]
            if value is not None:
                emails[contact] = stored_address(value)
        for plan in decided:
            for handoff in plan.decided:
                for member in handoff["members"]:
                    member["email"] = emails.get(member["contact_id"]) or member.get("email")
            if plan.write is not None:
                plan.write = replace(plan.write, new_outbox=handoff_entries(plan.decided))

    def _queue_key(self, domain: str) -> str:
        return account_queue_key(self._prefix, account_shard(domain))

    def _plan(
        self,
        domain: str,
        stored: StoredRecord,
        incoming_snapshots: list[PendingSnapshots],
        versions: list[tuple[float, dict[str, Any], float | None]],
        release: Release,
        stream_time: float,
    ) -> _Plan:
        key = account_key(self._prefix, domain)
        account = (
            self.decoded.take(key, stored.version, stored.value, _decoder(stored.parts))
            if stored.value
            else AccountState(domain)
        )
        plan = _Plan(domain, stored, account)
        held, waiting = dict(account.members), dict(account.pending)
        added = [add_firmographics(account, at, values, record_time) for at, values, record_time in versions]
        if any(added):
            # A new version may make members qualify, or qualify earlier: they decide again.
            plan.requests.update(s.contact_id for s in [*account.members.values(), *account.pending.values()])
        for pending in incoming_snapshots:
            plan.acks.append(pending.outbox)
            for snapshot in pending.snapshots:
                if not receive(account, snapshot):
                    plan.late += 1
                if lacks_versions(account, snapshot):
                    plan.requests.add(snapshot.contact_id)
        moved = advance(
            self._compiled, account, release, stream_time, self._limits.horizon_s, self._limits.max_pending
        )
        plan.applied, plan.decided = moved.applied, moved.handoffs
        plan.waiting_at = moved.waiting.at if moved.waiting is not None else None
        if moved.waiting is not None and not moved.waiting.for_firmographics:
            plan.held_back = (moved.waiting.at, moved.waiting.record_time)
        # Only members and waiting points added, replaced or dropped are written (a field each).
        members = [c for c, m in account.members.items() if held.get(c) is not m]
        members += [c for c in held if c not in account.members]
        queued = [n for n, s in account.pending.items() if waiting.get(n) is not s]
        queued += [n for n in waiting if n not in account.pending]
        # A point applied from those that waited makes its waiting snapshot a member: written as
        # the bytes it waited as (a sweep applies hundreds, each encoded again before: JSON, zstd).
        encoded = queued_encodings(waiting, stored.parts) if members and waiting else None
        parts = {
            **member_parts(account, members, self._codec, encoded),
            **pending_parts(account, queued, self._codec),
        }
        entries = handoff_entries(moved.handoffs)
        value = compress_value(encode_state(account), self._codec)
        if value != stored.value or entries or parts:
            plan.write = RecordWrite(key, stored.version, value, entries, parts=parts)
        return plan

    def _done(self, plan: _Plan, key: str, result: AccountResult) -> None:
        stored = plan.stored
        version, value = (
            (stored.version + 1, plan.write.value) if plan.write else (stored.version, stored.value)
        )
        if value is not None:  # keep it decoded for the account's next batch
            self.decoded.put(key, version, value, plan.account)
        new_outbox = plan.write.new_outbox if plan.write else {}
        for entry, payload in {**stored.outbox, **new_outbox}.items():
            if is_kind(entry, EntryKind.HANDOFF):
                result.handoffs.append((key, entry, payload))
        result.new_handoffs.extend(plan.decided)
        result.acks.extend(plan.acks)
        result.requests.update(plan.requests)
        result.applied += plan.applied
        result.late += plan.late
        if plan.held_back is not None and plan.waiting_at is not None:
            if len(self._held_back) >= HELD_BACK_MEMO:
                self._held_back.clear()  # a memo only: forgetting costs a sweep's load, nothing else
            self._held_back[plan.domain] = (plan.waiting_at, *plan.held_back)
        else:
            self._held_back.pop(plan.domain, None)


@dataclass(slots=True)
class _Plan:
    domain: str
    stored: StoredRecord
    account: AccountState
    write: RecordWrite | None = None
    decided: list[dict[str, Any]] = field(default_factory=list)
    acks: list[Delivered] = field(default_factory=list)
    requests: set[str] = field(default_factory=set)
    waiting_at: float | None = None
    held_back: tuple[float, float | None] | None = None  # the first point the stream holds back
    applied: int = 0
    late: int = 0


def _decoder(parts: dict[str, bytes]) -> Callable[[bytes], AccountState]:
    return lambda value: decode_account(value, parts)
