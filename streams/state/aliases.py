"""Following aliases: a profile stitched into a contact keeps only an alias to it.

The contact stage routes a batch's events with it and ``leadstream explain`` shows a stitched
profile's contact with it: one resolver, so both always agree on where a profile lives.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from leadstream.state.keys import contact_key
from leadstream.state.port import StateStore, StoredRecord

__all__ = ["MAX_ALIAS_HOPS", "resolve_aliases"]

# Aliases point at a contact, never at another alias (a contact merged into another rewrites
# its aliases' targets lazily); a few hops cover a chain still being rewritten.
MAX_ALIAS_HOPS: Final = 4


async def resolve_aliases(
    store: StateStore, prefix: str, profiles: Iterable[str], records: dict[str, StoredRecord]
) -> dict[str, str]:
    """Where each profile lives: itself, or the contact its alias chain ends at. ``records`` holds
    the records loaded so far (contact key -> record); whatever else is read is added to it."""
    routes = {p: p for p in profiles}
    unread = [contact_key(prefix, p) for p in routes if contact_key(prefix, p) not in records]
    if unread:
        records.update(await store.load(unread))
    for _hop in range(MAX_ALIAS_HOPS):
        moved = {
            p: alias for p, target in routes.items() if (alias := records[contact_key(prefix, target)].alias)
        }
        if not moved:
            break
        missing = [contact_key(prefix, t) for t in moved.values() if contact_key(prefix, t) not in records]
        records.update(await store.load(missing))
        routes.update(moved)
    return routes
