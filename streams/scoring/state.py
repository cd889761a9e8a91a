"""A contact's score state: plain data, serialisable to compact JSON, no behaviour beyond that.

Engagement per rule is a forward-decayed sum (see decay.py); fit is recomputed from the stored
traits whenever they change, because fit does not decay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

RECENT_EVENT_IDS = 32  # producer-side duplicates are caught within this many recent events
RECENT_SIGNALS = 8
TOP_PAGES = 8


@dataclass(slots=True)
class RuleState:
    """One engagement rule's history for one contact."""

    landmark: float = 0.0
    scaled: float = 0.0
    count: int = 0
    last_at: float = 0.0
    # Frequency rules keep their recent match times (sorted) and are evaluated naively.
    times: list[float] = field(default_factory=list)


@dataclass(slots=True)
class ContactState:
    contact_id: str
    email: str | None = None
    company_domain: str | None = None
    traits: dict[str, str | int] = field(default_factory=dict)
    rules: dict[str, RuleState] = field(default_factory=dict)
    nurture: dict[str, int] = field(default_factory=dict)
    # (at, rule, event_type, where, counted), newest first
    recent: list[tuple[float, str, str, str, bool]] = field(default_factory=list)
    pages: dict[str, int] = field(default_factory=dict)
    first_touch: dict[str, Any] | None = None
    seen_ids: list[str] = field(default_factory=list)
    # Idempotency watermark: the highest applied offset per source "topic:partition".
    applied: dict[str, int] = field(default_factory=dict)
    clock: float = 0.0  # the latest event time applied
    mql_count: int = 0
    last_mql_at: float | None = None
    dipped_since_mql: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "c": self.contact_id,
            "e": self.email,
            "d": self.company_domain,
            "t": self.traits,
            "r": {
                name: [r.landmark, r.scaled, r.count, r.last_at, r.times]
                if r.times
                else [r.landmark, r.scaled, r.count, r.last_at]
                for name, r in self.rules.items()
            },
            "n": self.nurture,
            "rs": [list(s) for s in self.recent],
            "p": self.pages,
            "ft": self.first_touch,
            "id": self.seen_ids,
            "o": self.applied,
            "k": self.clock,
            "m": [self.mql_count, self.last_mql_at, self.dipped_since_mql],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ContactState:
        mql_count, last_mql_at, dipped = raw["m"]
        return cls(
            contact_id=raw["c"],
            email=raw["e"],
            company_domain=raw["d"],
            traits=raw["t"],
            rules={
                name: RuleState(v[0], v[1], v[2], v[3], v[4] if len(v) > 4 else [])
                for name, v in raw["r"].items()
            },
            nurture=raw["n"],
            recent=[(s[0], s[1], s[2], s[3], s[4]) for s in raw["rs"]],
            pages=raw["p"],
            first_touch=raw["ft"],
            seen_ids=raw["id"],
            applied=raw["o"],
            clock=raw["k"],
            mql_count=mql_count,
            last_mql_at=last_mql_at,
            dipped_since_mql=dipped,
        )
