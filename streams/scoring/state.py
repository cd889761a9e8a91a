"""A contact's score state: plain data, serialisable to compact JSON, no behaviour beyond that.

Engagement per rule is a forward-decayed sum (see decay.py); fit is recomputed from the stored
traits whenever they change, because fit does not decay.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field, fields
from typing import Any, Final

from leadstream.scoring.firmographics import Version

__all__ = [
    "ACCOUNT_DECODED_BYTES",
    "CONTACT_DECODED_BYTES",
    "MEMBER_DECODED_BYTES",
    "RECENT_EVENT_IDS",
    "RECENT_SIGNALS",
    "TOP_PAGES",
    "AccountState",
    "ContactState",
    "MemberSnapshot",
    "PointKey",
    "RuleState",
    "event_fingerprint",
    "point_key",
    "rule_from_list",
    "rule_to_list",
    "state_weight",
]

# A point on a timeline, ordered as a tuple: (event time, group, id, rank, sub-id). Group 0 holds
# events and the merges they cause (rank 0 before the event's own rank 1), group 1 the moments a
# firmographics version starts to hold, after any event at the same time.
PointKey = tuple[float, int, str, int, str]


def point_key(raw: list[Any] | tuple[Any, ...]) -> PointKey:
    return (float(raw[0]), int(raw[1]), str(raw[2]), int(raw[3]), str(raw[4]))


RECENT_EVENT_IDS: Final = 32  # producer-side duplicates are caught within this many recent events
RECENT_SIGNALS: Final = 8
TOP_PAGES: Final = 8


# Copied for each id: cheaper than the constructor, whose keyword parsing took 40% of a fingerprint.
_FINGERPRINT: Final = hashlib.blake2b(digest_size=6)


def event_fingerprint(event_id: str) -> int:
    """48 bits of an event id's hash (BLAKE2b, 6-byte digest): 15 digits in the stored state
    instead of a 36-character UUID. Two of a contact's 32 most recent events colliding has odds
    of about 1 in 2**39. Stored states hold these: the function must never change."""
    digest = _FINGERPRINT.copy()
    digest.update(event_id.encode())
    return int.from_bytes(digest.digest(), "big")


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)
class RuleState:
    """One engagement rule's history for one contact."""

    landmark: float
    scaled: float
    count: int
    last_at: float
    # Frequency rules keep their recent match times (sorted) and are evaluated naively.
    times: list[float]

    def __init__(
        self,
        landmark: float = 0.0,
        scaled: float = 0.0,
        count: int = 0,
        last_at: float = 0.0,
        times: list[float] | None = None,
    ) -> None:
        self.landmark = landmark
        self.scaled = scaled
        self.count = count
        self.last_at = last_at
        self.times = [] if times is None else times


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)
class ContactState:
    contact_id: str
    email: str | None
    company_domain: str | None
    traits: dict[str, str | int]
    rules: dict[str, RuleState]
    nurture: dict[str, int]
    # (at, rule, event_type, where, counted), newest first
    recent: list[tuple[float, str, str, str, bool]]
    pages: dict[str, int]
    first_touch: dict[str, Any] | None
    # Fingerprints of the recent event ids (see event_fingerprint); states written before
    # fingerprints hold the ids themselves, which still match.
    seen_ids: list[int | str]
    # Idempotency watermark: the highest applied offset per source "topic:partition".
    applied: dict[str, int]
    clock: float  # the latest event time applied
    mql_count: int
    last_mql_at: float | None
    dipped_since_mql: bool
    # The id of the latest MQL handoff: lifecycle events about it (a rejection that names no
    # handoff, decay, SLA breaches) carry it, even after the model version changed.
    last_handoff_id: str | None
    # Profiles (anon:<id>, email:<address>, older contact ids) linked to this contact; their
    # contributions were merged in once, with their original event times.
    linked: list[str]
    stage: str
    transitions: int  # how many lifecycle transitions so far (makes their ids deterministic)
    # Pending timers by kind ("decay", "sla"): event time when each should fire.
    timers: dict[str, float]
    sla_step: int  # the next SLA escalation step for the current MQL
    # The timeline (see timeline.py): the earliest event time applied, the key of the last point
    # applied (an input with an earlier key is late), and the valid-from times of the account's
    # firmographics versions already taken into account.
    since: float | None
    last_key: PointKey | None
    fit_seen: list[float]
    published_key: PointKey | None  # the point of the last decision published
    email_display: str | None  # the address as the person typed it (``email`` is normalised)
    # The last fit evaluated for this decoded state, with what it was evaluated from (see
    # fit.evaluate_fit); never stored: fit changes only with traits, email or firmographics.
    fit_memo: tuple[Any, ...] | None = field(compare=False, repr=False)
    # The account this state belongs to, with the model, company domain and email it was found
    # from (see accounts.account_of: asked several times per event); never stored either.
    account_memo: tuple[Any, ...] | None = field(compare=False, repr=False)

    def __init__(
        self,
        contact_id: str,
        email: str | None = None,
        company_domain: str | None = None,
        traits: dict[str, str | int] | None = None,
        rules: dict[str, RuleState] | None = None,
        nurture: dict[str, int] | None = None,
        recent: list[tuple[float, str, str, str, bool]] | None = None,
        pages: dict[str, int] | None = None,
        first_touch: dict[str, Any] | None = None,
        seen_ids: list[int | str] | None = None,
        applied: dict[str, int] | None = None,
        clock: float = 0.0,
        mql_count: int = 0,
        last_mql_at: float | None = None,
        dipped_since_mql: bool = False,
        last_handoff_id: str | None = None,
        linked: list[str] | None = None,
        stage: str = "lead",
        transitions: int = 0,
        timers: dict[str, float] | None = None,
        sla_step: int = 0,
        since: float | None = None,
        last_key: PointKey | None = None,
        fit_seen: list[float] | None = None,
        published_key: PointKey | None = None,
        email_display: str | None = None,
        fit_memo: tuple[Any, ...] | None = None,
        account_memo: tuple[Any, ...] | None = None,
    ) -> None:
        self.contact_id = contact_id
        self.email = email
        self.company_domain = company_domain
        self.traits = {} if traits is None else traits
        self.rules = {} if rules is None else rules
        self.nurture = {} if nurture is None else nurture
        self.recent = [] if recent is None else recent
        self.pages = {} if pages is None else pages
        self.first_touch = first_touch
        self.seen_ids = [] if seen_ids is None else seen_ids
        self.applied = {} if applied is None else applied
        self.clock = clock
        self.mql_count = mql_count
        self.last_mql_at = last_mql_at
        self.dipped_since_mql = dipped_since_mql
        self.last_handoff_id = last_handoff_id
        self.linked = [] if linked is None else linked
        self.stage = stage
        self.transitions = transitions
        self.timers = {} if timers is None else timers
        self.sla_step = sla_step
        self.since = since
        self.last_key = last_key
        self.fit_seen = [] if fit_seen is None else fit_seen
        self.published_key = published_key
        self.email_display = email_display
        self.fit_memo = fit_memo
        self.account_memo = account_memo

    def __deepcopy__(self, memo: dict[int, Any]) -> ContactState:
        # copy.deepcopy would make the copy through __init__ with no arguments, which a compiled
        # class calls for real (and contact_id is required): copy field by field instead. The
        # memos are shared, not copied: what they hold is never changed, only replaced.
        copied = ContactState(self.contact_id, fit_memo=self.fit_memo, account_memo=self.account_memo)
        memo[id(self)] = copied
        for name in _STORED_FIELDS:
            setattr(copied, name, copy.deepcopy(getattr(self, name), memo))
        return copied

    def to_dict(self) -> dict[str, Any]:
        """What is stored, for orjson to write (tuples are written as arrays, as lists were): it
        shares this state's lists and tuples, so it is serialised, never kept or changed."""
        return {
            "c": self.contact_id,
            "e": self.email,
            "d": self.company_domain,
            "t": self.traits,
            "r": {name: rule_to_list(r) for name, r in self.rules.items()},
            "n": self.nurture,
            "rs": self.recent,
            "p": self.pages,
            "ft": self.first_touch,
            "id": self.seen_ids,
            "o": self.applied,
            "k": self.clock,
            "m": [self.mql_count, self.last_mql_at, self.dipped_since_mql, self.last_handoff_id],
            "l": self.linked,
            "lc": [self.stage, self.transitions, self.timers, self.sla_step],
            "tl": [
                self.since,
                self.last_key or None,
                self.fit_seen,
                self.published_key or None,
            ],
            "ed": self.email_display,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ContactState:
        mql_count, last_mql_at, dipped, *rest = raw["m"]  # states written before hold three
        since, last_key, fit_seen, published = _timeline(raw.get("tl") or [])
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
            last_handoff_id=rest[0] if rest else None,
            linked=raw.get("l", []),
            **_lifecycle(raw.get("lc")),
            since=since,
            last_key=point_key(last_key) if last_key else None,
            fit_seen=fit_seen,
            published_key=point_key(published) if published else None,
            email_display=raw.get("ed"),
        )


