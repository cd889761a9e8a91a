"""Accounts and buying groups: pure functions over AccountState and member snapshots."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from fnmatch import fnmatchcase
from operator import itemgetter
from typing import Any, Final

from mypy_extensions import mypyc_attr

from leadstream.config.model import ACCOUNT_ATTRIBUTES
from leadstream.scoring.engagement import rules_engagement
from leadstream.scoring.firmographics import add_version, version_at
from leadstream.scoring.fit import email_domain, rule_matches
from leadstream.scoring.ids import uuid5_text
from leadstream.scoring.signals import (
    MEMO_LIMIT,
    CompiledGroup,
    CompiledModel,
    domain_lists_of,
    seniority,
    to_json_time,
)
from leadstream.scoring.state import AccountState, ContactState, MemberSnapshot, RuleState

__all__ = [
    "HANDOFF_NAMESPACE",
    "RECHECK_POINT",
    "TOP_PER_MEMBER",
    "VERSION_POINT",
    "AccountView",
    "Advance",
    "MemberView",
    "Release",
    "Waiting",
    "account_of",
    "add_firmographics",
    "advance",
    "buying_group_handoff_id",
    "firmographic_fit",
    "group_and_fit",
    "group_rule",
    "lacks_versions",
    "member_snapshot",
    "pending_name",
    "receive",
    "role_of",
    "view_account",
]

HANDOFF_NAMESPACE: Final = uuid.UUID("2a9e8c41-7d3b-4f6a-b1c5-93e0d4a8f7b2")
TOP_PER_MEMBER: Final = 3


def buying_group_handoff_id(domain: str, model_version: str, qualification_number: int) -> str:
    return uuid5_text(HANDOFF_NAMESPACE, f"bg|{domain}|{model_version}|{qualification_number}")


def account_of(compiled: CompiledModel, state: ContactState) -> str | None:
    """The company domain a contact belongs to; personal and student mail never make an account."""
    company, email = state.company_domain, state.email
    found = state.account_memo
    # Identity first: the state's strings are the very ones remembered unless they changed (an
    # equality test of two objects is a generic comparison from compiled code).
    if (
        found is not None
        and found[0] is compiled
        and (found[1] is company or found[1] == company)
        and (found[2] is email or found[2] == email)
    ):
        domain: str | None = found[3]
        return domain
    domain = _account_of(compiled, state)
    state.account_memo = (compiled, company, email, domain)
    return domain


def _account_of(compiled: CompiledModel, state: ContactState) -> str | None:
    memo = compiled.account_memo
    for domain in (state.company_domain, email_domain(state)):
        if not domain:
            continue
        makes = memo.get(domain)
        if makes is None:
            if len(memo) >= 100_000:
                memo.clear()
            makes = memo[domain] = all(d.account for d in domain_lists_of(compiled, domain))
        if makes:
            return domain
    return None


def role_of(compiled: CompiledModel, traits: dict[str, str | int]) -> str | None:
    if compiled.accounts is None:
        return None
    title = traits.get("job_title")
    title_text = title if isinstance(title, str) else ""
    department = str(traits.get("department", "")).lower()
    memo = compiled.role_memo
    key = (title_text, department)
    if key in memo:
        return memo[key]
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    role = memo[key] = _role_from_rules(compiled, title_text, department)
    return role


def _role_from_rules(compiled: CompiledModel, title_text: str, department: str) -> str | None:
    assert compiled.model.accounts is not None
    level = seniority(compiled, title_text or None)
    for rule in compiled.model.accounts.roles:
        if rule.seniority is not None and level not in rule.seniority:
            continue
        if rule.department is not None and not any(
            fnmatchcase(department, p.lower()) for p in rule.department
        ):
            continue
        if rule.title is not None and not compiled.role_titles[rule.role].search(title_text):
            continue
        return rule.role
    return None


def member_snapshot(
    compiled: CompiledModel, state: ContactState, version: int, disqualified: bool
) -> MemberSnapshot:
    """The part of a contact its account needs; a disqualified contact leaves the account."""
    counted = [(at, rule, where) for at, rule, _t, where, counted in state.recent if counted]
    title = state.traits.get("job_title")
    return MemberSnapshot(
        contact_id=state.contact_id,
        version=version,
        role=role_of(compiled, state.traits),
        title=title if isinstance(title, str) else None,
        email=None,  # not copied: the address stays in the contact's state (and the handoff)
        # A copy: the contact's state lives on (decoded-state cache) and keeps changing.
        rules={
            n: RuleState(r.landmark, r.scaled, r.count, r.last_at, list(r.times))
            for n, r in state.rules.items()
        },
        last_at=state.clock,
        top=counted[:TOP_PER_MEMBER],
        removed=disqualified,
    )


def firmographic_fit(
    compiled: CompiledModel, firmographics: dict[str, Any]
) -> tuple[float, list[tuple[str, float]]]:
    breakdown = []
    for rule in compiled.fit_rules:
        if rule.attribute not in ACCOUNT_ATTRIBUTES:
            continue
        value = firmographics.get(rule.attribute)
        if value is not None and rule_matches(rule, value):
            breakdown.append((rule.name, rule.points))
    return sum(p for _, p in breakdown), breakdown


def group_rule(compiled: CompiledModel, firmographics: dict[str, Any]) -> CompiledGroup:
    for rule in compiled.buying_groups:
        if (
            rule.industries is not None
            and str(firmographics.get("industry", "")).lower() not in rule.industries
        ):
            continue
        if rule.regions is not None and str(firmographics.get("region", "")).lower() not in rule.regions:
            continue
        if rule.employees is not None:
            employees = firmographics.get("employees")
            if not isinstance(employees, int) or not rule.employees[0] <= employees <= rule.employees[1]:
                continue
        return rule
    return compiled.buying_groups[-1]


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)  # not frozen: built per event, frozen __init__ is ~4x slower
class MemberView:
    snapshot: MemberSnapshot
    engagement: float
    engaged: bool

    def __init__(
        self,
        snapshot: MemberSnapshot,
        engagement: float,
        engaged: bool,
    ) -> None:
        self.snapshot = snapshot
        self.engagement = engagement
        self.engaged = engaged


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)  # not frozen: built per event, frozen __init__ is ~4x slower
class AccountView:
    rule: CompiledGroup
    engagement: float
    members: tuple[MemberView, ...]
    roles_covered: tuple[str, ...]
    fit: float
    fit_breakdown: tuple[tuple[str, float], ...]
    qualifies: bool
    reason: str | None
    firmographics: dict[str, Any]

    def __init__(
        self,
        rule: CompiledGroup,
        engagement: float,
        members: tuple[MemberView, ...],
        roles_covered: tuple[str, ...],
        fit: float,
        fit_breakdown: tuple[tuple[str, float], ...],
        qualifies: bool,
        reason: str | None,
        firmographics: dict[str, Any],
    ) -> None:
        self.rule = rule
        self.engagement = engagement
        self.members = members
        self.roles_covered = roles_covered
        self.fit = fit
        self.fit_breakdown = fit_breakdown
        self.qualifies = qualifies
        self.reason = reason
        self.firmographics = firmographics


def group_and_fit(
    compiled: CompiledModel, account: AccountState, firmographics: dict[str, Any]
) -> tuple[CompiledGroup, float, list[tuple[str, float]]]:
    """The buying-group rule and firmographic fit of one of ``account``'s firmographics versions.
    Remembered for the last version asked about, by identity: a version is replaced, never
    changed in place, and the points of an account's batch ask about one version again and again."""
    memo = account.fit_memo
    if memo is not None and memo[0] is compiled and memo[1] is firmographics:
        remembered: tuple[CompiledGroup, float, list[tuple[str, float]]] = memo[2]
        return remembered
    fit, breakdown = firmographic_fit(compiled, firmographics)
    found = (group_rule(compiled, firmographics), fit, breakdown)
    account.fit_memo = (compiled, firmographics, found)
    return found


