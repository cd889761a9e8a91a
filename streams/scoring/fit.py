"""Fit: who the contact is, scored from traits and email domain. Fit does not decay."""

from __future__ import annotations

from dataclasses import dataclass

from streams.scoring.signals import CompiledModel
from streams.scoring.state import ContactState

# Form fields and identify traits that feed fit (anything else in a form is ignored).
TRAIT_FIELDS = {
    "job_title": str, "department": str, "country": str, "region": str, "company_name": str,
    "industry": str, "employees": int, "annual_revenue": int, "company_stage": str,
}


@dataclass(frozen=True, slots=True)
class Fit:
    score: float
    breakdown: tuple[tuple[str, float], ...]
    disqualified_by: str | None  # the domain list that disqualifies, if any


def seniority(compiled: CompiledModel, job_title: str | None) -> str | None:
    if not job_title:
        return None
    for pattern, level in compiled.seniority:
        if pattern.search(job_title):
            return level
    return None


def email_domain(state: ContactState) -> str | None:
    return state.email.rsplit("@", 1)[1] if state.email else None


def evaluate_fit(compiled: CompiledModel, state: ContactState) -> Fit:
    model = compiled.model
    attributes: dict[str, str | int | None] = dict(state.traits)
    title = state.traits.get("job_title")
    attributes["seniority"] = seniority(compiled, title if isinstance(title, str) else None)
    breakdown: list[tuple[str, float]] = []
    for rule in model.fit_rules:
        value = attributes.get(rule.attribute)
        if value is None:
            continue
        if rule.any_of is not None:
            hit = str(value).lower() in {v.lower() for v in rule.any_of}
        else:
            assert rule.between is not None
            hit = isinstance(value, int) and rule.between[0] <= value <= rule.between[1]
        if hit:
            breakdown.append((rule.name, rule.points))
    disqualified_by = None
    domain = email_domain(state)
    if domain:
        for name, domain_list in model.domain_lists.items():
            if domain_list.matches(domain):
                if domain_list.points:
                    breakdown.append((f"domain:{name}", domain_list.points))
                if domain_list.disqualify and disqualified_by is None:
                    disqualified_by = name
    return Fit(sum(points for _, points in breakdown), tuple(breakdown), disqualified_by)


def coerce_trait(name: str, raw: str | int) -> str | int | None:
    """A form field's text as a trait value, or None when it does not parse."""
    kind = TRAIT_FIELDS.get(name)
    if kind is None:
        return None
    if kind is int:
        try:
            return int(str(raw).replace(",", "").strip())
        except ValueError:
            return None
    text = str(raw).strip()
    return text or None
