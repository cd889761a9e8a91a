"""``leadstream explain CONTACT``: a contact's live score breakdown from Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import IO

from config.model import ScoringModel
from config.settings import Settings
from streams.bootstrap import redis_store
from streams.scoring import ContactState, compile_model
from streams.scoring.engagement import engagement
from streams.scoring.fit import evaluate_fit, seniority
from streams.state.port import StoredContact


async def _load(settings: Settings, contact_id: str) -> StoredContact:
    return await redis_store(settings).get(contact_id)


def explain(
    settings: Settings, model: ScoringModel, contact_id: str, at: datetime | None, out: IO[str]
) -> int:
    stored = asyncio.run(_load(settings, contact_id))
    if stored.state is None:
        print(
            f"no state for contact {contact_id!r} under key prefix {settings.redis_key_prefix!r} "
            "(unknown, expired, or keyed as email:<address> / anon:<id>)",
            file=out,
        )
        return 1
    print(describe(stored.state, model, (at or datetime.now(UTC)).timestamp(), stored), file=out)
    return 0


def describe(
    state: ContactState, model: ScoringModel, now: float, stored: StoredContact | None = None
) -> str:
    compiled = compile_model(model)
    thresholds = model.thresholds
    fit = evaluate_fit(compiled, state)
    total, parts = engagement(compiled, state, now)
    when = datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="seconds")
    title = state.traits.get("job_title")
    lines = [
        f"contact {state.contact_id}  email {state.email or '-'}  account {state.company_domain or '-'}",
        f"model {model.version}; scores at {when}"
        f" (last event {datetime.fromtimestamp(state.clock, tz=UTC).isoformat(timespec='seconds')})",
        "",
        f"fit {fit.score:.1f} / bar {thresholds.fit:.1f}  ({_gap(fit.score, thresholds.fit)})",
    ]
    lines += [f"  {points:+7.1f}  {rule}" for rule, points in fit.breakdown] or ["     (no fit rule matched)"]
    lines.append(
        f"  seniority from title: {seniority(compiled, title if isinstance(title, str) else None) or '-'}"
    )
    if fit.disqualified_by:
        lines.append(f"  DISQUALIFIED by domain list {fit.disqualified_by!r}: never an MQL")
    lines += [
        "",
        f"engagement {total:.1f} / bar {thresholds.engagement:.1f}  ({_gap(total, thresholds.engagement)})",
    ]
    for name, value in sorted(parts.items(), key=lambda kv: -abs(kv[1])):
        rule_state = state.rules[name]
        rule = compiled.rules_by_name[name].rule
        last = datetime.fromtimestamp(rule_state.last_at, tz=UTC).date()
        lines.append(
            f"  {value:+7.1f}  {name:<24} x{rule_state.count}  last {last}  "
            f"(family {rule.family}, half-life {model.families[rule.family].half_life_days:g} d)"
        )
    if state.nurture:
        lines.append("  nurture only: " + ", ".join(f"{k} x{v}" for k, v in sorted(state.nurture.items())))
    lines += ["", f"MQL handoffs so far: {state.mql_count}"]
    if state.mql_count:
        armed = state.dipped_since_mql
        lines.append(
            f"  re-armed: {'yes' if armed else 'no'} (needs engagement below "
            f"{thresholds.rearm.engagement_below:g} and {thresholds.rearm.cooldown_days:g} d after the last)"
        )
    if stored is not None and stored.outbox:
        lines.append(f"  handoffs decided, not yet confirmed published: {', '.join(stored.outbox)}")
    return "\n".join(lines)


def _gap(value: float, bar: float) -> str:
    return "clears the bar" if value >= bar else f"{bar - value:.1f} short"
