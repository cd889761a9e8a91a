"""The erased people (``leadstream forget``) whose later events are dropped to the dead letters.

The list is read again only when it changed: each batch reads two small values (the mark
``forget`` sets anew on each change, and the hash's length) instead of asking Redis about every
profile the batch names, and the batch is checked against the pseudonyms held here. An empty list
(no one erased) costs no pseudonym at all.
"""

from __future__ import annotations

from leadstream.state.port import StateStore
from leadstream.state.pseudonyms import identities_of, pseudonym

__all__ = ["Suppressions"]


class Suppressions:
    def __init__(self, store: StateStore, key: str, secret: bytes) -> None:
        self._store = store
        self._key = key
        self._secret = secret
        self._marks: tuple[str, int] | None = None
        self._tokens: frozenset[str] = frozenset()

    async def refresh(self) -> None:
        """Read the list again if it changed since the last batch. The marks are read before the
        list: a change between the two reads moves them again, so the next batch reads it again."""
        marks = await self._store.suppression_marks(self._key)
        if marks != self._marks:
            self._tokens = frozenset(await self._store.suppressed_tokens(self._key))
            self._marks = marks

    def __bool__(self) -> bool:
        return bool(self._tokens)

    def erased_names(
        self, contact_id: str | None, email: str | None, anonymous_id: str | None
    ) -> list[str] | None:
        """The pseudonyms of every profile an event names, if any of them was erased; None if
        none was."""
        if not self._tokens:
            return None
        secret = self._secret
        names = [pseudonym(secret, p) for p in identities_of(contact_id, email, anonymous_id)]
        return None if self._tokens.isdisjoint(names) else names
