"""Accounts and buying groups: pure functions over AccountState and member snapshots."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from config.model import ACCOUNT_ATTRIBUTES, BuyingGroupRule
from schemas.handoff import BuyingGroupHandoff
from streams.scoring.engagement import rules_engagement
from streams.scoring.fit import email_domain, rule_matches
from streams.scoring.signals import DAY_S, CompiledModel, domain_lists_of, seniority, to_datetime
from streams.scoring.state import AccountState, ContactState, MemberSnapshot, RuleState

HANDOFF_NAMESPACE = uuid.UUID("2a9e8c41-7d3b-4f6a-b1c5-93e0d4a8f7b2")
TOP_PER_MEMBER = 3


def buying_group_handoff_id(domain: str, model_version: str, qualification_number: int) -> str:
    return str(uuid.uuid5(HANDOFF_NAMESPACE, f"bg|{domain}|{model_version}|{qualification_number}"))


def account_of(compiled: CompiledModel, state: ContactState) -> str | None:
    """The company domain a contact belongs to; personal and student mail never make an account."""
    for domain in (state.company_domain, email_domain(state)):
        if domain and all(d.account for d in domain_lists_of(compiled, domain)):
            return domain
    return None


def role_of(compiled: CompiledModel, traits: dict[str, str | int]) -> str | None:
    if compiled.model.accounts is None:
        return None
    title = traits.get("job_title")
    title_text = title if isinstance(title, str) else ""
    level = seniority(compiled, title_text or None)
    department = str(traits.get("department", "")).lower()
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
        email=state.email,
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


def group_rule(compiled: CompiledModel, firmographics: dict[str, Any]) -> BuyingGroupRule:
    assert compiled.model.accounts is not None
    for rule in compiled.model.accounts.buying_groups:
        segment = rule.segment
        if segment.industry is not None and str(firmographics.get("industry", "")).lower() not in {
            i.lower() for i in segment.industry
        }:
            continue
        if segment.region is not None and str(firmographics.get("region", "")).lower() not in {
            r.lower() for r in segment.region
        }:
            continue
        if segment.employees is not None:
            employees = firmographics.get("employees")
            if (
                not isinstance(employees, int)
                or not segment.employees[0] <= employees <= segment.employees[1]
            ):
                continue
        return rule
    return compiled.model.accounts.buying_groups[-1]


@dataclass(frozen=True, slots=True)
class MemberView:
    snapshot: MemberSnapshot
    engagement: float
    engaged: bool


@dataclass(frozen=True, slots=True)
class AccountView:
    rule: BuyingGroupRule
    engagement: float
    members: tuple[MemberView, ...]
    roles_covered: tuple[str, ...]
    fit: float
    fit_breakdown: tuple[tuple[str, float], ...]
    qualifies: bool
    reason: str | None


def view_account(compiled: CompiledModel, account: AccountState, now: float) -> AccountView:
    rule = group_rule(compiled, account.firmographics)
    window = rule.within_days * DAY_S
    members = []
    for snapshot in account.members.values():
        if snapshot.removed:
            continue
        value, _ = rules_engagement(compiled, snapshot.rules, now)
        is_engaged = value >= rule.contact_engagement_at_least and now - snapshot.last_at <= window
        members.append(MemberView(snapshot, value, is_engaged))
    members.sort(key=lambda m: (-m.engagement, m.snapshot.contact_id))
    engaged = [m for m in members if m.engaged]
    roles = tuple(
        sorted({m.snapshot.role for m in engaged if m.snapshot.role and m.snapshot.role in rule.roles})
    )
    total = sum(m.engagement for m in members)
    fit, breakdown = firmographic_fit(compiled, account.firmographics)
    group = len(engaged) >= rule.min_engaged_contacts and len(roles) >= rule.min_roles
    hot = rule.account_engagement_at_least is not None and total >= rule.account_engagement_at_least
    qualifies = fit >= rule.account_fit_at_least and (group or hot)
    reason = ("buying_group" if group else "account_engagement") if qualifies else None
    return AccountView(rule, total, tuple(members), roles, fit, tuple(breakdown), qualifies, reason)


@dataclass(frozen=True, slots=True)
class AccountDecision:
    state: AccountState
    view: AccountView
    handoff: dict[str, Any] | None


def apply_account(
    compiled: CompiledModel,
    account: AccountState,
    snapshots: list[MemberSnapshot],
    firmographics: dict[str, Any] | None,
    firmographics_at: float | None,
) -> AccountDecision:
    """Apply member snapshots and a firmographics update in place; decide a buying-group handoff."""
    model = compiled.model
    assert model.accounts is not None
    now = max([account.clock, firmographics_at or 0.0, *(s.last_at for s in snapshots)])
    # Only an account that qualified before needs the pre-update view (for re-arming).
    before = view_account(compiled, account, now) if account.qualified_count else None
    if (
        firmographics is not None
        and firmographics_at is not None
        and firmographics_at >= account.firmographics_at
    ):
        account.firmographics = firmographics
        account.firmographics_at = firmographics_at
        account.account_id = firmographics.get("account_id") or account.account_id
    for snapshot in snapshots:
        held = account.members.get(snapshot.contact_id)
        if held is None or snapshot.version > held.version:
            account.members[snapshot.contact_id] = snapshot
    if len(account.members) > model.accounts.max_members:
        keep = sorted(account.members.values(), key=lambda m: (-m.last_at, m.contact_id))[
            : model.accounts.max_members
        ]
        account.members = {m.contact_id: m for m in keep}
    account.clock = now
    after = view_account(compiled, account, now)
    rearm = after.rule.rearm
    if before is not None and (
        not before.qualifies
        or not after.qualifies
        or min(before.engagement, after.engagement) < rearm.engagement_below
    ):
        account.dipped_since_qualified = True
    armed = account.qualified_count == 0 or (
        account.dipped_since_qualified
        and account.last_qualified_at is not None
        and now - account.last_qualified_at >= rearm.cooldown_days * DAY_S
    )
    handoff = None
    if armed and after.qualifies:
        account.qualified_count += 1
        account.last_qualified_at = now
        account.dipped_since_qualified = False
        handoff = _handoff(compiled, account, after, now)
    return AccountDecision(account, after, handoff)


def _handoff(compiled: CompiledModel, account: AccountState, view: AccountView, now: float) -> dict[str, Any]:
    model = compiled.model
    rule = view.rule
    members = [
        {
            "contact_id": m.snapshot.contact_id,
            "email": m.snapshot.email,
            "title": m.snapshot.title,
            "role": m.snapshot.role,
            "engagement": round(m.engagement, 3),
            "engaged": m.engaged,
            "last_active_at": to_datetime(m.snapshot.last_at),
            "top_signals": [{"rule": r, "where": w, "at": to_datetime(at)} for at, r, w in m.snapshot.top],
        }
        for m in view.members
    ]
    signals = sorted(
        ((at, r, w, m.snapshot.contact_id) for m in view.members for at, r, w in m.snapshot.top), reverse=True
    )[:8]
    handoff = BuyingGroupHandoff(
        handoff_id=buying_group_handoff_id(account.domain, model.version, account.qualified_count),
        account_id=account.account_id or account.domain,
        domain=account.domain,
        qualified_at=to_datetime(now),
        qualification_number=account.qualified_count,
        model_version=model.version,
        rule=rule.name,
        reason=view.reason or "buying_group",
        firmographics=account.firmographics,
        fit={
            "score": view.fit,
            "threshold": rule.account_fit_at_least,
            "rules": [{"rule": n, "points": p} for n, p in view.fit_breakdown],
        },
        engagement={"score": round(view.engagement, 3), "threshold": rule.account_engagement_at_least},
        engaged_contacts=sum(1 for m in view.members if m.engaged),
        members=members,
        roles_covered=list(view.roles_covered),
        roles_missing=[r for r in rule.roles if r not in view.roles_covered],
        top_signals=[
            {"rule": r, "where": w, "at": to_datetime(at), "contact_id": c} for at, r, w, c in signals
        ],
        follow_up_due_at=to_datetime(now + model.sla_hours * 3600.0),
    )
    return handoff.model_dump(mode="json")
