"""Matching events to the model's signals: which engagement rules and nurture signals fire."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import translate
from typing import Final

from leadstream.config.model import AccountModel, BuyingGroupRule, EngagementRule, Match, ScoringModel
from leadstream.schemas.events import url_path
from leadstream.scoring.decay import rate
from leadstream.scoring.events import AnyEvent, FormSubmission, PageView, TrialEvent, WebinarEvent

__all__ = [
    "DAY_S",
    "MEMO_LIMIT",
    "AnyEvent",
    "CompiledDomainList",
    "CompiledFitRule",
    "CompiledGroup",
    "CompiledModel",
    "CompiledRule",
    "Patterns",
    "compile_model",
    "domain_lists_of",
    "glob_regex",
    "matching_nurture",
    "matching_rules",
    "properties",
    "seniority",
    "to_datetime",
    "to_json_time",
    "where",
]


def to_datetime(seconds: float) -> datetime:
    """Epoch seconds (event time) as an aware UTC datetime, for output records."""
    return datetime.fromtimestamp(seconds, tz=UTC)


def to_json_time(seconds: float) -> str:
    """Epoch seconds as an output record's time: ISO 8601 in UTC with ``Z``, exactly as pydantic
    writes an aware datetime in JSON mode ('2026-01-05T09:30:00Z', '...:00.250000Z').

    Written out rather than ``datetime.fromtimestamp(...).isoformat()`` (a handoff holds a few
    dozen times: that was ~3% of the engine), in operations the compiled module does natively
    (integer // and %, one string build): the microseconds are rounded as ``fromtimestamp``
    rounds them (the fraction times 1e6, half to even), each day's date is made once."""
    if not 0.0 <= seconds < _LAST_DAY_S:
        return datetime.fromtimestamp(seconds, tz=UTC).isoformat()[:-6] + "Z"
    at = int(seconds)
    scaled = (seconds - at) * 1e6  # the fraction is exact: what math.modf gives
    micros = int(scaled)
    rest = scaled - micros  # exact too
    if rest > 0.5 or (rest == 0.5 and micros % 2 == 1):
        micros += 1
    if micros >= 1_000_000:
        micros -= 1_000_000
        at += 1
    day = at // 86_400
    in_day = at - day * 86_400
    date = _DATES.get(day)
    if date is None:
        if len(_DATES) >= MEMO_LIMIT:
            _DATES.clear()
        date = _DATES[day] = datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%dT")
    two = _TWO_DIGITS
    clock = f"{date}{two[in_day // 3600]}:{two[in_day // 60 % 60]}:{two[in_day % 60]}"
    if micros:
        return f"{clock}.{str(1_000_000 + micros)[1:]}Z"
    return f"{clock}Z"


_LAST_DAY_S: Final = 253_402_214_400.0  # 9999-12-31 (the formatting above assumes four-digit years)
_TWO_DIGITS: Final = [f"{n:02d}" for n in range(100)]
_DATES: Final[dict[int, str]] = {}  # days since the epoch -> "YYYY-MM-DDT"


DAY_S: Final = 86_400.0


def properties(event: AnyEvent) -> dict[str, str]:
    """The matchable properties of an event, lower-cased (see config.model.MATCHABLE)."""
    # ``type(event) is``, not isinstance, here and across the scoring core: pydantic's metaclass
    # answers isinstance in Python (~800 instructions a check, a few checks an event), and the
    # event models have no subclasses (tests/unit/test_architecture.py holds them to it).
    if type(event) is PageView:
        return {"path": url_path(event.url), "url": event.url.lower(), "title": (event.title or "").lower()}
    if type(event) is FormSubmission:
        return {"form_type": event.form_type, "form_id": event.form_id.lower()}
    if type(event) is TrialEvent:
        return {"action": event.action}
    if type(event) is WebinarEvent:
        return {"action": event.action, "webinar_id": event.webinar_id.lower()}
    return {}


def where(event: AnyEvent) -> str:
    """A short human description of where an event happened, for handoff context."""
    if type(event) is PageView:
        return url_path(event.url)
    if type(event) is FormSubmission:
        return f"form {event.form_id} ({event.form_type})"
    if type(event) is TrialEvent:
        return f"trial {event.action}"
    if type(event) is WebinarEvent:
        return f"webinar {event.webinar_id} ({event.action})"
    return ""


# property -> one regex for all its globs, and what it answered for each value seen (page paths,
# form and webinar ids repeat across events: a dict lookup, ~20x cheaper than the regex again)
Patterns = tuple[tuple[str, re.Pattern[str], dict[str, bool]], ...]


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, frozen=True, slots=True)
class CompiledRule:
    rule: EngagementRule
    name: str
    lam: float  # decay rate per second
    patterns: Patterns
    # The rule's settings the engagement loop reads, as plain fields of this compiled class:
    # read through the pydantic model they were a generic attribute lookup each, ~150k a
    # thousand contacts' journeys.
    points: float
    cap: float | None
    window_s: float | None  # a frequency rule's window; None for a plain decayed sum
    min_count: int  # a frequency rule's matches within the window before any counts

    def __init__(self, rule: EngagementRule, lam: float, patterns: Patterns) -> None:
        object.__setattr__(self, "rule", rule)
        object.__setattr__(self, "name", rule.name)
        object.__setattr__(self, "lam", lam)
        object.__setattr__(self, "patterns", patterns)
        object.__setattr__(self, "points", float(rule.points))
        object.__setattr__(self, "cap", None if rule.cap is None else float(rule.cap))
        frequency = rule.frequency
        object.__setattr__(self, "window_s", None if frequency is None else frequency.within_days * DAY_S)
        object.__setattr__(self, "min_count", 0 if frequency is None else frequency.min_count)


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, frozen=True, slots=True)
class CompiledGroup:
    """A buying-group rule with the settings an account's view reads as plain fields (each read
    of the pydantic rule was a generic attribute lookup, ~7 an event); the same names as the
    rule's, so what reads a view's rule reads either."""

    rule: BuyingGroupRule
    name: str
    industries: frozenset[str] | None  # the segment's, lower-cased
    regions: frozenset[str] | None
    employees: tuple[float, float] | None
    min_engaged_contacts: int
    contact_engagement_at_least: float
    roles: tuple[str, ...]
    min_roles: int
    within_s: float
    account_engagement_at_least: float | None
    account_fit_at_least: float
    rearm_below: float
    rearm_cooldown_s: float

    def __init__(self, rule: BuyingGroupRule) -> None:
        segment = rule.segment
        industries = None if segment.industry is None else frozenset(i.lower() for i in segment.industry)
        regions = None if segment.region is None else frozenset(r.lower() for r in segment.region)
        object.__setattr__(self, "rule", rule)
        object.__setattr__(self, "name", rule.name)
        object.__setattr__(self, "industries", industries)
        object.__setattr__(self, "regions", regions)
        object.__setattr__(self, "employees", segment.employees)
        object.__setattr__(self, "min_engaged_contacts", rule.min_engaged_contacts)
        object.__setattr__(self, "contact_engagement_at_least", rule.contact_engagement_at_least)
        object.__setattr__(self, "roles", tuple(rule.roles))
        object.__setattr__(self, "min_roles", rule.min_roles)
        object.__setattr__(self, "within_s", rule.within_days * DAY_S)
        object.__setattr__(self, "account_engagement_at_least", rule.account_engagement_at_least)
        object.__setattr__(self, "account_fit_at_least", rule.account_fit_at_least)
        object.__setattr__(self, "rearm_below", rule.rearm.engagement_below)
        object.__setattr__(self, "rearm_cooldown_s", rule.rearm.cooldown_days * DAY_S)


