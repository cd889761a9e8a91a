"""Building the MQL handoff from a contact's state at the moment it qualified.

Built as the JSON-ready dict itself, not through ``schemas.handoff.MqlHandoff`` and
``model_dump``: constructing and dumping the model cost ~400k instructions a handoff, more than
scoring the event that qualified it. Its shape is the model's all the same, field for field, in
the model's order, with its types (floats as floats, times in pydantic's form):
``tests/unit/test_handoff_shape.py`` holds every handoff of generated journeys to
``MqlHandoff.model_validate(h).model_dump(mode="json")`` byte for byte.
"""

from __future__ import annotations

from typing import Any, Final

from leadstream.scoring.accounts import account_of
from leadstream.scoring.fit import Fit
from leadstream.scoring.signals import CompiledModel, to_json_time
from leadstream.scoring.state import ContactState

__all__ = ["FIRST_TOUCH_CONTEXT", "HOUR_S", "build_mql_handoff"]

HOUR_S: Final = 3600.0
# schemas.handoff.FirstTouch's optional fields, in its order (absent ones are written as null).
FIRST_TOUCH_CONTEXT: Final = ("utm_source", "utm_medium", "utm_campaign", "referrer")


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
    rules = state.rules
    signals = [
        {
            "rule": name,
            "family": compiled.rules_by_name[name].rule.family,
            "value": float(round(value, 3)),
            "count": rules[name].count,
            "last_at": to_json_time(rules[name].last_at),
        }
        for name, value in sorted(parts.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
        if abs(value) >= 0.001  # a frequency rule below its count has fired nothing yet
    ]
    top_pages = sorted(state.pages.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return {
        "kind": "mql",
        "handoff_id": handoff_id,
        "contact_id": state.contact_id,
        "account_domain": account_of(compiled, state),
        "account_id": (firmographics or {}).get("account_id"),
        "email": state.email,
        "email_display": state.email_display,
        "qualified_at": to_json_time(now),
        "qualification_number": state.mql_count,
        "model_version": model.version,
        "triggering_event_id": triggering_event_id,
        "fit": {
            "score": float(fit.score),
            "threshold": float(model.thresholds.fit),
            "rules": [{"rule": r, "points": float(p)} for r, p in fit.breakdown],
        },
        "engagement": {
            "score": float(round(engagement_score, 3)),
            "threshold": float(model.thresholds.engagement),
            "signals": signals,
        },
        "recent_signals": [
            {"rule": rule, "event_type": etype, "where": place, "at": to_json_time(at), "counted": counted}
            for at, rule, etype, place, counted in state.recent
        ],
        "top_pages": [{"path": p, "visits": n} for p, n in top_pages],
        "first_touch": _first_touch(state.first_touch),
        "follow_up_due_at": to_json_time(now + model.sla_hours * HOUR_S),
        "firmographics": dict(
            firmographics
            or {
                k: v
                for k, v in state.traits.items()
                if k in ("industry", "employees", "region", "country", "company_name")
            }
        ),
    }


def _first_touch(touch: dict[str, Any] | None) -> dict[str, Any] | None:
    if touch is None:
        return None
    out: dict[str, Any] = {
        "at": to_json_time(touch["at"]),
        "event_type": touch["event_type"],
        "where": touch["where"],
    }
    for name in FIRST_TOUCH_CONTEXT:
        out[name] = touch.get(name)
    return out
