"""Fit: who the contact is, scored from traits and email domain. Fit does not decay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from leadstream.scoring.events import address_domain
from leadstream.scoring.signals import CompiledFitRule, CompiledModel, domain_lists_of, seniority
from leadstream.scoring.state import ContactState

__all__ = [
    "TRAIT_FIELDS",
    "Fit",
    "coerce_trait",
    "email_domain",
    "evaluate_fit",
    "rule_matches",
]

# Form fields and identify traits that feed fit (anything else in a form is ignored).
TRAIT_FIELDS: Final = {
    "job_title": str,
    "department": str,
    "country": str,
    "region": str,
    "company_name": str,
    "industry": str,
    "employees": int,
    "annual_revenue": int,
    "company_stage": str,
}


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)  # not frozen: built per event, frozen __init__ is ~4x slower
class Fit:
    score: float
    breakdown: tuple[tuple[str, float], ...]
    disqualified_by: str | None  # the domain list that disqualifies, if any

    def __init__(
        self,
        score: float,
        breakdown: tuple[tuple[str, float], ...],
        disqualified_by: str | None,
    ) -> None:
        self.score = score
        self.breakdown = breakdown
        self.disqualified_by = disqualified_by


def email_domain(state: ContactState) -> str | None:
    return address_domain(state.email)


def rule_matches(rule: CompiledFitRule, value: str | int) -> bool:
    """A fit rule's condition: one of the accepted values, or within the numeric range."""
    if rule.accepted is not None:
        return str(value).lower() in rule.accepted
    return isinstance(value, int) and rule.low <= value <= rule.high


def evaluate_fit(
    compiled: CompiledModel, state: ContactState, firmographics: dict[str, Any] | None = None
) -> Fit:
    """Fit from the contact's traits; the account's firmographics, when known, are authoritative
    for company attributes (industry, size, region...). Evaluated again only when one of them,
    the email or the model changed since the state's last evaluation (most events change none)."""
    known = firmographics or None
    memo = state.fit_memo
    # Compared as dicts, not as tuples of their items built per call (a third of this function).
    if (
        memo is not None
        and memo[0] is compiled
        and (memo[1] is state.email or memo[1] == state.email)  # identity first, as account_of
        and memo[2] == state.traits
        and memo[3] == known
    ):
        fit: Fit = memo[4]
        return fit
    fit = _evaluate_fit(compiled, state, firmographics)
    # Copies: the contact's traits (and a version's values) are changed in place later.
    state.fit_memo = (compiled, state.email, dict(state.traits), dict(known) if known else None, fit)
    return fit


def _evaluate_fit(compiled: CompiledModel, state: ContactState, firmographics: dict[str, Any] | None) -> Fit:
    traits: dict[str, Any] = {**state.traits, **firmographics} if firmographics else state.traits
    breakdown: list[tuple[str, float]] = []
    for rule in compiled.fit_rules:
        if rule.attribute == "seniority":
            title = traits.get("job_title")
            value: str | int | None = seniority(compiled, title if isinstance(title, str) else None)
        else:
            value = traits.get(rule.attribute)
        if value is not None and rule_matches(rule, value):
            breakdown.append((rule.name, rule.points))
    disqualified_by = None
    domain = email_domain(state)
    if domain:
        for domain_list in domain_lists_of(compiled, domain):
            if domain_list.points:
                breakdown.append((f"domain:{domain_list.name}", domain_list.points))
            if domain_list.disqualify and disqualified_by is None:
                disqualified_by = domain_list.name
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
