"""A contact's or an account's live score breakdown from Redis: ``leadstream explain`` prints it,
the lookup API (``GET /v1/contacts/{id}``, ``/v1/accounts/{domain}``) serves it as JSON.

Scores are read at the stream's event time (the latest event time the workers published), as the
engine computes them, not at the wall clock: replayed or back-dated events would otherwise show
scores decayed by however long ago they happened.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from leadstream.bootstrap import redis_client
from leadstream.config.model import ScoringModel
from leadstream.config.settings import Settings
from leadstream.engine.outbox import EntryKind, is_kind
from leadstream.schemas.events import normalise_domain
from leadstream.scoring import ContactState, compile_model
from leadstream.scoring.accounts import account_of, view_account
from leadstream.scoring.engagement import engagement
from leadstream.scoring.engine import DAY_S, REQUALIFYING_STAGES
from leadstream.scoring.fit import evaluate_fit
from leadstream.scoring.signals import seniority
from leadstream.scoring.state import AccountState
from leadstream.state.aliases import resolve_aliases
from leadstream.state.keys import account_key, contact_key, contact_keys_start, watermark_key
from leadstream.state.port import StoredRecord, decode_account, decode_state
from leadstream.state.redis_store import RedisStateStore
from leadstream.state.redis_watermarks import stream_clock

__all__ = [
    "Scored",
    "StateReader",
    "account_breakdown",
    "contact_breakdown",
    "explain",
    "explain_account",
    "render_account",
    "render_contact",
]


@dataclass(frozen=True, slots=True)
class Scored:
    """When a breakdown is computed, and why that time: ``requested`` (``--at``), ``stream``
    (the stream's event time) or ``last_event`` (no worker has published progress yet)."""

    at: float
    source: str


class StateReader:
    """Read-only access to scored state; one Redis client for as many lookups as needed."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client = redis_client(settings)
        self._store = RedisStateStore(self._client, int(settings.state_ttl_days * DAY_S))

    async def close(self) -> None:
        await self._client.aclose()

    async def _when(self, at: datetime | None, fallback: float) -> Scored:
        if at is not None:
            return Scored(at.timestamp(), "requested")
        key = watermark_key(self._settings.redis_key_prefix, self._settings.consumer_group)
        clock = await stream_clock(self._client, key)
        if clock is None:
            return Scored(fallback, "last_event")
        return Scored(max(clock, fallback), "stream")

    async def contact(
        self, model: ScoringModel, contact_id: str, at: datetime | None = None
    ) -> dict[str, Any] | None:
        """The contact's breakdown (following aliases: a stitched profile shows its contact), or
        None when Redis holds nothing for it."""
        prefix = self._settings.redis_key_prefix
        records: dict[str, StoredRecord] = {}
        routes = await resolve_aliases(self._store, prefix, [contact_id], records)
        key = contact_key(prefix, routes[contact_id])
        stored = records[key]
        if stored.value is None:
            return None
        state = decode_state(stored.value)
        when = await self._when(at, state.clock)
        out = contact_breakdown(state, model, when, stored)
        if key != contact_key(prefix, contact_id):
            out["stitched_from"] = contact_id
        return out

    async def sample_scores(self, model: ScoringModel, limit: int) -> dict[str, Any]:
        """Fit and engagement of up to ``limit`` known contacts at the stream's event time (a
        SCAN, so a sample on a large keyspace): the distributions the live page draws."""
        compiled = compile_model(model)
        pattern = contact_keys_start(self._settings.redis_key_prefix) + "*"
        keys: list[str] = []
        async for key in self._client.scan_iter(match=pattern, count=1000):
            keys.append(key.decode() if isinstance(key, bytes) else key)
            if len(keys) >= limit:
                break
        stored = await self._store.load(keys) if keys else {}
        states = [decode_state(s.value) for s in stored.values() if s.value is not None]
        # Anonymous and email-only profiles are not contacts the bars apply to yet.
        states = [s for s in states if not s.contact_id.startswith(("anon:", "email:"))]
        when = await self._when(None, max((s.clock for s in states), default=0.0))
        return {
            "scored_at": _iso(when.at) if states else None,
            "fit": [evaluate_fit(compiled, s).score for s in states],
            "engagement": [engagement(compiled, s, when.at)[0] for s in states],
        }

    async def account(
        self, model: ScoringModel, domain: str, at: datetime | None = None
    ) -> dict[str, Any] | None:
        """The account's buying group, or None when Redis holds nothing for it (or accounts are
        off in the model)."""
        key = account_key(self._settings.redis_key_prefix, normalise_domain(domain))  # as keyed
        stored = (await self._store.load([key]))[key]
        if stored.value is None or model.accounts is None:
            return None
        account = decode_account(stored.value, stored.parts)
        when = await self._when(at, account.clock)
        return account_breakdown(account, model, when)


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="seconds")


def _rearm(state: ContactState, model: ScoringModel, score: float, now: float) -> tuple[bool, str]:
    """Whether the contact hands off again once it clears both bars, and why (the engine's rule,
    engine._decide, read at ``now``)."""
    rearm = model.thresholds.rearm
    if state.stage not in REQUALIFYING_STAGES:
        return False, (
            f"stage {state.stage!r}: a contact qualifies again only from {', '.join(REQUALIFYING_STAGES)}"
        )
    if state.mql_count == 0 or state.last_mql_at is None:
        return True, "never handed off: it does as soon as it clears both bars"
    dipped = state.dipped_since_mql or score < rearm.engagement_below
    if not dipped:
        return False, (
            f"engagement has stayed at or above {rearm.engagement_below:g} since the last MQL; "
            "it re-arms once it drops below"
        )
    due = state.last_mql_at + rearm.cooldown_days * DAY_S
    if now < due:
        return False, f"cooling down: re-arms on {_iso(due)} ({rearm.cooldown_days:g} d after the last MQL)"
    how = "dropped" if state.dipped_since_mql else f"has decayed to {score:.1f}"
    return True, f"engagement {how} below {rearm.engagement_below:g} since the last MQL, cooldown over"


def contact_breakdown(
    state: ContactState, model: ScoringModel, when: Scored, stored: StoredRecord | None = None
) -> dict[str, Any]:
    """Everything that makes up the contact's score at ``when``, JSON-ready."""
    compiled = compile_model(model)
    thresholds = model.thresholds
    now = when.at
    fit = evaluate_fit(compiled, state)
    total, parts = engagement(compiled, state, now)
    title = state.traits.get("job_title")
    engagement_rules = []
    for name, value in sorted(parts.items(), key=lambda kv: -abs(kv[1])):
        rule_state = state.rules[name]
        rule = compiled.rules_by_name[name].rule
        engagement_rules.append(
            {
                "rule": name,
                "points": round(value, 3),
                "count": rule_state.count,
                "last_at": _iso(rule_state.last_at),
                "family": rule.family,
                "half_life_days": model.families[rule.family].half_life_days,
            }
        )
    armed, why = _rearm(state, model, total, now)
    pending = [e for e in (stored.outbox if stored else {}) if is_kind(e, EntryKind.HANDOFF)]
    qualifies = fit.disqualified_by is None and fit.score >= thresholds.fit and total >= thresholds.engagement
    return {
        "contact_id": state.contact_id,
        "email": state.email_display or state.email,
        "account_domain": account_of(compiled, state),
        "stage": state.stage,
        "model_version": model.version,
        "scored_at": _iso(now),
        "scored_at_source": when.source,
        "last_event_at": _iso(state.clock) if state.clock else None,
        "fit": {
            "score": round(fit.score, 3),
            "threshold": thresholds.fit,
            "rules": [{"rule": rule, "points": points} for rule, points in fit.breakdown],
            "seniority": seniority(compiled, title if isinstance(title, str) else None),
            "disqualified_by": fit.disqualified_by,
        },
        "engagement": {
            "score": round(total, 3),
            "threshold": thresholds.engagement,
            "rules": engagement_rules,
            "nurture": dict(sorted(state.nurture.items())),
        },
        "qualifies_now": qualifies,
        "mql": {
            "count": state.mql_count,
            "last_at": _iso(state.last_mql_at),
            "armed": armed,
            "armed_reason": why,
            "pending_handoffs": pending,
        },
        "stitched_profiles": list(state.linked),
    }


