"""The scoring model: typed, frozen, validated. Operators write it as YAML (see default_model.yaml).

Two axes scored separately: fit (who they are, no decay) and engagement (what they did, decayed by
a half-life per signal family). A contact qualifies only when both clear their thresholds.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

__all__ = [
    "ACCOUNT_ATTRIBUTES",
    "EVENT_TYPES",
    "MATCHABLE",
    "AccountModel",
    "BuyingGroupRule",
    "DomainList",
    "EngagementRule",
    "EventPolicy",
    "FitRule",
    "Frequency",
    "Lifecycle",
    "Match",
    "Name",
    "NurtureSignal",
    "Rearm",
    "RoleRule",
    "ScoringModel",
    "Segment",
    "SeniorityPattern",
    "SignalFamily",
    "SlaStep",
    "Thresholds",
    "valid_regex",
]

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
EVENT_TYPES = ("page_view", "form_submission", "trial", "webinar", "identify")
# Properties a rule may match on, per event type (see streams/scoring/signals.py).
MATCHABLE = {
    "sales_outcome": set(),
    "page_view": {"path", "url", "title"},
    "form_submission": {"form_type", "form_id"},
    "trial": {"action"},
    "webinar": {"action", "webinar_id"},
    "identify": set(),
}


def valid_regex(value: str) -> str:
    """``value`` if it compiles as a regular expression; a clear error otherwise."""
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Frozen):
    """Which events a rule matches: the event type plus glob patterns on its properties.

    ``{type: page_view, path: ["/pricing*"]}`` matches page views whose path starts with
    /pricing. Every listed property must match one of its patterns (case-insensitive).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    type: Literal["page_view", "form_submission", "trial", "webinar", "identify"]

    @model_validator(mode="after")
    def _known_properties(self) -> Match:
        extra = self.model_extra or {}
        unknown = set(extra) - MATCHABLE[self.type]
        if unknown:
            allowed = ", ".join(sorted(MATCHABLE[self.type])) or "nothing"
            raise ValueError(f"{self.type} events cannot match on {sorted(unknown)}; allowed: {allowed}")
        for name, patterns in extra.items():
            if isinstance(patterns, str):
                patterns = [patterns]
            if (
                not isinstance(patterns, list)
                or not patterns
                or not all(isinstance(p, str) for p in patterns)
            ):
                raise ValueError(f"{name}: expected a pattern or a non-empty list of patterns")
        return self

    def patterns(self) -> dict[str, tuple[str, ...]]:
        """Property -> lower-cased glob patterns."""
        out = {}
        for name, value in (self.model_extra or {}).items():
            values = [value] if isinstance(value, str) else value
            out[name] = tuple(v.lower() for v in values)
        return out


class Frequency(_Frozen):
    """Count an event only when it is at least the ``min_count``-th match within ``within_days``."""

    min_count: int = Field(ge=2, le=16)
    within_days: float = Field(gt=0, le=365)


class EngagementRule(_Frozen):
    name: Name
    family: Name
    points: float = Field(ge=-1000, le=1000)
    # The rule's decayed contribution is clamped to [-cap, cap]; None means unbounded.
    cap: float | None = Field(default=None, gt=0)
    frequency: Frequency | None = None
    when: Match

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str, info: ValidationInfo) -> str:
        # The loader passes the declared families as context, so the error points at this line.
        families = (info.context or {}).get("families")
        if families is not None and value not in families:
            raise ValueError(f"family {value!r} is not declared under families (known: {sorted(families)})")
        return value

    @model_validator(mode="after")
    def _nonzero(self) -> EngagementRule:
        if self.points == 0:
            raise ValueError("points is 0: list zero-point signals under nurture_signals instead")
        return self


class NurtureSignal(_Frozen):
    """Recorded for context in handoffs, never counted toward the MQL bar."""

    name: Name
    when: Match


class SignalFamily(_Frozen):
    half_life_days: float = Field(gt=0, le=3650)


class FitRule(_Frozen):
    """Points when a contact attribute matches; attributes come from identify traits and forms."""

    name: Name
    attribute: Literal[
        "industry",
        "employees",
        "annual_revenue",
        "region",
        "country",
        "seniority",
        "department",
        "company_stage",
    ]
    points: float = Field(ge=-1000, le=1000)
    # Exactly one of: a list of accepted values (case-insensitive) or a numeric range.
    any_of: list[str] | None = None
    between: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> FitRule:
        if (self.any_of is None) == (self.between is None):
            raise ValueError("give exactly one of any_of (values) or between ([low, high])")
        if self.between is not None and self.between[0] > self.between[1]:
            raise ValueError(f"between: low {self.between[0]} is above high {self.between[1]}")
        return self


class DomainList(_Frozen):
    """Email domains (glob patterns such as ``*.edu``) that add points or disqualify outright."""

    domains: list[str] = Field(min_length=1)
    points: float = Field(default=0, ge=-1000, le=1000)
    disqualify: bool = False
    # False for personal and student mail: such an email domain never identifies a company account.
    account: bool = True

    @field_validator("domains")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [d.strip().lower() for d in value]

    def matches(self, domain: str) -> bool:
        return any(fnmatchcase(domain, pattern) for pattern in self.domains)


class SeniorityPattern(_Frozen):
    pattern: str
    level: Name

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return valid_regex(value)


