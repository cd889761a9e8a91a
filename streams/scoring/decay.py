"""Continuous exponential decay by forward decay (Cormode et al., ICDE 2009).

A decayed sum  V(t) = sum_i p_i * 2^(-(t - t_i) / h)  is kept as  S = sum_i p_i * e^(lam (t_i - L))
scaled to a landmark time L, with lam = ln 2 / h. Adding a contribution is O(1) and order-free;
the decay is applied on read: V(t) = S * e^(-lam (t - L)). When a new contribution would be scaled
by more than e^REBASE_EXPONENT, the sum is first rebased to a newer landmark so that float
precision is never spent on huge scale factors.
"""

from __future__ import annotations

import math
from typing import Final

__all__ = ["LN2", "REBASE_EXPONENT", "add", "decayed", "rate", "value"]

LN2: Final = math.log(2.0)
REBASE_EXPONENT: Final = 20.0  # e^20 ~ 5e8: far below where doubles lose the small contributions


def rate(half_life_s: float) -> float:
    """Decay rate lambda for a half-life in seconds."""
    return LN2 / half_life_s


def add(landmark: float, scaled: float, points: float, at: float, lam: float) -> tuple[float, float]:
    """Add ``points`` that happened at ``at``; return the new (landmark, scaled sum)."""
    if lam * (at - landmark) > REBASE_EXPONENT:
        scaled *= math.exp(-lam * (at - landmark))
        landmark = at
    return landmark, scaled + points * math.exp(lam * (at - landmark))


def value(landmark: float, scaled: float, now: float, lam: float) -> float:
    """The decayed sum at time ``now``."""
    return scaled * math.exp(-lam * (now - landmark))


def decayed(points: float, at: float, now: float, lam: float) -> float:
    """One contribution's value at ``now`` (the naive form, used for short histories)."""
    return points * math.exp(-lam * (now - at))