def view_account(compiled: CompiledModel, account: AccountState, now: float) -> AccountView:
    """The buying group at event time ``now``, with the firmographics version valid then."""
    firmographics = version_at(account.versions, now) or {}
    rule, fit, breakdown = group_and_fit(compiled, account, firmographics)
    window, engaged_at = rule.within_s, rule.contact_engagement_at_least
    members = []
    for snapshot in account.members.values():
        if snapshot.removed:
            continue
        value, _ = rules_engagement(compiled, snapshot.rules, now)
        is_engaged = value >= engaged_at and now - snapshot.last_at <= window
        members.append(MemberView(snapshot, value, is_engaged))
    if len(members) > 1:  # a sort calls its key function even for one
        members.sort(key=lambda m: (-m.engagement, m.snapshot.contact_id))
    engaged = [m for m in members if m.engaged]
    roles = tuple(
        sorted({m.snapshot.role for m in engaged if m.snapshot.role and m.snapshot.role in rule.roles})
    )
    total = sum(m.engagement for m in members)
    group = len(engaged) >= rule.min_engaged_contacts and len(roles) >= rule.min_roles
    hot = rule.account_engagement_at_least is not None and total >= rule.account_engagement_at_least
    qualifies = fit >= rule.account_fit_at_least and (group or hot)
    reason = ("buying_group" if group else "account_engagement") if qualifies else None
    return AccountView(
        rule, total, tuple(members), roles, fit, tuple(breakdown), qualifies, reason, firmographics
    )


