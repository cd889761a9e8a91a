"""Handoff events on the handoff topic: what sales receives when a lead clears the bar.

Keyed by contact id. ``handoff_id`` is deterministic (the same events and model give the same id),
so consumers drop duplicates by it: delivery is at-least-once.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict


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
    account_id: str | None
    email: str | None
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
