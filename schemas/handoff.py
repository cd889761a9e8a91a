"""Handoff events on the handoff topic: what sales receives when a lead clears the bar.

Keyed by contact id. ``handoff_id`` is deterministic (the same events and model give the same id),
so consumers drop duplicates by it: delivery is at-least-once.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

__all__ = [
    "AccountEngagement",
    "AccountFit",
    "AccountSignal",
    "BuyingGroupHandoff",
    "BuyingGroupMember",
    "EngagementBreakdown",
    "FirstTouch",
    "FitBreakdown",
    "FitContribution",
    "MemberSignal",
    "MqlHandoff",
    "PageVisits",
    "RecentSignal",
    "SignalContribution",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FitContribution(_Frozen):
    rule: str
    points: float


class FitBreakdown(_Frozen):
    score: float
    threshold: float
    rules: list[FitContribution]


class SignalContribution(_Frozen):
    """One engagement rule's part of the score, decayed to the handoff time."""

    rule: str
    family: str
    value: float
    count: int
    last_at: AwareDatetime


class EngagementBreakdown(_Frozen):
    score: float
    threshold: float
    signals: list[SignalContribution]


class RecentSignal(_Frozen):
    """What the contact did, where and when (most recent first)."""

    rule: str
    event_type: str
    where: str
    at: AwareDatetime
    counted: bool


class FirstTouch(_Frozen):
    at: AwareDatetime
    event_type: str
    where: str
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    referrer: str | None = None


class PageVisits(_Frozen):
    path: str
    visits: int


class MqlHandoff(_Frozen):
    """A contact crossed the MQL bar on both fit and engagement."""

    kind: Literal["mql"] = "mql"
    handoff_id: str
    contact_id: str
    # The contact's account as leadstream keys it: the company domain (None for personal mail).
    account_domain: str | None
    # The account's id on the accounts topic (the CRM's), once firmographics named it.
    account_id: str | None = None
    email: str | None  # normalised (lower case, no invisible characters): the identity
    email_display: str | None = None  # as the person typed it
    qualified_at: AwareDatetime
    qualification_number: int
    model_version: str
    triggering_event_id: str
    fit: FitBreakdown
    engagement: EngagementBreakdown
    recent_signals: list[RecentSignal]
    top_pages: list[PageVisits]
    first_touch: FirstTouch | None
    follow_up_due_at: AwareDatetime
    # The account's firmographics (from the accounts topic, else the contact's own traits), for
    # routing by territory and segment.
    firmographics: dict[str, Any] = {}


class MemberSignal(_Frozen):
    rule: str
    where: str
    at: AwareDatetime


class BuyingGroupMember(_Frozen):
    contact_id: str
    email: str | None
    title: str | None
    role: str | None
    engagement: float
    engaged: bool
    last_active_at: AwareDatetime
    top_signals: list[MemberSignal]


class AccountSignal(MemberSignal):
    contact_id: str


class AccountFit(_Frozen):
    score: float
    threshold: float
    rules: list[FitContribution]


class AccountEngagement(_Frozen):
    score: float
    threshold: float | None


class BuyingGroupHandoff(_Frozen):
    """An account qualified: enough engaged people covering enough roles, or enough engagement.

    Keyed by the account's domain. ``roles_missing`` says whom sales should reach next.
    """

    kind: Literal["buying_group"] = "buying_group"
    handoff_id: str
    account_id: str | None  # the id on the accounts topic (the CRM's), None until it named one
    domain: str  # what keys the account
    qualified_at: AwareDatetime
    qualification_number: int
    model_version: str
    rule: str
    reason: Literal["buying_group", "account_engagement"]
    firmographics: dict[str, Any]
    fit: AccountFit
    engagement: AccountEngagement
    engaged_contacts: int
    members: list[BuyingGroupMember]
    roles_covered: list[str]
    roles_missing: list[str]
    top_signals: list[AccountSignal]
    follow_up_due_at: AwareDatetime