# A point's order, as a sort key: a C function (a lambda compiled is a Python-level call each).
_ORDER: Final = itemgetter(0)


@mypyc_attr(allow_interpreted_subclasses=True)
class Release:
    """Whether the stream has progressed far enough to apply a point of event time ``at`` whose
    record reached Kafka at ``record_time`` (see engine/eventtime/watermarks.py). A base class,
    not a protocol: it is asked at every account point, and a compiled class's method is a direct
    call where a protocol's is a generic method call from compiled code."""

    def allows(self, at: float, record_time: float | None) -> bool:
        raise NotImplementedError


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, frozen=True, slots=True)
class Waiting:
    """How an account with unapplied points waits: for the stream (``at``: the watermark must
    pass it) or, with no firmographics yet, for them (until the stream time ``at``)."""

    at: float
    for_firmographics: bool
    record_time: float | None  # the waiting point's, when the stream holds it back

    def __init__(
        self,
        at: float,
        for_firmographics: bool,
        record_time: float | None = None,
    ) -> None:
        object.__setattr__(self, "at", at)
        object.__setattr__(self, "for_firmographics", for_firmographics)
        object.__setattr__(self, "record_time", record_time)


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)
class Advance:
    """What applying an account's points did."""

    handoffs: list[dict[str, Any]]
    applied: int
    late: int  # snapshots that arrived after the account had moved past their point
    waiting: Waiting | None

    def __init__(
        self,
        handoffs: list[dict[str, Any]] | None = None,
        applied: int = 0,
        late: int = 0,
        waiting: Waiting | None = None,
    ) -> None:
        self.handoffs = [] if handoffs is None else handoffs
        self.applied = applied
        self.late = late
        self.waiting = waiting


VERSION_POINT: Final = "\x00firmographics"
RECHECK_POINT: Final = "\x00recheck"  # at an already applied moment: the stream needs to be nowhere further


def pending_name(snapshot: MemberSnapshot) -> str:
    """The part name of a snapshot waiting to be applied: one per contact and point."""
    _at, _group, point_id, rank, sub = snapshot.point or (0.0, 0, "", 1, "")
    return f"{snapshot.contact_id}\t{point_id}\t{rank}\t{sub}"


def receive(account: AccountState, snapshot: MemberSnapshot) -> bool:
    """Take a member snapshot in (in place); False when it arrived late (its point is behind the
    account's: a record re-keyed to its contact's partition, a partition read after the
    watermark passed it). A late snapshot replaces the member's at once if it is newer, and the
    account decides again at its last applied point with it (as for a late firmographics
    version): the group the member completes is handed off then, with the id it would have had;
    a decision already published stands."""
    order = snapshot.order()
    if account.point is not None and order <= account.point:
        held = account.members.get(snapshot.contact_id)
        if held is None or (held.order(), held.version) < (order, snapshot.version):
            account.members[snapshot.contact_id] = snapshot
            account.recheck = True
        return False
    name = pending_name(snapshot)
    waiting = account.pending.get(name)
    if waiting is None or snapshot.version > waiting.version:
        account.pending[name] = snapshot
    return True


