"""Decoded states kept between batches, valid only for the exact bytes they were decoded from.

A worker sees the same contacts and accounts batch after batch; decoding their JSON again each
time was a tenth of its CPU. An entry is keyed by the record's version and a hash of its stored
bytes, so any write by another worker (or a Redis that lost data) makes it miss, never stale.
Entries are taken out while a batch mutates them and put back only after their commit succeeded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["DecodedCache", "T"]

T = TypeVar("T")


class DecodedCache(Generic[T]):
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, tuple[int, int, T]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def take(self, key: str, version: int, value: bytes, decode: Callable[[bytes], T]) -> T:
        """The decoded ``value`` of ``key`` at ``version``; the caller owns it until :meth:`put`."""
        held = self._entries.pop(key, None)
        if held is not None and held[0] == version and held[1] == hash(value):
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
        entries = self._entries
        entries.pop(key, None)
        entries[key] = (version, hash(value), state)
        if len(entries) > self._capacity:
            # The least recently put (an OrderedDict: a plain dict's first key is found by walking
            # past every slot emptied by ``take``).
            entries.popitem(last=False)
