"""Firmographics as a versioned table: each account's values and the event time they hold from.

The reference semantics are Kafka Streams' versioned stream-table join: an event at time ``t``
sees the version valid at ``t`` (the latest whose ``valid_from`` is at or before ``t``), whichever
order the records were consumed in. A version valid only from a later time applies from then.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from typing import Any, Final

import orjson

__all__ = ["MAX_VERSIONS", "FirmographicsAsOf", "Version", "add_version", "valid_from_times", "version_at"]

# (valid_from, values, Kafka record time of the record that brought it, seconds or None)
Version = tuple[float, dict[str, Any], float | None]
MAX_VERSIONS: Final = 16  # per account; older versions fall off (a lookup before them sees the oldest)


def version_at(versions: list[Version], at: float) -> dict[str, Any] | None:
    """The values valid at event time ``at``, or None before the first version."""
    # From the newest back, not bisect with a key: an account holds a few versions (at most
    # MAX_VERSIONS), and bisect called the key through the generic call protocol at every step.
    for index in range(len(versions) - 1, -1, -1):
        version = versions[index]
        if version[0] <= at:
            return version[1]
    return None


def add_version(
    versions: list[Version], valid_from: float, values: dict[str, Any], record_time: float | None = None
) -> bool:
    """Insert a version in time order (in place); False when it changes nothing.

    A resend of the values already in effect at ``valid_from`` (a nightly sync sending every
    account again) is no version. Two different records for the same moment: the one whose
    canonical JSON sorts last wins, so the outcome does not depend on which was consumed first.
    """
    for index, (held_at, held, _time) in enumerate(versions):
        if held_at == valid_from:
            if held == values or _canonical(values) <= _canonical(held):
                return False
            versions[index] = (valid_from, values, record_time)
            return True
    if version_at(versions, valid_from) == values:
        return False
    index = bisect_right(versions, valid_from, key=lambda v: v[0])
    versions.insert(index, (valid_from, values, record_time))
    del versions[:-MAX_VERSIONS]
    return True


def _canonical(values: dict[str, Any]) -> bytes:
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS)


def valid_from_times(versions: Iterable[Version]) -> list[float]:
    return [v[0] for v in versions]


class FirmographicsAsOf:
    """The firmographics of every account as of one event time: what ``apply`` looks up. The one
    lookup the scoring core takes (a compiled class: its ``get`` is a direct call, where a
    protocol's or a dict's from compiled code is a generic one)."""

    __slots__ = ("_at", "_history")

    def __init__(self, history: dict[str, list[Version]], at: float) -> None:
        self._history = history
        self._at = at

    @classmethod
    def always(cls, values: Mapping[str, dict[str, Any]]) -> FirmographicsAsOf:
        """``values`` (account domain -> firmographics) in effect at every time."""
        return cls({domain: [(-math.inf, found, None)] for domain, found in values.items()}, 0.0)

    def get(self, domain: str, default: dict[str, Any] | None = None) -> dict[str, Any] | None:
        versions = self._history.get(domain)
        found = version_at(versions, self._at) if versions else None
        return default if found is None else found

    def __bool__(self) -> bool:
        return bool(self._history)
