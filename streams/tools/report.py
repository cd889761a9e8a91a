"""``leadstream report``: is the MQL bar right? Conversion from the stream, by model version and week.

Pure over the records of the handoff and lifecycle topics. A sales outcome is credited to the
contact's latest MQL handoff at or before it.
"""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["LOOSE_BELOW", "MIN_TO_JUDGE", "STRICT_ABOVE", "Cohort", "conversion", "format_report", "verdict"]

# The middles of the playbooks' bands: MQL -> SQL under 10-15% means a loose bar, over 40-50% a
# strict one; the report uses 12.5% and 45% and prints those numbers.
LOOSE_BELOW = 0.125
STRICT_ABOVE = 0.45
MIN_TO_JUDGE = 20  # MQLs, and MQLs with a sales answer, below which a rate says nothing


@dataclass(slots=True)
class Cohort:
    mqls: int = 0
    sqls: int = 0
    rejected: int = 0
    won: int = 0
    breached: int = 0
    first_touch_hours: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        def rate(n: int) -> float:
            return round(n / self.mqls, 4) if self.mqls else 0.0

        return {
            "mqls": self.mqls,
            "answered": len(self.first_touch_hours),
            "sqls": self.sqls,
            "rejected": self.rejected,
            "closed_won": self.won,
            "mql_to_sql": rate(self.sqls),
            "mql_to_won": rate(self.won),
            "sla_breach_rate": rate(self.breached),
            "median_hours_to_first_touch": (
                round(statistics.median(self.first_touch_hours), 1) if self.first_touch_hours else None
            ),
        }


def _week(moment: str) -> str:
    year, week, _ = datetime.fromisoformat(moment).isocalendar()
    return f"{year}-W{week:02d}"


def conversion(handoffs: list[dict[str, Any]], lifecycle: list[dict[str, Any]]) -> dict[str, Any]:
    mqls = {h["handoff_id"]: h for h in handoffs if h.get("kind") == "mql"}
    by_contact: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for h in mqls.values():
        by_contact[h["contact_id"]].append((h["qualified_at"], h["handoff_id"]))
    for items in by_contact.values():
        items.sort()
    cohorts: dict[tuple[str, str], Cohort] = defaultdict(Cohort)
    versions: dict[str, Cohort] = defaultdict(Cohort)

    def cohorts_of(handoff_id: str) -> list[Cohort]:
        h = mqls[handoff_id]
        return [cohorts[(h["model_version"], _week(h["qualified_at"]))], versions[h["model_version"]]]

    for h in mqls.values():
        for cohort in cohorts_of(h["handoff_id"]):
            cohort.mqls += 1
    touched: set[str] = set()
    unique = {e.get("transition_id") or e.get("breach_id"): e for e in lifecycle}  # at-least-once
    answered: dict[str, float] = {}  # handoff id -> time of the first sales outcome
    for event in unique.values():
        if event["kind"] == "transition" and event.get("handoff_id") and _is_sales(event["reason"]):
            at = _ts(event["at"])
            answered[event["handoff_id"]] = min(at, answered.get(event["handoff_id"], at))
    for event in sorted(unique.values(), key=lambda e: _ts(e["at"])):
        handoff_id = event.get("handoff_id")
        if event["kind"] == "transition" and handoff_id not in mqls:
            items = by_contact.get(event["contact_id"], [])
            index = bisect.bisect_right([_ts(at) for at, _ in items], _ts(event["at"])) - 1
            handoff_id = items[index][1] if index >= 0 else None
        if handoff_id not in mqls:
            continue
        assert handoff_id is not None
        targets = cohorts_of(handoff_id)
        if event["kind"] == "sla_breached":
            # A breach is real only if sales had not answered by the due time; an answer that
            # happened earlier but reached the stream late made the breach premature.
            if event["step"] == 0 and answered.get(handoff_id, float("inf")) > _ts(event["due_at"]):
                for cohort in targets:
                    cohort.breached += 1
            continue
        to_stage, reason = event["to_stage"], event["reason"]
        if _is_sales(reason) and handoff_id not in touched:
            touched.add(handoff_id)
            hours = datetime.fromisoformat(event["at"]) - datetime.fromisoformat(
                mqls[handoff_id]["qualified_at"]
            )
            for cohort in targets:
                cohort.first_touch_hours.append(hours.total_seconds() / 3600)
        for cohort in targets:
            if to_stage == "sql":
                cohort.sqls += 1
            elif to_stage == "customer":
                cohort.won += 1
            elif to_stage == "recycled" and reason.startswith("sales rejected"):
                cohort.rejected += 1
    return {
        "by_version": {
            version: {**c.row(), "verdict": verdict(c)} for version, c in sorted(versions.items())
        },
        "by_version_and_week": [
            {"model_version": v, "week": w, **c.row()} for (v, w), c in sorted(cohorts.items())
        ],
    }


def _ts(moment: str) -> float:
    return datetime.fromisoformat(moment).timestamp()


def _is_sales(reason: str) -> bool:
    return reason.startswith(("sales ", "closed ", "opportunity"))


def verdict(cohort: Cohort) -> str:
    if cohort.mqls < MIN_TO_JUDGE:
        return "too few MQLs to judge"
    answered = len(cohort.first_touch_hours)
    if answered == 0:
        return "no sales outcomes yet: nothing to judge"
    if answered < MIN_TO_JUDGE:
        return f"too few sales outcomes to judge ({answered} of {cohort.mqls} MQLs answered)"
    rate = cohort.sqls / cohort.mqls
    if rate < LOOSE_BELOW:
        return f"bar too loose: MQL->SQL below {LOOSE_BELOW:.1%}; raise thresholds or tighten rules"
    if rate > STRICT_ABOVE:
        return f"bar too strict: MQL->SQL above {STRICT_ABOVE:.0%}; good leads are likely left in nurture"
    return f"healthy: MQL->SQL between {LOOSE_BELOW:.1%} and {STRICT_ABOVE:.0%}"


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def format_report(report: dict[str, Any]) -> str:
    lines = [
        "model version              MQLs   SQL  won  MQL->SQL  MQL->won  SLA breach  h to touch  verdict"
    ]
    for version, row in report["by_version"].items():
        lines.append(
            f"{version:<24} {row['mqls']:>6} {row['sqls']:>5} {row['closed_won']:>4}"
            f"  {row['mql_to_sql']:>8.1%}  {row['mql_to_won']:>8.1%}  {row['sla_breach_rate']:>10.1%}  "
            f"{_hours(row['median_hours_to_first_touch']):>10}  {row['verdict']}"
        )
    lines += ["", "by week:", "model version              week      MQLs   SQL  MQL->SQL  SLA breach"]
    for row in report["by_version_and_week"]:
        lines.append(
            f"{row['model_version']:<24} {row['week']:<9} {row['mqls']:>6} {row['sqls']:>5}"
            f"  {row['mql_to_sql']:>8.1%}  {row['sla_breach_rate']:>10.1%}"
        )
    return "\n".join(lines)