def account_breakdown(account: AccountState, model: ScoringModel, when: Scored) -> dict[str, Any]:
    """The account's buying group at ``when``, JSON-ready."""
    view = view_account(compile_model(model), account, when.at)
    rule = view.rule
    return {
        "domain": account.domain,
        "account_id": view.firmographics.get("account_id") or account.account_id,
        "firmographics": view.firmographics,
        "model_version": model.version,
        "rule": rule.name,
        "scored_at": _iso(when.at),
        "scored_at_source": when.source,
        "fit": {
            "score": round(view.fit, 3),
            "threshold": rule.account_fit_at_least,
            "rules": [{"rule": n, "points": p} for n, p in view.fit_breakdown],
        },
        "engagement": {"score": round(view.engagement, 3), "threshold": rule.account_engagement_at_least},
        "engaged_contacts": sum(1 for m in view.members if m.engaged),
        "min_engaged_contacts": rule.min_engaged_contacts,
        "roles_covered": list(view.roles_covered),
        "roles_missing": [r for r in rule.roles if r not in view.roles_covered],
        "min_roles": rule.min_roles,
        "qualifies_now": view.qualifies,
        "reason": view.reason,
        "qualified_count": account.qualified_count,
        "last_qualified_at": _iso(account.last_qualified_at),
        "members": [
            {
                "contact_id": m.snapshot.contact_id,
                "role": m.snapshot.role,
                "title": m.snapshot.title,
                "engagement": round(m.engagement, 3),
                "engaged": m.engaged,
                "last_at": _iso(m.snapshot.last_at),
            }
            for m in view.members
        ],
        # Member updates the account holds until the stream's event time passes them (watermarks).
        "pending_members": sorted({s.contact_id for s in account.pending.values()}),
    }