def add_firmographics(
    account: AccountState, valid_from: float, values: dict[str, Any], record_time: float | None
) -> bool:
    """Add a firmographics version. One valid from before the account's last applied point came
    too late to be applied in its place: the account decides again at that point with it."""
    if not add_version(account.versions, valid_from, values, record_time):
        return False
    account.account_id = account.versions[-1][1].get("account_id") or account.account_id
    if account.point is not None and valid_from <= account.point[0]:
        account.recheck = True
    return True


def advance(
    compiled: CompiledModel,
    account: AccountState,
    release: Release,
    stream_time: float,
    horizon_s: float,
    max_pending: int,
) -> Advance:
    """Apply the account's points in event-time order while the stream allows, deciding the
    buying group at each one, exactly as if every member's events had been read in time order.

    While an account has no firmographics at all, its points wait for them (a CRM sync often
    comes a day late, and an account without firmographics cannot clear its fit bar) until the
    stream is ``horizon_s`` past them or more than ``max_pending`` points wait.
    """
    assert compiled.accounts is not None
    result = Advance()
    points: list[tuple[tuple[float, int, str, int, str, str], str, MemberSnapshot | None, float | None]] = [
        (snapshot.order(), name, snapshot, snapshot.record_time) for name, snapshot in account.pending.items()
    ]
    for valid_from, _values, record_time in account.versions:
        order = (valid_from, 1, "", 0, "", "")
        if account.point is None or order > account.point:
            points.append((order, VERSION_POINT, None, record_time))
    if account.recheck and account.point is not None:
        # A late version: decide again at the last applied point, now that it is known.
        points.append(((account.point[0], 2, "", 0, "", ""), RECHECK_POINT, None, None))
    if len(points) > 1:  # a sort calls its key function even for one
        points.sort(key=_ORDER)
    blind = _blind(compiled)
    for order, name, snapshot, record_time in points:
        at = order[0]
        if name != RECHECK_POINT and not release.allows(at, record_time):
            result.waiting = Waiting(at, False, record_time)
            break
        if (
            blind
            and not account.versions
            and stream_time - at < horizon_s
            and len(account.pending) <= max_pending
        ):
            result.waiting = Waiting(at + horizon_s, True)
            break
        handoff = _apply_point(compiled, account, snapshot, at)
        if snapshot is not None:
            del account.pending[name]
        elif name == RECHECK_POINT:
            account.recheck = False
        account.point, account.clock = order, max(account.clock, at)
        result.applied += 1
        if handoff is not None:
            result.handoffs.append(handoff)
    return result


def _blind(compiled: CompiledModel) -> bool:
    """Whether an account without firmographics can never qualify (its fit would be 0)."""
    rule = group_rule(compiled, {})
    return firmographic_fit(compiled, {})[0] < rule.account_fit_at_least


def _apply_point(
    compiled: CompiledModel, account: AccountState, snapshot: MemberSnapshot | None, now: float
) -> dict[str, Any] | None:
    """One point: a member's snapshot (or a firmographics version) takes effect at ``now``."""
    if not _fit_clears(compiled, account, now):
        # Neither view could qualify (both are taken with the firmographics valid at ``now``):
        # no member's engagement is needed. Exactly what the views below would conclude.
        _take_member(compiled, account, snapshot)
        if account.qualified_count:
            account.dipped_since_qualified = True
        return None
    # Only an account that qualified before needs the view before the point (for re-arming).
    before = view_account(compiled, account, now) if account.qualified_count else None
    _take_member(compiled, account, snapshot)
    after = view_account(compiled, account, now)
    rule = after.rule
    if before is not None and (
        not before.qualifies
        or not after.qualifies
        or min(before.engagement, after.engagement) < rule.rearm_below
    ):
        account.dipped_since_qualified = True
    armed = account.qualified_count == 0 or (
        account.dipped_since_qualified
        and account.last_qualified_at is not None
        and now - account.last_qualified_at >= rule.rearm_cooldown_s
    )
    if not (armed and after.qualifies):
        return None
    account.qualified_count += 1
    account.last_qualified_at = now
    account.dipped_since_qualified = False
    return _handoff(compiled, account, after, now)


