"""Engagement: each rule's decayed contribution at a given time, and their sum."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from leadstream.scoring import decay
from leadstream.scoring.signals import CompiledModel, CompiledRule
from leadstream.scoring.state import ContactState, RuleState

__all__ = [
    "FREQUENCY_HISTORY",
    "add_match",
    "engagement",
    "engagement_curve",
    "merge_rules",
    "rule_value",
    "rules_engagement",
]

FREQUENCY_HISTORY: Final = 16  # match times kept per frequency rule


def add_match(compiled_rule: CompiledRule, rule_state: RuleState, at: float) -> None:
    """Record one match of the rule at event time ``at`` (mutates ``rule_state``)."""
    rule_state.count += 1
    rule_state.last_at = max(rule_state.last_at, at)
    if compiled_rule.window_s is not None:
        times = rule_state.times
        times.append(at)
        times.sort()
        del times[:-FREQUENCY_HISTORY]
        return
    if rule_state.count == 1:
        rule_state.landmark, rule_state.scaled = at, compiled_rule.points
    else:
        rule_state.landmark, rule_state.scaled = decay.add(
            rule_state.landmark, rule_state.scaled, compiled_rule.points, at, compiled_rule.lam
        )


def rule_value(compiled_rule: CompiledRule, rule_state: RuleState, now: float) -> float:
    """The rule's contribution at ``now``: decayed, then clamped to its cap."""
    if compiled_rule.window_s is None:
        raw = decay.value(rule_state.landmark, rule_state.scaled, now, compiled_rule.lam)
    else:
        raw = _frequency_value(compiled_rule, rule_state.times, now)
    cap = compiled_rule.cap
    if cap is not None:
        raw = max(-cap, min(cap, raw))
    return raw


def _frequency_value(compiled_rule: CompiledRule, times: list[float], now: float) -> float:
    """Naive sum over matches that were at least the min_count-th within the window."""
    window = compiled_rule.window_s
    assert window is not None
    need, points, lam = compiled_rule.min_count, compiled_rule.points, compiled_rule.lam
    total, first = 0.0, 0  # times are sorted: those within the window before ``at`` are contiguous
    for i, at in enumerate(times):
        while at - times[first] > window:
            first += 1
        if i - first + 1 >= need:
            total += decay.decayed(points, at, now, lam)
    return total


def engagement(compiled: CompiledModel, state: ContactState, now: float) -> tuple[float, dict[str, float]]:
    """Total engagement at ``now`` and each rule's part of it."""
    return rules_engagement(compiled, state.rules, now)


def rules_engagement(
    compiled: CompiledModel, rules: dict[str, RuleState], now: float
) -> tuple[float, dict[str, float]]:
    # The hottest loop of the engine (every event, every account member): rule_value inlined,
    # and math.exp called by its name (compiled, that is the C function; through a local
    # variable it is a generic call). The total is added up here, in the same order sum() would
    # (a sum() of the dict's values is a lookup of the builtin and a generic call).
    by_name = compiled.rules_by_name
    parts = {}
    total = 0.0
    for name, rule_state in rules.items():
        compiled_rule = by_name.get(name)
        if compiled_rule is None:
            continue  # a rule removed from the model no longer counts
        if compiled_rule.window_s is None:
            raw = rule_state.scaled * math.exp(-compiled_rule.lam * (now - rule_state.landmark))
        else:
            raw = _frequency_value(compiled_rule, rule_state.times, now)
        cap = compiled_rule.cap
        if cap is not None:
            raw = max(-cap, min(cap, raw))
        parts[name] = raw
        total += raw
    return total, parts


def engagement_curve(compiled: CompiledModel, rules: dict[str, RuleState]) -> Callable[[float], float]:
    """Total engagement as a function of time, for the same rule states evaluated at many times
    (the search that predicts a decay crossing): the per-rule lookups are done once. Gives
    exactly ``rules_engagement(...)[0]``, bit for bit: the same terms, added in the same order."""
    plain: list[tuple[float, float, float]] = []  # (rate, landmark, scaled) of uncapped sums
    general: list[tuple[int, CompiledRule, RuleState]] = []  # position among the terms, rule
    for name, rule_state in rules.items():
        compiled_rule = compiled.rules_by_name.get(name)
        if compiled_rule is None:
            continue  # a rule removed from the model no longer counts
        if compiled_rule.window_s is None and compiled_rule.cap is None:
            plain.append((compiled_rule.lam, rule_state.landmark, rule_state.scaled))
        else:
            general.append((len(plain) + len(general), compiled_rule, rule_state))
    if not general:
        return lambda now: sum(scaled * math.exp(-lam * (now - landmark)) for lam, landmark, scaled in plain)

    def at(now: float) -> float:
        values = [scaled * math.exp(-lam * (now - landmark)) for lam, landmark, scaled in plain]
        for position, compiled_rule, rule_state in general:
            values.insert(position, rule_value(compiled_rule, rule_state, now))
        return sum(values)

    return at


def merge_rules(target: dict[str, RuleState], source: dict[str, RuleState], compiled: CompiledModel) -> None:
    """Add ``source``'s matches into ``target`` exactly, keeping their original event times.

    Forward-decayed sums add once scaled to a common landmark; frequency rules merge their times.
    """
    for name, theirs in source.items():
        ours = target.get(name)
        if ours is None:
            target[name] = RuleState(
                theirs.landmark, theirs.scaled, theirs.count, theirs.last_at, list(theirs.times)
            )
            continue
        compiled_rule = compiled.rules_by_name.get(name)
        if theirs.times or ours.times:
            ours.times = sorted(ours.times + theirs.times)[-FREQUENCY_HISTORY:]
        elif compiled_rule is not None:
            landmark = max(ours.landmark, theirs.landmark)
            ours.scaled = decay.value(ours.landmark, ours.scaled, landmark, compiled_rule.lam) + decay.value(
                theirs.landmark, theirs.scaled, landmark, compiled_rule.lam
            )
            ours.landmark = landmark
        ours.count += theirs.count
        ours.last_at = max(ours.last_at, theirs.last_at)