_SOURCES = {
    "requested": "as asked",
    "stream": "the stream's event time",
    "last_event": "its last event; no worker has published progress",
}


def _gap(value: float, bar: float | None) -> str:
    if bar is None:
        return "no bar"
    return "clears the bar" if value >= bar else f"{bar - value:.1f} short"


def render_contact(b: dict[str, Any]) -> str:
    fit, eng, mql = b["fit"], b["engagement"], b["mql"]
    lines = []
    if b.get("stitched_from"):
        lines += [f"{b['stitched_from']} was stitched into {b['contact_id']}; showing that contact", ""]
    lines += [
        f"contact {b['contact_id']}  email {b['email'] or '-'}  account {b['account_domain'] or '-'}",
        f"stage {b['stage']}; model {b['model_version']}; scores at {b['scored_at']} "
        f"({_SOURCES[b['scored_at_source']]}; last event {b['last_event_at'] or '-'})",
        "",
        f"fit {fit['score']:.1f} / bar {fit['threshold']:.1f}  ({_gap(fit['score'], fit['threshold'])})",
    ]
    lines += [f"  {r['points']:+7.1f}  {r['rule']}" for r in fit["rules"]] or ["     (no fit rule matched)"]
    lines.append(f"  seniority from title: {fit['seniority'] or '-'}")
    if fit["disqualified_by"]:
        lines.append(f"  DISQUALIFIED by domain list {fit['disqualified_by']!r}: never an MQL")
    lines += [
        "",
        f"engagement {eng['score']:.1f} / bar {eng['threshold']:.1f}  "
        f"({_gap(eng['score'], eng['threshold'])})",
    ]
    for r in eng["rules"]:
        lines.append(
            f"  {r['points']:+7.1f}  {r['rule']:<24} x{r['count']}  last {r['last_at'][:10]}  "
            f"(family {r['family']}, half-life {r['half_life_days']:g} d)"
        )
    if eng["nurture"]:
        lines.append("  nurture only: " + ", ".join(f"{k} x{v}" for k, v in eng["nurture"].items()))
    lines += [
        "",
        f"MQL handoffs so far: {mql['count']}" + (f" (last {mql['last_at']})" if mql["last_at"] else ""),
        f"  hands off again: {'yes' if mql['armed'] else 'no'} - {mql['armed_reason']}",
    ]
    if mql["pending_handoffs"]:
        lines.append(f"  handoffs decided, not yet confirmed published: {', '.join(mql['pending_handoffs'])}")
    if b["stitched_profiles"]:
        lines.append(f"  stitched profiles: {', '.join(b['stitched_profiles'])}")
    return "\n".join(lines)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    table = [header, *rows]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table]