_STORED_FIELDS: Final = tuple(
    f.name for f in fields(ContactState) if f.name not in ("contact_id", "fit_memo", "account_memo")
)


def _timeline(raw: list[Any]) -> tuple[Any, Any, list[float], Any]:
    """since, last key, firmographics seen, last published key (states written before any of
    them have fewer)."""
    padded = [*raw, *[None, None, [], None][len(raw) :]]
    return padded[0], padded[1], padded[2], padded[3]


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


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)
class MemberSnapshot:
    """What an account knows of one contact: a copy of its engagement ingredients and its role.

    ``version`` is the contact's commit version: an account applies a snapshot only if it is newer
    than the one it holds, which makes account updates idempotent and order-free.
    """

    contact_id: str
    version: int
    role: str | None
    title: str | None
    email: str | None
    rules: dict[str, RuleState]
    last_at: float
    # (at, rule, where), newest first
    top: list[tuple[float, str, str]]
    removed: bool  # the contact left the account (merged into another, or disqualified)
    # The point of the contact's timeline this snapshot was taken at, the Kafka time of the record
    # behind it (seconds; decides when the account may apply it, see watermarks.py), and the
    # firmographics versions the contact had taken into account.
    point: PointKey | None
    record_time: float | None
    fit_seen: list[float]

    def __init__(
        self,
        contact_id: str,
        version: int,
        role: str | None = None,
        title: str | None = None,
        email: str | None = None,
        rules: dict[str, RuleState] | None = None,
        last_at: float = 0.0,
        top: list[tuple[float, str, str]] | None = None,
        removed: bool = False,
        point: PointKey | None = None,
        record_time: float | None = None,
        fit_seen: list[float] | None = None,
    ) -> None:
        self.contact_id = contact_id
        self.version = version
        self.role = role
        self.title = title
        self.email = email
        self.rules = {} if rules is None else rules
        self.last_at = last_at
        self.top = [] if top is None else top
        self.removed = removed
        self.point = point
        self.record_time = record_time
        self.fit_seen = [] if fit_seen is None else fit_seen

    def to_dict(self) -> dict[str, Any]:
        """What is stored, for orjson to write (tuples are written as arrays, as lists were): it
        shares this state's lists and tuples, so it is serialised, never kept or changed."""
        return {
            "c": self.contact_id,
            "v": self.version,
            "pk": self.point or None,
            "ts": self.record_time,
            "fs": self.fit_seen,
            "ro": self.role,
            "ti": self.title,
            "e": self.email,
            "r": {n: rule_to_list(r) for n, r in self.rules.items()},
            "k": self.last_at,
            "t": self.top,
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
            point=point_key(raw["pk"]) if raw.get("pk") else None,
            record_time=raw.get("ts"),
            fit_seen=raw.get("fs") or [],
        )

    def order(self) -> tuple[float, int, str, int, str, str]:
        """Where the snapshot falls among an account's points: event time first, then a fixed
        tie-break, so every worker and every replay applies an account's points in one order."""
        at, group, point_id, rank, sub = self.point or (self.last_at, 0, "", 1, "")
        return (at, group, point_id, rank, self.contact_id, sub)


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)
class AccountState:
    """An account: its firmographics versions, the member snapshots it has applied and those
    waiting for the stream to reach their time (``pending``, by part name), and its qualification.

    Points (member snapshots, firmographics versions) are applied in event-time order; ``point``
    is the order key of the last one applied and ``clock`` its event time.
    """

    domain: str
    account_id: str | None
    versions: list[Version]
    members: dict[str, MemberSnapshot]
    pending: dict[str, MemberSnapshot]
    clock: float
    point: tuple[float, int, str, int, str, str] | None
    qualified_count: int
    last_qualified_at: float | None
    dipped_since_qualified: bool
    recheck: bool  # a firmographics version came late: decide again at ``point``
    # The buying-group rule and firmographic fit of the last firmographics version asked about,
    # with the model and that version (see accounts.group_and_fit: asked two or three times per
    # point, mostly of one version); never stored.
    fit_memo: tuple[Any, ...] | None = field(compare=False, repr=False)

    def __init__(
        self,
        domain: str,
        account_id: str | None = None,
        versions: list[Version] | None = None,
        members: dict[str, MemberSnapshot] | None = None,
        pending: dict[str, MemberSnapshot] | None = None,
        clock: float = 0.0,
        point: tuple[float, int, str, int, str, str] | None = None,
        qualified_count: int = 0,
        last_qualified_at: float | None = None,
        dipped_since_qualified: bool = False,
        recheck: bool = False,
        fit_memo: tuple[Any, ...] | None = None,
    ) -> None:
        self.domain = domain
        self.account_id = account_id
        self.versions = [] if versions is None else versions
        self.members = {} if members is None else members
        self.pending = {} if pending is None else pending
        self.clock = clock
        self.point = point
        self.qualified_count = qualified_count
        self.last_qualified_at = last_qualified_at
        self.dipped_since_qualified = dipped_since_qualified
        self.recheck = recheck
        self.fit_memo = fit_memo

    @property
    def firmographics(self) -> dict[str, Any]:
        """The latest firmographics version's values ({} when none is known)."""
        return self.versions[-1][1] if self.versions else {}

    def to_dict(self) -> dict[str, Any]:
        """The account without its members and pending snapshots: those are stored one per
        field (see state/port.py), so an update rewrites only what changed."""
        return {
            "d": self.domain,
            "id": self.account_id,
            "vs": [list(v) for v in self.versions],
            "k": self.clock,
            "pt": list(self.point) if self.point else None,
            "q": [self.qualified_count, self.last_qualified_at, self.dipped_since_qualified],
            "rc": self.recheck,
        }

    @classmethod
    def from_dict(
        cls,
        raw: dict[str, Any],
        members: dict[str, MemberSnapshot] | None = None,
        pending: dict[str, MemberSnapshot] | None = None,
    ) -> AccountState:
        count, last, dipped = raw["q"]
        if "vs" in raw:
            versions: list[Version] = [(v[0], v[1], v[2]) for v in raw["vs"]]
        else:  # written before versions: one version, from when it was recorded
            versions = [(raw["fa"], raw["f"], None)] if raw.get("f") else []
        point = raw.get("pt")
        return cls(
            domain=raw["d"],
            account_id=raw["id"],
            versions=versions,
            members=members or {},
            pending=pending or {},
            clock=raw["k"],
            point=(point[0], point[1], point[2], point[3], point[4], point[5]) if point else None,
            qualified_count=count,
            last_qualified_at=last,
            dipped_since_qualified=dipped,
            recheck=raw.get("rc", False),
        )


# What a decoded state takes in memory, roughly: a deep sys.getsizeof over the final states of
# 3,000 generated journeys gave ~6.4 KB a contact (its lists are bounded: signals, pages, ids),
# and 2.7 KB an account plus 1.9 KB for each member or waiting point (within 7% for most). It is
# what bounds the worker's decoded-state caches by memory and not only by count.
CONTACT_DECODED_BYTES: Final = 6_500
ACCOUNT_DECODED_BYTES: Final = 2_700
MEMBER_DECODED_BYTES: Final = 1_900


def state_weight(state: ContactState | AccountState) -> int:
    """The memory ``state`` takes decoded, estimated (see above)."""
    if isinstance(state, AccountState):
        return ACCOUNT_DECODED_BYTES + MEMBER_DECODED_BYTES * (len(state.members) + len(state.pending))
    return CONTACT_DECODED_BYTES
