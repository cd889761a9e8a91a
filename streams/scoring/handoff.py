"""Building the MQL handoff from a contact's state at the moment it qualified."""

from __future__ import annotations

from typing import Any

from leadstream.schemas.handoff import MqlHandoff
from leadstream.scoring.accounts import account_of
from leadstream.scoring.fit import Fit
from leadstream.scoring.signals import CompiledModel, to_datetime
from leadstream.scoring.state import ContactState

__all__ = ["HOUR_S", "build_mql_handoff"]

HOUR_S = 3600.0


def build_mql_handoff(
    compiled: CompiledModel,
    state: ContactState,
    fit: Fit,
    engagement_score: float,
    parts: dict[str, float],
    now: float,
    handoff_id: str,
    triggering_event_id: str,
    firmographics: dict[str, Any] | None = None,
) -> dict[str, Any]:
    model = compiled.model
    signals = [
        {
            "rule": name,
            "family": compiled.rules_by_name[name].rule.family,
            "value": round(value, 3),
            "count": state.rules[name].count,
            "last_at": to_datetime(state.rules[name].last_at),
        }
        for name, value in sorted(parts.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
        if abs(value) >= 0.001  # a frequency rule below its count has fired nothing yet
    ]
    top_pages = sorted(state.pages.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    first_touch = dict(state.first_touch) if state.first_touch else None
    if first_touch is not None:
        first_touch["at"] = to_datetime(first_touch["at"])
    handoff = MqlHandoff(
        handoff_id=handoff_id,
        contact_id=state.contact_id,
        account_domain=account_of(compiled, state),
        account_id=(firmographics or {}).get("account_id"),
        email=state.email,
        email_display=state.email_display,
        qualified_at=to_datetime(now),
        qualification_number=state.mql_count,
        model_version=model.version,
        triggering_event_id=triggering_event_id,
        fit={
            "score": fit.score,
            "threshold": model.thresholds.fit,
            "rules": [{"rule": r, "points": p} for r, p in fit.breakdown],
        },
        engagement={
            "score": round(engagement_score, 3),
            "threshold": model.thresholds.engagement,
            "signals": signals,
        },
        recent_signals=[
            {"rule": rule, "event_type": etype, "where": place, "at": to_datetime(at), "counted": counted}
            for at, rule, etype, place, counted in state.recent
        ],
        top_pages=[{"path": p, "visits": n} for p, n in top_pages],
        first_touch=first_touch,
        follow_up_due_at=to_datetime(now + model.sla_hours * HOUR_S),
        firmographics=firmographics
        or {
            k: v
            for k, v in state.traits.items()
            if k in ("industry", "employees", "region", "country", "company_name")
        },
    )
    return handoff.model_dump(mode="json")
