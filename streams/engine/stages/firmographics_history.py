"""The firmographics versions a batch's contacts need, read from their accounts (values only).

A contact decides with the versions of its account valid at each of its points: those stored on
the account, plus this batch's from the accounts topic (which count for its contacts already).
Decoded once per stored account version.
"""

from __future__ import annotations

from typing import Final

from leadstream.engine.stages.contact_decisions import ContactPlan, PendingEvent
from leadstream.scoring import ContactState
from leadstream.scoring.accounts import account_of
from leadstream.scoring.events import address_domain
from leadstream.scoring.firmographics import Version, add_version
from leadstream.scoring.signals import CompiledModel
from leadstream.scoring.state import AccountState
from leadstream.state.decoded_cache import DecodedCache
from leadstream.state.keys import account_key
from leadstream.state.port import StateStore, decode_account

__all__ = ["CACHED_ACCOUNTS", "FirmographicsHistory", "Incoming", "Links"]

CACHED_ACCOUNTS: Final = 10_000  # like the decoded-state cache (the account stage's copy is read first)
Incoming = dict[str, list[Version]]  # account domain -> firmographics versions of this batch
# contact -> the profiles the batch stitches into it: (profile, its state if any, linking event)
Links = dict[str, list[tuple[str, ContactState | None, PendingEvent]]]


class FirmographicsHistory:
    def __init__(
        self,
        store: StateStore,
        compiled: CompiledModel,
        prefix: str,
        accounts: DecodedCache[AccountState] | None = None,
    ) -> None:
        """``accounts``: the account stage's decoded accounts, read (never changed) when they hold
        the stored version: the same worker committed it, so it need not be decoded again."""
        self._store = store
        self._accounts = accounts
        self._compiled = compiled
        self._prefix = prefix
        self._accounts_enabled = compiled.model.accounts is not None
        self._cache: dict[str, tuple[int, list[Version]]] = {}
        self.incoming: Incoming = {}

    async def for_batch(
        self,
        by_contact: dict[str, list[PendingEvent]],
        states: dict[str, ContactState],
        links: Links,
    ) -> dict[str, list[Version]]:
        """Firmographics versions of every account the batch's contacts may belong to."""
        if not self._accounts_enabled:
            return {}
        domains: set[str | None] = set()
        for contact, items in by_contact.items():
            domains.add(account_of(self._compiled, states[contact]))
            for item in items:
                domains.add(item.event.company_domain)
                domains.add(address_domain(item.event.email))
            for _profile, source, _item in links.get(contact, []):
                if source is not None:
                    domains.add(account_of(self._compiled, source))
        history: dict[str, list[Version]] = {}
        await self._load({d for d in domains if d}, history)
        return history

    async def add_replays(self, plans: list[ContactPlan], history: dict[str, list[Version]]) -> None:
        """A replayed journal may name accounts this batch's events do not."""
        if not self._accounts_enabled:
            return
        domains: set[str] = set()
        for plan in plans:
            for entry in plan.replayed:
                if entry.event is not None:
                    domains.update(
                        d for d in (entry.event.company_domain, address_domain(entry.event.email)) if d
                    )
                elif entry.merged is not None and entry.merged[1] is not None:
                    domains.update(d for d in [account_of(self._compiled, entry.merged[1])] if d)
            base = plan.journal.base_state(plan.contact)
            domains.update(d for d in [account_of(self._compiled, base)] if d)
        await self._load(domains - set(history), history)

    async def _load(self, domains: set[str], history: dict[str, list[Version]]) -> None:
        keys = {d: account_key(self._prefix, d) for d in domains}
        # The accounts' values only: their member snapshots are the account stage's business.
        stored = await self._store.values(list(keys.values()))
        for domain, key in keys.items():
            version, value = stored[key]
            versions: list[Version] = []
            if value:
                cached = self._cache.get(key)
                held = self._accounts.peek(key, version, value) if self._accounts is not None else None
                if held is not None:
                    cached = (version, list(held.versions))  # the stage changes its own list
                elif cached is None or cached[0] != version:
                    # decode once per stored version
                    cached = (version, decode_account(value).versions)
                    if len(self._cache) > CACHED_ACCOUNTS:
                        self._cache.clear()
                    self._cache[key] = cached
                versions = list(cached[1])
            for valid_from, values, record_time in self.incoming.get(domain, []):
                add_version(versions, valid_from, values, record_time)
            if versions:
                history[domain] = versions