@dataclass(frozen=True, slots=True)
class CompiledFitRule:
    name: str
    attribute: str
    points: float
    accepted: frozenset[str] | None
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class CompiledDomainList:
    name: str
    pattern: re.Pattern[str]
    points: float
    disqualify: bool
    account: bool


@dataclass(frozen=True, slots=True)
class CompiledModel:
    """The model with patterns lower-cased, rules indexed by event type and decay rates ready."""

    model: ScoringModel
    rules_by_type: dict[str, tuple[CompiledRule, ...]]
    rules_by_name: dict[str, CompiledRule]
    nurture_by_type: dict[str, tuple[tuple[str, Patterns], ...]]
    seniority: tuple[tuple[re.Pattern[str], str], ...]
    fit_rules: tuple[CompiledFitRule, ...]
    domain_lists: tuple[CompiledDomainList, ...]
    role_titles: dict[str, re.Pattern[str]]
    # The model's settings the hot path reads, as fields of this compiled class: each read of a
    # pydantic model is a generic attribute lookup through its getattr hook (~430 instructions),
    # and every event read ~20 of them (the bars, the account settings, the buying groups).
    mql_fit: float
    mql_engagement: float
    rearm_below: float
    rearm_cooldown_s: float
    accounts: AccountModel | None
    buying_groups: tuple[CompiledGroup, ...]
    max_members: int
    # Memos of pure lookups that every event repeats (same input, same answer): regexes over a
    # domain or a job title cost more than the rest of fit together.
    domain_memo: dict[str, tuple[CompiledDomainList, ...]] = field(default_factory=dict)
    seniority_memo: dict[str, str | None] = field(default_factory=dict)
    account_memo: dict[str, bool] = field(default_factory=dict)  # domain -> makes an account
    # (job title, department) -> buying-group role: asked for each member snapshot (every visit
    # of a contact with an account), answered by the roles' rules one pydantic field at a time.
    role_memo: dict[tuple[str, str], str | None] = field(default_factory=dict)


