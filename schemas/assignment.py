"""Assignment events on the assignments topic: which SDR queue and rep got a handoff."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

__all__ = ["Assignment"]


class Assignment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["assignment"] = "assignment"
    assignment_id: str  # deterministic from the handoff id: one assignment per handoff
    handoff_id: str
    handoff_kind: Literal["mql", "buying_group"]
    contact_id: str | None
    account_domain: str | None  # the domain that keys the account (stickiness is by it)
    account_id: str | None  # the account's id on the accounts topic, when known
    queue: str
    rep: str
    reason: Literal["sticky", "round_robin", "overflow"]
    assigned_at: AwareDatetime  # the handoff's qualification time (event time)
    follow_up_due_at: AwareDatetime
