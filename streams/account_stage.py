"""The account stage of a batch: apply member snapshots and firmographics, decide buying groups.

Accounts live in their own Redis slot, apart from their contacts, so an account is never in the
same atomic step as a contact. Instead a contact's commit leaves a member snapshot in the
contact's outbox; this stage applies it to the account (a snapshot replaces an older one by the
contact's version, so applying twice is harmless) and the outbox entry is removed only after the
account commit and the publishing of its handoffs. A crash anywhere in between leaves the entry,
and the records are consumed again, so the account catches up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.errors import StateUnavailable
from streams.scoring.accounts import apply_account
from streams.scoring.signals import CompiledModel
from streams.scoring.state import AccountState, MemberSnapshot
from streams.state.decoded_cache import DecodedCache
from streams.state.keys import account_key
from streams.state.port import (
    RecordWrite,
    StateStore,
    StoredRecord,
    decode_account,
    encode_state,
    member_parts,
)

MAX_ATTEMPTS = 8


@dataclass(slots=True)
class AccountResult:
    handoffs: list[tuple[str, str, bytes]] = field(default_factory=list)  # (key, entry, record value)
    new_handoffs: list[dict[str, Any]] = field(default_factory=list)
    conflicts: int = 0


class AccountStage:
    def __init__(
        self, store: StateStore, compiled: CompiledModel, prefix: str, cache_size: int = 50_000
    ) -> None:
        self._store = store
        self._decoded: DecodedCache[AccountState] = DecodedCache(cache_size)
        self._compiled = compiled
        self._prefix = prefix

    async def run(
        self,
        snapshots: Sequence[tuple[str, MemberSnapshot]],
        firmographics: dict[str, tuple[dict[str, Any], float]],
        preloaded: dict[str, StoredRecord],
        result: AccountResult,
    ) -> None:
        """``snapshots``: (account domain, snapshot); ``firmographics``: domain -> (values, time)."""
        by_domain: dict[str, list[MemberSnapshot]] = {}
        for domain, snapshot in snapshots:
            by_domain.setdefault(domain, []).append(snapshot)
        remaining = sorted(set(by_domain) | set(firmographics))
        cached = dict(preloaded)
        for _attempt in range(MAX_ATTEMPTS):
            if not remaining:
                return
            keys = [account_key(self._prefix, d) for d in remaining]
            missing = [k for k in keys if k not in cached]
            cached.update(await self._store.load(missing))
            records = {d: cached.pop(k) for d, k in zip(remaining, keys, strict=True)}
            writes, decided, accounts = [], {}, {}
            for domain, stored in records.items():
                key = account_key(self._prefix, domain)
                account = (
                    self._decoded.take(key, stored.version, stored.value, _decoder(stored.parts))
                    if stored.value
                    else AccountState(domain)
                )
                accounts[domain] = account
                held = dict(account.members)
                values, at = firmographics.get(domain, (None, None))
                if stored.value and values is None and not _news(account, by_domain.get(domain, [])):
                    # Snapshots sent again after a restart: the account has them all already.
                    self._decoded.put(key, stored.version, stored.value, account)
                    continue
                decision = apply_account(self._compiled, account, by_domain.get(domain, []), values, at)
                # Only members added, replaced or dropped are written (one hash field each).
                changed = [c for c, m in account.members.items() if held.get(c) is not m]
                parts = member_parts(account, changed + [c for c in held if c not in account.members])
                entries = {}
                if decision.handoff is not None:
                    entries[f"h:{decision.handoff['handoff_id']}"] = orjson.dumps(decision.handoff)
                    decided[domain] = decision.handoff
                value = encode_state(account)
                if value == stored.value and not entries and not parts:
                    self._decoded.put(key, stored.version, value, account)
                    continue  # e.g. the same firmographics consumed again: nothing to write
                writes.append(RecordWrite(key, stored.version, value, entries, parts=parts))
            conflicts = await self._store.commit(writes)
            result.conflicts += len(conflicts)
            new_outbox = {w.key: w.new_outbox for w in writes}
            written = {w.key: w.value for w in writes}
            for domain, stored in records.items():
                key = account_key(self._prefix, domain)
                if key in conflicts:
                    continue
                committed = written.get(key)
                if committed is not None:  # keep it decoded for the account's next batch
                    self._decoded.put(key, stored.version + 1, committed, accounts[domain])
                for entry, payload in {**stored.outbox, **new_outbox.get(key, {})}.items():
                    if entry.startswith("h:"):
                        result.handoffs.append((key, entry, payload))
                if domain in decided:
                    result.new_handoffs.append(decided[domain])
            remaining = [d for d in records if account_key(self._prefix, d) in conflicts]
        raise StateUnavailable(
            f"{len(remaining)} accounts kept changing under this worker ({MAX_ATTEMPTS} attempts); "
            "check that Redis is healthy and the workers are not overloaded"
        )


def _decoder(parts: dict[str, bytes]) -> Callable[[bytes], AccountState]:
    return lambda value: decode_account(value, parts)


def _news(account: AccountState, snapshots: list[MemberSnapshot]) -> bool:
    """Whether any snapshot is newer than the member the account holds."""
    for snapshot in snapshots:
        held = account.members.get(snapshot.contact_id)
        if held is None or snapshot.version > held.version:
            return True
    return False