MEMO_LIMIT: Final = 100_000
# Per pattern: a site's paths and forms are a few thousand; a property of many values (a full
# URL with its query) would otherwise hold up to MEMO_LIMIT strings for each of its patterns.
ANSWERS_LIMIT: Final = 2_048


def domain_lists_of(compiled: CompiledModel, domain: str) -> tuple[CompiledDomainList, ...]:
    """The domain lists (competitors, personal mail, ...) that ``domain`` is on."""
    memo = compiled.domain_memo
    found = memo.get(domain)
    if found is None:
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        found = memo[domain] = tuple(d for d in compiled.domain_lists if d.pattern.match(domain))
    return found


def seniority(compiled: CompiledModel, job_title: str | None) -> str | None:
    """The seniority level a job title implies (first matching pattern of the model)."""
    if not job_title:
        return None
    memo = compiled.seniority_memo
    if job_title in memo:
        return memo[job_title]
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    level = memo[job_title] = next(
        (lv for pattern, lv in compiled.seniority if pattern.search(job_title)), None
    )
    return level


def glob_regex(globs: tuple[str, ...] | list[str]) -> re.Pattern[str]:
    """One regex matching any of the shell-style globs (what fnmatchcase does, compiled once)."""
    return re.compile("|".join(f"(?:{translate(g)})" for g in globs))


def _patterns(match: Match) -> Patterns:
    return tuple((name, glob_regex(globs), {}) for name, globs in sorted(match.patterns().items()))


_compiled: dict[int, CompiledModel] = {}


def compile_model(model: ScoringModel) -> CompiledModel:
    """Compile once per model object (models are frozen, so identity is a safe cache key)."""
    cached = _compiled.get(id(model))
    if cached is not None and cached.model is model:
        return cached
    if len(_compiled) > 32:
        _compiled.clear()
    _compiled[id(model)] = compiled = _compile(model)
    return compiled


def _compile(model: ScoringModel) -> CompiledModel:
    rules_by_type: dict[str, list[CompiledRule]] = {}
    by_name = {}
    for rule in model.engagement_rules:
        compiled = CompiledRule(
            rule, rate(model.family_of(rule).half_life_days * DAY_S), _patterns(rule.when)
        )
        rules_by_type.setdefault(rule.when.type, []).append(compiled)
        by_name[rule.name] = compiled
    nurture: dict[str, list[tuple[str, Patterns]]] = {}
    for signal in model.nurture_signals:
        nurture.setdefault(signal.when.type, []).append((signal.name, _patterns(signal.when)))
    return CompiledModel(
        model=model,
        rules_by_type={k: tuple(v) for k, v in rules_by_type.items()},
        rules_by_name=by_name,
        nurture_by_type={k: tuple(v) for k, v in nurture.items()},
        seniority=tuple((re.compile(p.pattern, re.IGNORECASE), p.level) for p in model.seniority_from_title),
        fit_rules=tuple(
            CompiledFitRule(
                r.name,
                r.attribute,
                r.points,
                frozenset(v.lower() for v in r.any_of) if r.any_of is not None else None,
                r.between[0] if r.between else 0.0,
                r.between[1] if r.between else 0.0,
            )
            for r in model.fit_rules
        ),
        domain_lists=tuple(
            CompiledDomainList(name, glob_regex(d.domains), d.points, d.disqualify, d.account)
            for name, d in model.domain_lists.items()
        ),
        role_titles={
            r.role: re.compile(r.title, re.IGNORECASE)
            for r in (model.accounts.roles if model.accounts else [])
            if r.title is not None
        },
        mql_fit=model.thresholds.fit,
        mql_engagement=model.thresholds.engagement,
        rearm_below=model.thresholds.rearm.engagement_below,
        rearm_cooldown_s=model.thresholds.rearm.cooldown_days * DAY_S,
        accounts=model.accounts,
        buying_groups=tuple(CompiledGroup(g) for g in model.accounts.buying_groups) if model.accounts else (),
        max_members=model.accounts.max_members if model.accounts else 0,
    )


def _matches(patterns: Patterns, props: dict[str, str]) -> bool:
    # A loop, not all(<generator>): this runs for every rule and every event.
    for name, regex, answers in patterns:
        value = props.get(name, "")
        matched = answers.get(value)
        if matched is None:
            if len(answers) >= ANSWERS_LIMIT:
                answers.clear()
            matched = answers[value] = regex.match(value) is not None
        if not matched:
            return False
    return True


def matching_rules(compiled: CompiledModel, event_type: str, props: dict[str, str]) -> list[CompiledRule]:
    return [r for r in compiled.rules_by_type.get(event_type, ()) if _matches(r.patterns, props)]


def matching_nurture(compiled: CompiledModel, event_type: str, props: dict[str, str]) -> list[str]:
    return [name for name, pats in compiled.nurture_by_type.get(event_type, ()) if _matches(pats, props)]
