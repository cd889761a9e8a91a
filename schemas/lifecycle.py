"""Lifecycle events on the lifecycle topic: stage transitions and SLA breaches.

Keyed by contact id; ids are deterministic, so consumers drop duplicates by them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

__all__ = ["LifecycleTransition", "SlaBreach", "Stage"]

Stage = Literal["subscriber", "lead", "mql", "sql", "opportunity", "customer", "recycled", "disqualified"]


class LifecycleTransition(BaseModel):
    """A contact moved from one lifecycle stage to another, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["transition"] = "transition"
    transition_id: str
    contact_id: str
    account_domain: str | None  # the contact's account domain, as on its MQL handoff
    from_stage: Stage
    to_stage: Stage
    reason: str
    at: AwareDatetime
    model_version: str
    handoff_id: str | None = None


class SlaBreach(BaseModel):
    """An MQL was neither accepted nor rejected by its follow-up due time (step 0), or by an
    escalation step after it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["sla_breached"] = "sla_breached"
    breach_id: str
    contact_id: str
    account_domain: str | None
    handoff_id: str
    # The handoff's follow-up deadline (its follow_up_due_at), the same on every step; ``at`` is
    # when this step escalated (due_at + the step's after_due_hours).
    due_at: AwareDatetime
    at: AwareDatetime
    step: int
    escalation: str
    model_version: str