class Rearm(_Frozen):
    """When a handed-off contact may qualify again.

    Both must hold: engagement fell below ``engagement_below`` at some point since the last
    handoff, and ``cooldown_days`` have passed since it.
    """

    engagement_below: float = Field(ge=0)
    cooldown_days: float = Field(default=0, ge=0)


class Thresholds(_Frozen):
    fit: float
    engagement: float = Field(gt=0)
    rearm: Rearm

    @model_validator(mode="after")
    def _band(self) -> Thresholds:
        if self.rearm.engagement_below >= self.engagement:
            raise ValueError(
                f"rearm.engagement_below ({self.rearm.engagement_below}) must be below the "
                f"engagement threshold ({self.engagement}), or every event would re-qualify"
            )
        return self


class EventPolicy(_Frozen):
    """Which events are too large, too far in the future or too old to score.

    Times are compared with the Kafka record's timestamp (when it was produced), never with the
    wall clock, so a replay decides exactly as the live stream did.
    """

    max_event_bytes: int = Field(default=65_536, ge=512, le=1_048_576)
    max_future_seconds: float = Field(default=300, ge=0)
    max_age_days: float = Field(default=730, gt=0)


ACCOUNT_ATTRIBUTES = ("industry", "employees", "annual_revenue", "region", "country", "company_stage")


class RoleRule(_Frozen):
    """A buying-group role, derived from a contact's seniority, department and job title.

    Every condition given must hold; the first matching rule wins.
    """

    role: Name
    seniority: list[str] | None = None
    department: list[str] | None = None  # glob patterns, case-insensitive
    title: str | None = None  # regular expression, case-insensitive

    @field_validator("title")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return None if value is None else valid_regex(value)


class Segment(_Frozen):
    """Which accounts a buying-group rule applies to, by firmographics; empty matches all."""

    industry: list[str] | None = None
    employees: tuple[float, float] | None = None
    region: list[str] | None = None


class BuyingGroupRule(_Frozen):
    """When an account qualifies: enough engaged contacts covering enough roles within a window,
    or account engagement above a bar; and in both cases account fit above a bar."""

    name: Name
    segment: Segment = Field(default_factory=Segment)
    min_engaged_contacts: int = Field(ge=1, le=100)
    contact_engagement_at_least: float = Field(gt=0)
    roles: list[Name] = Field(min_length=1)
    min_roles: int = Field(ge=0)
    within_days: float = Field(gt=0, le=365)
    account_engagement_at_least: float | None = Field(default=None, gt=0)
    account_fit_at_least: float = 0
    rearm: Rearm

    @model_validator(mode="after")
    def _roles_reachable(self) -> BuyingGroupRule:
        if self.min_roles > len(self.roles):
            raise ValueError(f"min_roles {self.min_roles} is more than the {len(self.roles)} roles listed")
        return self


class AccountModel(_Frozen):
    roles: list[RoleRule] = Field(min_length=1)
    buying_groups: list[BuyingGroupRule] = Field(min_length=1)
    # An account tracks at most this many contacts (the least recently active are dropped).
    max_members: int = Field(default=50, ge=1, le=1000)

    @model_validator(mode="after")
    def _known_roles(self) -> AccountModel:
        defined = {r.role for r in self.roles}
        for group in self.buying_groups:
            unknown = set(group.roles) - defined
            if unknown:
                raise ValueError(
                    f"buying group {group.name!r} counts roles no role rule defines: {sorted(unknown)}"
                )
        return self


class SlaStep(_Frozen):
    after_due_hours: float = Field(ge=0)
    escalation: Name  # who is told, e.g. rep, sdr_manager, head_of_sales


class Lifecycle(_Frozen):
    """After the handoff: SLA breaches and decay-driven recycling."""

    # One sla_breached event at each step, counted from the handoff's follow_up_due_at.
    sla_escalations: list[SlaStep] = Field(
        default_factory=lambda: [
            SlaStep(after_due_hours=0, escalation="rep"),
            SlaStep(after_due_hours=24, escalation="sdr_manager"),
        ]
    )
    # A handed-off contact whose engagement decays below the MQL bar before sales acts is recycled.
    recycle_when_decayed: bool = True


class ScoringModel(_Frozen):
    version: Annotated[str, Field(min_length=1, max_length=64)]
    thresholds: Thresholds
    sla_hours: float = Field(default=24, gt=0)
    event_policy: EventPolicy = Field(default_factory=EventPolicy)
    families: dict[Name, SignalFamily]
    engagement_rules: list[EngagementRule] = Field(min_length=1)
    nurture_signals: list[NurtureSignal] = Field(default_factory=list)
    fit_rules: list[FitRule] = Field(default_factory=list)
    domain_lists: dict[Name, DomainList] = Field(default_factory=dict)
    seniority_from_title: list[SeniorityPattern] = Field(default_factory=list)
    accounts: AccountModel | None = None
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)

    @model_validator(mode="after")
    def _consistent(self) -> ScoringModel:
        names = [r.name for r in self.engagement_rules] + [s.name for s in self.nurture_signals]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"signal names must be unique; repeated: {duplicates}")
        fit_names = [r.name for r in self.fit_rules]
        if len(set(fit_names)) != len(fit_names):
            raise ValueError("fit rule names must be unique")
        for rule in self.engagement_rules:
            if rule.family not in self.families:
                raise ValueError(
                    f"engagement rule {rule.name!r} uses family {rule.family!r}, which is not "
                    f"under families (known: {sorted(self.families)})"
                )
        return self

    def family_of(self, rule: EngagementRule) -> SignalFamily:
        return self.families[rule.family]
