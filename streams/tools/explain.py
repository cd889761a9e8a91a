"""``leadstream explain CONTACT``: a contact's live score breakdown from Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import IO

from leadstream.bootstrap import redis_store
from leadstream.config.model import ScoringModel
from leadstream.config.settings import Settings
from leadstream.engine.outbox import EntryKind, is_kind
from leadstream.scoring import ContactState, compile_model
from leadstream.scoring.accounts import view_account
from leadstream.scoring.engagement import engagement
from leadstream.scoring.fit import evaluate_fit
from leadstream.scoring.signals import seniority
from leadstream.state.aliases import resolve_aliases
from leadstream.state.keys import account_key, contact_key, record_id
from leadstream.state.port import StoredRecord, decode_account, decode_state

__all__ = ["describe", "explain", "explain_account"]


async def _load_contact(settings: Settings, contact_id: str) -> tuple[str, StoredRecord]:
    """A contact's record, following aliases (a stitched profile points at its contact)."""
    prefix = settings.redis_key_prefix
    records: dict[str, StoredRecord] = {}
    routes = await resolve_aliases(redis_store(settings), prefix, [contact_id], records)
    key = contact_key(prefix, routes[contact_id])
    return key, records[key]


async def _load_account(settings: Settings, domain: str) -> StoredRecord:
    key = account_key(settings.redis_key_prefix, domain)
    return (await redis_store(settings).load([key]))[key]


def explain(
    settings: Settings, model: ScoringModel, contact_id: str, at: datetime | None, out: IO[str]
) -> int:
    key, stored = asyncio.run(_load_contact(settings, contact_id))
    if stored.value is None:
        print(
            f"no state for contact {contact_id!r} under key prefix {settings.redis_key_prefix!r} "
            "(unknown, expired, or keyed as email:<address> / anon:<id>)",
            file=out,
        )
        return 1
    if record_id(key) != contact_id:
        print(f"{contact_id} was stitched into {key}; showing that contact\n", file=out)
    print(
        describe(decode_state(stored.value), model, (at or datetime.now(UTC)).timestamp(), stored), file=out
    )
    return 0


def explain_account(
    settings: Settings, model: ScoringModel, domain: str, at: datetime | None, out: IO[str]
) -> int:
    stored = asyncio.run(_load_account(settings, domain))
    if stored.value is None or model.accounts is None:
        print(
            f"no state for account {domain!r} (unknown, expired, or accounts are off in the model)", file=out
        )
        return 1
    account = decode_account(stored.value, stored.parts)
    now = (at or datetime.now(UTC)).timestamp()
    view = view_account(compile_model(model), account, now)
    rule = view.rule
    lines = [
        f"account {account.domain}  id {account.account_id or '-'}",
        f"firmographics {account.firmographics or '-'}",
        f"buying-group rule {rule.name!r}; scores at {_when(now)}",
        f"fit {view.fit:.1f} / bar {rule.account_fit_at_least:g}   "
        f"engagement {view.engagement:.1f} / bar {rule.account_engagement_at_least or '-'}",
        f"engaged contacts {sum(m.engaged for m in view.members)} / need {rule.min_engaged_contacts}   "
        f"roles {', '.join(view.roles_covered) or '-'} ({len(view.roles_covered)} / need {rule.min_roles})",
        f"qualifies now: {'yes (' + str(view.reason) + ')' if view.qualifies else 'no'}; "
        f"buying-group handoffs so far: {account.qualified_count}",
        "",
    ]
    for member in view.members:
        flag = "engaged" if member.engaged else "       "
        snapshot = member.snapshot
        lines.append(f"  {flag}  {member.engagement:7.1f}  {snapshot.contact_id:<20} {snapshot.role or '-'}")
    print("\n".join(lines), file=out)
    return 0


def describe(state: ContactState, model: ScoringModel, now: float, stored: StoredRecord | None = None) -> str:
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
    pending = [e for e in (stored.outbox if stored else {}) if is_kind(e, EntryKind.HANDOFF)]
    if pending:
        lines.append(f"  handoffs decided, not yet confirmed published: {', '.join(pending)}")
    if state.linked:
        lines.append(f"  stitched profiles: {', '.join(state.linked)}")
    return "\n".join(lines)


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="seconds")


def _gap(value: float, bar: float) -> str:
    return "clears the bar" if value >= bar else f"{bar - value:.1f} short"