def render_account(b: dict[str, Any]) -> str:
    fit, eng = b["fit"], b["engagement"]
    firmographics = ", ".join(f"{k} {v}" for k, v in b["firmographics"].items() if k != "account_id")
    bar = eng["threshold"]
    lines = [
        f"account {b['domain']}  account id {b['account_id'] or '-'}",
        f"firmographics: {firmographics or '-'}",
        f"buying-group rule {b['rule']!r}; model {b['model_version']}; scores at {b['scored_at']} "
        f"({_SOURCES[b['scored_at_source']]})",
        f"fit {fit['score']:.1f} / bar {fit['threshold']:g}   "
        f"engagement {eng['score']:.1f} / bar {'-' if bar is None else f'{bar:g}'}",
        f"engaged contacts {b['engaged_contacts']} / need {b['min_engaged_contacts']}   "
        f"roles {', '.join(b['roles_covered']) or '-'} ({len(b['roles_covered'])} / need {b['min_roles']}); "
        f"missing: {', '.join(b['roles_missing']) or '-'}",
        f"qualifies now: {'yes (' + str(b['reason']) + ')' if b['qualifies_now'] else 'no'}; "
        f"buying-group handoffs so far: {b['qualified_count']}",
        "",
    ]
    rows = [
        (
            "yes" if m["engaged"] else "no",
            f"{m['engagement']:.1f}",
            m["contact_id"],
            m["role"] or "-",
            m["title"] or "-",
            (m["last_at"] or "-")[:10],
        )
        for m in b["members"]
    ]
    header = ("ENGAGED", "ENGAGEMENT", "CONTACT", "ROLE", "TITLE", "LAST EVENT")
    lines += _table(header, rows) if rows else ["(no members yet)"]
    if b["pending_members"]:
        lines.append(f"waiting for the stream's event time to pass them: {', '.join(b['pending_members'])}")
    return "\n".join(lines)


async def _read(settings: Settings, read: Any) -> dict[str, Any] | None:
    reader = StateReader(settings)
    try:
        result: dict[str, Any] | None = await read(reader)
        return result
    finally:
        await reader.close()


def _show(found: dict[str, Any] | None, missing: str, render: Any, out: IO[str], as_json: bool) -> int:
    if found is None:
        print(missing, file=out)
        return 1
    print(json.dumps(found, indent=2) if as_json else render(found), file=out)
    return 0


def explain(
    settings: Settings,
    model: ScoringModel,
    contact_id: str,
    at: datetime | None,
    out: IO[str],
    as_json: bool = False,
) -> int:
    found = asyncio.run(_read(settings, lambda r: r.contact(model, contact_id, at)))
    missing = (
        f"no state for contact {contact_id!r} under key prefix {settings.redis_key_prefix!r} "
        "(unknown, expired, or keyed as email:<address> / anon:<id>)"
    )
    return _show(found, missing, render_contact, out, as_json)


def explain_account(
    settings: Settings,
    model: ScoringModel,
    domain: str,
    at: datetime | None,
    out: IO[str],
    as_json: bool = False,
) -> int:
    found = asyncio.run(_read(settings, lambda r: r.account(model, domain, at)))
    missing = f"no state for account {domain!r} (unknown, expired, or accounts are off in the model)"
    return _show(found, missing, render_account, out, as_json)
