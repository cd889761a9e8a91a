"""How often this process's partitions moved: counted by both engines' rebalance callbacks, read
by the metrics collector. One worker per process, so one tally per process."""

from __future__ import annotations

from collections import Counter

__all__ = ["REBALANCES", "count_rebalance"]

# "assigned", "revoked", "lost" -> callbacks so far
REBALANCES: Counter[str] = Counter()


def count_rebalance(kind: str) -> None:
    REBALANCES[kind] += 1
