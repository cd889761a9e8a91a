"""Decoded states kept between batches, valid only for the exact bytes they were decoded from.

A worker sees the same contacts and accounts batch after batch; decoding their JSON again each
time was a tenth of its CPU. An entry is keyed by the record's version and a hash of its stored
bytes, so any write by another worker (or a Redis that lost data) makes it miss, never stale.
Entries are taken out while a batch mutates them and put back only after their commit succeeded.

The cache is bounded twice: by entries, and by the memory its states take (as ``weigh``
estimates it). A count alone does not bound memory: an account's decoded state grows with its
members, so a worker that keeps 2,000 accounts holds ever more as they gain people (about 2 KB
a member), and its RSS grew with every contact it saw.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["DecodedCache", "T"]

T = TypeVar("T")


class DecodedCache(Generic[T]):
    def __init__(
        self, capacity: int, budget_bytes: int | None = None, weigh: Callable[[T], int] | None = None
    ) -> None:
        """At most ``capacity`` states, and at most ``budget_bytes`` of them as ``weigh`` counts
        (None: no memory bound); the least recently put leave first."""
        self._capacity = capacity
        self._budget = budget_bytes
        self._weigh = weigh
        self._entries: OrderedDict[str, tuple[int, int, T, int]] = OrderedDict()
        self.weight = 0  # the estimated bytes held now
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def take(self, key: str, version: int, value: bytes, decode: Callable[[bytes], T]) -> T:
        """The decoded ``value`` of ``key`` at ``version``; the caller owns it until :meth:`put`."""
        held = self._entries.pop(key, None)
        if held is not None:
            self.weight -= held[3]
            if held[0] == version and held[1] == hash(value):
                self.hits += 1
                return held[2]
        self.misses += 1
        return decode(value)

    def peek(self, key: str, version: int, value: bytes) -> T | None:
        """The decoded ``value`` of ``key`` at ``version`` if held, for reading only (it stays
        cached: the caller must not change it); None otherwise."""
        held = self._entries.get(key)
        if held is not None and held[0] == version and held[1] == hash(value):
            return held[2]
        return None

    def put(self, key: str, version: int, value: bytes, state: T) -> None:
        """``state`` is what ``value`` (now stored at ``version``) decodes to."""
        if self._capacity <= 0:
            return
        weight = self._weigh(state) if self._weigh is not None else 0
        if self._budget is not None and weight > self._budget:
            self._drop(key)  # larger than the whole budget: not kept (nor an older copy)
            return
        entries = self._entries
        self._drop(key)
        entries[key] = (version, hash(value), state, weight)
        self.weight += weight
        # The least recently put go first (an OrderedDict: a plain dict's first key is found by
        # walking past every slot emptied by ``take``).
        while len(entries) > self._capacity or (self._budget is not None and self.weight > self._budget):
            self.weight -= entries.popitem(last=False)[1][3]

    def _drop(self, key: str) -> None:
        held = self._entries.pop(key, None)
        if held is not None:
            self.weight -= held[3]
