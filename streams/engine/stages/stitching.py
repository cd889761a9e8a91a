"""Stitching: an identify or form event that names a contact and an anonymous id, an email or
earlier contact ids links those profiles to the contact.

Each linked profile first gets an alias (so its later events go to the contact), committed with
compare-and-set before anything else; its contributions are then merged into the contact as a
point of its own, just before the linking event (stages/contact_decisions.py).
"""

from __future__ import annotations

import logging
from typing import Protocol

from leadstream.engine.input.decode import identity_links
from leadstream.engine.stages.contact_decisions import PendingEvent
from leadstream.engine.stages.firmographics_history import Links
from leadstream.scoring import ContactState
from leadstream.state.keys import contact_key
from leadstream.state.port import RecordWrite, StateStore, StoredRecord, decode_state

__all__ = ["StitchCounts", "Stitcher"]

logger = logging.getLogger(__name__)


class StitchCounts(Protocol):
    links: int
    identity_conflicts: int


class Stitcher:
    def __init__(self, store: StateStore, prefix: str) -> None:
        self._store = store
        self._prefix = prefix

    def _key(self, profile: str) -> str:
        return contact_key(self._prefix, profile)

    async def link(
        self,
        by_contact: dict[str, list[PendingEvent]],
        states: dict[str, ContactState],
        records: dict[str, StoredRecord],
        counts: StitchCounts,
    ) -> Links | None:
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
        merges: Links = {}
        for profile, (contact, item) in wanted.items():
            stored = records[self._key(profile)]
            if stored.alias not in (None, contact):
                counts.identity_conflicts += 1  # already someone else's: first link wins
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
        counts.links += len(alias_writes)
        return merges
