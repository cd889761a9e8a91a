"""A contact's score state: plain data, serialisable to compact JSON, no behaviour beyond that.

Engagement per rule is a forward-decayed sum (see decay.py); fit is recomputed from the stored
traits whenever they change, because fit does not decay.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

RECENT_EVENT_IDS = 32  # producer-side duplicates are caught within this many recent events
RECENT_SIGNALS = 8
TOP_PAGES = 8


def event_fingerprint(event_id: str) -> int:
    """48 bits of an event id's hash: 15 digits in the stored state instead of a 36-character
    UUID. Two of a contact's 32 most recent events colliding has odds of about 1 in 2**39."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=6).digest(), "big")


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
    # Fingerprints of the recent event ids (see event_fingerprint); states written before
    # fingerprints hold the ids themselves, which still match.
    seen_ids: list[int | str] = field(default_factory=list)
    # Idempotency watermark: the highest applied offset per source "topic:partition".
    applied: dict[str, int] = field(default_factory=dict)
    clock: float = 0.0  # the latest event time applied
    mql_count: int = 0
    last_mql_at: float | None = None
    dipped_since_mql: bool = False
    # Profiles (anon:<id>, email:<address>, older contact ids) linked to this contact; their
    # contributions were merged in once, with their original event times.
    linked: list[str] = field(default_factory=list)
    stage: str = "lead"
    transitions: int = 0  # how many lifecycle transitions so far (makes their ids deterministic)
    # Pending timers by kind ("decay", "sla"): event time when each should fire.
    timers: dict[str, float] = field(default_factory=dict)
    sla_step: int = 0  # the next SLA escalation step for the current MQL

    def to_dict(self) -> dict[str, Any]:
        return {
            "c": self.contact_id,
            "e": self.email,
            "d": self.company_domain,
            "t": self.traits,
            "r": {name: rule_to_list(r) for name, r in self.rules.items()},
            "n": self.nurture,
            "rs": [list(s) for s in self.recent],
            "p": self.pages,
            "ft": self.first_touch,
            "id": self.seen_ids,
            "o": self.applied,
            "k": self.clock,
            "m": [self.mql_count, self.last_mql_at, self.dipped_since_mql],
            "l": self.linked,
            "lc": [self.stage, self.transitions, self.timers, self.sla_step],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ContactState:
        mql_count, last_mql_at, dipped = raw["m"]
        return cls(
            contact_id=raw["c"],
            email=raw["e"],
            company_domain=raw["d"],
            traits=raw["t"],
            rules={name: rule_from_list(v) for name, v in raw["r"].items()},
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
            linked=raw.get("l", []),
            **_lifecycle(raw.get("lc")),
        )


def _lifecycle(raw: list[Any] | None) -> dict[str, Any]:
    if raw is None:
        return {}
    stage, transitions, timers, sla_step = raw
    return {"stage": stage, "transitions": transitions, "timers": timers, "sla_step": sla_step}


def rule_to_list(r: RuleState) -> list[Any]:
    if r.times:
        return [r.landmark, r.scaled, r.count, r.last_at, r.times]
    return [r.landmark, r.scaled, r.count, r.last_at]


def rule_from_list(v: list[Any]) -> RuleState:
    return RuleState(v[0], v[1], v[2], v[3], list(v[4]) if len(v) > 4 else [])


@dataclass(slots=True)
class MemberSnapshot:
    """What an account knows of one contact: a copy of its engagement ingredients and its role.

    ``version`` is the contact's commit version: an account applies a snapshot only if it is newer
    than the one it holds, which makes account updates idempotent and order-free.
    """

    contact_id: str
    version: int
    role: str | None = None
    title: str | None = None
    email: str | None = None
    rules: dict[str, RuleState] = field(default_factory=dict)
    last_at: float = 0.0
    # (at, rule, where), newest first
    top: list[tuple[float, str, str]] = field(default_factory=list)
    removed: bool = False  # the contact left the account (merged into another, or disqualified)

    def to_dict(self) -> dict[str, Any]:
        return {
            "c": self.contact_id,
            "v": self.version,
            "ro": self.role,
            "ti": self.title,
            "e": self.email,
            "r": {n: rule_to_list(r) for n, r in self.rules.items()},
            "k": self.last_at,
            "t": [list(x) for x in self.top],
            "x": self.removed,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MemberSnapshot:
        return cls(
            contact_id=raw["c"],
            version=raw["v"],
            role=raw["ro"],
            title=raw["ti"],
            email=raw["e"],
            rules={n: rule_from_list(v) for n, v in raw["r"].items()},
            last_at=raw["k"],
            top=[(t[0], t[1], t[2]) for t in raw["t"]],
            removed=raw["x"],
        )


@dataclass(slots=True)
class AccountState:
    domain: str
    account_id: str | None = None
    firmographics: dict[str, Any] = field(default_factory=dict)
    firmographics_at: float = 0.0
    members: dict[str, MemberSnapshot] = field(default_factory=dict)
    clock: float = 0.0
    qualified_count: int = 0
    last_qualified_at: float | None = None
    dipped_since_qualified: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The account without its members: those are stored one per field (see state/port.py),
        so an update rewrites only the members that changed."""
        return {
            "d": self.domain,
            "id": self.account_id,
            "f": self.firmographics,
            "fa": self.firmographics_at,
            "k": self.clock,
            "q": [self.qualified_count, self.last_qualified_at, self.dipped_since_qualified],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any], members: dict[str, MemberSnapshot] | None = None) -> AccountState:
        count, last, dipped = raw["q"]
        return cls(
            domain=raw["d"],
            account_id=raw["id"],
            firmographics=raw["f"],
            firmographics_at=raw["fa"],
            members=members or {},
            clock=raw["k"],
            qualified_count=count,
            last_qualified_at=last,
            dipped_since_qualified=dipped,
        )