def _fit_clears(compiled: CompiledModel, account: AccountState, now: float) -> bool:
    """Whether the account's firmographics at ``now`` clear its buying-group rule's fit bar."""
    rule, fit, _breakdown = group_and_fit(compiled, account, version_at(account.versions, now) or {})
    return fit >= rule.account_fit_at_least


def _take_member(compiled: CompiledModel, account: AccountState, snapshot: MemberSnapshot | None) -> None:
    """The point's snapshot replaces the member's older one; the account keeps its most recently
    active ``max_members``."""
    if snapshot is None:
        return
    held = account.members.get(snapshot.contact_id)
    if held is None or (held.order(), held.version) < (snapshot.order(), snapshot.version):
        account.members[snapshot.contact_id] = snapshot
    limit = compiled.max_members
    if len(account.members) > limit:
        keep = sorted(account.members.values(), key=lambda m: (-m.last_at, m.contact_id))[:limit]
        account.members = {m.contact_id: m for m in keep}


def lacks_versions(account: AccountState, snapshot: MemberSnapshot) -> bool:
    """Whether the contact took this snapshot before a firmographics version the account holds:
    it should decide again with it (the version may make it qualify, or qualify earlier)."""
    return not snapshot.removed and any(v[0] not in snapshot.fit_seen for v in account.versions)


def _handoff(compiled: CompiledModel, account: AccountState, view: AccountView, now: float) -> dict[str, Any]:
    """The buying-group handoff as the JSON-ready dict ``schemas.handoff.BuyingGroupHandoff``
    would dump, built directly (see scoring/handoff.py; tests/unit/test_handoff_shape.py holds
    them equal byte for byte)."""
    model = compiled.model
    rule = view.rule
    members = [
        {
            "contact_id": m.snapshot.contact_id,
            "email": m.snapshot.email,
            "title": m.snapshot.title,
            "role": m.snapshot.role,
            "engagement": float(round(m.engagement, 3)),
            "engaged": m.engaged,
            "last_active_at": to_json_time(m.snapshot.last_at),
            "top_signals": [{"rule": r, "where": w, "at": to_json_time(at)} for at, r, w in m.snapshot.top],
        }
        for m in view.members
    ]
    signals = sorted(
        ((at, r, w, m.snapshot.contact_id) for m in view.members for at, r, w in m.snapshot.top), reverse=True
    )[:8]
    engagement_bar = rule.account_engagement_at_least
    return {
        "kind": "buying_group",
        "handoff_id": buying_group_handoff_id(account.domain, model.version, account.qualified_count),
        "account_id": view.firmographics.get("account_id") or account.account_id,
        "domain": account.domain,
        "qualified_at": to_json_time(now),
        "qualification_number": account.qualified_count,
        "model_version": model.version,
        "rule": rule.name,
        "reason": view.reason or "buying_group",
        "firmographics": dict(view.firmographics),
        "fit": {
            "score": float(view.fit),
            "threshold": float(rule.account_fit_at_least),
            "rules": [{"rule": n, "points": float(p)} for n, p in view.fit_breakdown],
        },
        "engagement": {
            "score": float(round(view.engagement, 3)),
            "threshold": None if engagement_bar is None else float(engagement_bar),
        },
        "engaged_contacts": sum(1 for m in view.members if m.engaged),
        "members": members,
        "roles_covered": list(view.roles_covered),
        "roles_missing": [r for r in rule.roles if r not in view.roles_covered],
        "top_signals": [
            {"rule": r, "where": w, "at": to_json_time(at), "contact_id": c} for at, r, w, c in signals
        ],
        "follow_up_due_at": to_json_time(now + model.sla_hours * 3600.0),
    }
