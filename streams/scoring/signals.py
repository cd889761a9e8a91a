"""Matching events to the model's signals: which engagement rules and nurture signals fire."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from config.model import EngagementRule, Match, ScoringModel
from streams.scoring.decay import rate
from schemas.events import FormSubmission, PageView, TrialEvent, WebinarEvent

AnyEvent = PageView | FormSubmission | TrialEvent | WebinarEvent | object
DAY_S = 86_400.0


def properties(event: AnyEvent) -> dict[str, str]:
    """The matchable properties of an event, lower-cased (see config.model.MATCHABLE)."""
    if isinstance(event, PageView):
        return {"path": event.path, "url": event.url.lower(), "title": (event.title or "").lower()}
    if isinstance(event, FormSubmission):
        return {"form_type": event.form_type, "form_id": event.form_id.lower()}
    if isinstance(event, TrialEvent):
        return {"action": event.action}
    if isinstance(event, WebinarEvent):
        return {"action": event.action, "webinar_id": event.webinar_id.lower()}
    return {}


def where(event: AnyEvent) -> str:
    """A short human description of where an event happened, for handoff context."""
    if isinstance(event, PageView):
        return event.path
    if isinstance(event, FormSubmission):
        return f"form {event.form_id} ({event.form_type})"
    if isinstance(event, TrialEvent):
        return f"trial {event.action}"
    if isinstance(event, WebinarEvent):
        return f"webinar {event.webinar_id} ({event.action})"
    return ""


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: EngagementRule
    lam: float  # decay rate per second
    patterns: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class CompiledModel:
    """The model with patterns lower-cased, rules indexed by event type and decay rates ready."""

    model: ScoringModel
    rules_by_type: dict[str, tuple[CompiledRule, ...]]
    rules_by_name: dict[str, CompiledRule]
    nurture_by_type: dict[str, tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]], ...]]
    seniority: tuple[tuple[re.Pattern[str], str], ...]


def _patterns(match: Match) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(sorted(match.patterns().items()))


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
        compiled = CompiledRule(rule, rate(model.family_of(rule).half_life_days * DAY_S), _patterns(rule.when))
        rules_by_type.setdefault(rule.when.type, []).append(compiled)
        by_name[rule.name] = compiled
    nurture: dict[str, list[tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]]] = {}
    for signal in model.nurture_signals:
        nurture.setdefault(signal.when.type, []).append((signal.name, _patterns(signal.when)))
    return CompiledModel(
        model=model,
        rules_by_type={k: tuple(v) for k, v in rules_by_type.items()},
        rules_by_name=by_name,
        nurture_by_type={k: tuple(v) for k, v in nurture.items()},
        seniority=tuple((re.compile(p.pattern, re.IGNORECASE), p.level) for p in model.seniority_from_title),
    )


def _matches(patterns: tuple[tuple[str, tuple[str, ...]], ...], props: dict[str, str]) -> bool:
    return all(any(fnmatchcase(props.get(name, ""), p) for p in options) for name, options in patterns)


def matching_rules(compiled: CompiledModel, event_type: str, props: dict[str, str]) -> list[CompiledRule]:
    return [r for r in compiled.rules_by_type.get(event_type, ()) if _matches(r.patterns, props)]


def matching_nurture(compiled: CompiledModel, event_type: str, props: dict[str, str]) -> list[str]:
    return [name for name, pats in compiled.nurture_by_type.get(event_type, ()) if _matches(pats, props)]
