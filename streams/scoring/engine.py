"""The functional core: ``score(state, event, model, now) -> Decision``. No I/O, no clock.

``now`` is event time: the caller passes the later of the event's time and the contact's clock,
so the same events give the same decisions whether they stream live or are replayed.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from leadstream.config.model import ScoringModel
from leadstream.schemas import events as schema
from leadstream.schemas.events import url_path
from leadstream.scoring.accounts import account_of
from leadstream.scoring.engagement import add_match, engagement
from leadstream.scoring.epoch import epoch
from leadstream.scoring.events import AnyEvent, FormSubmission, Identify, PageView, SalesOutcome, core_event
from leadstream.scoring.firmographics import FirmographicsAsOf
from leadstream.scoring.fit import coerce_trait, evaluate_fit
from leadstream.scoring.handoff import build_mql_handoff
from leadstream.scoring.ids import uuid5_text
from leadstream.scoring.lifecycle import fire, on_mql, sales_outcome, transition, watch_decay
from leadstream.scoring.signals import (
    CompiledModel,
    compile_model,
    matching_nurture,
    matching_rules,
    properties,
    where,
)
from leadstream.scoring.state import (
    RECENT_EVENT_IDS,
    RECENT_SIGNALS,
    TOP_PAGES,
    ContactState,
    RuleState,
)

__all__ = [
    "DAY_S",
    "HANDOFF_NAMESPACE",
    "REQUALIFYING_STAGES",
    "Decision",
    "add_recent",
    "apply",
    "epoch",
    "fire_due",
    "least_visited",
    "mql_handoff_id",
    "reevaluate",
    "score",
]

HANDOFF_NAMESPACE: Final = uuid.UUID("6f1c3a52-3f0e-4b8e-9a57-5c1d2f6e7a10")
# Sales has the lead in the other stages: no new MQL handoff until it comes back to nurture.
REQUALIFYING_STAGES: Final = ("subscriber", "lead", "recycled")
DAY_S: Final = 86_400.0


# __init__ written out: mypyc compiles it, not the one dataclasses generates (see leadstream/native.py)
@dataclass(init=False, slots=True)  # not frozen: built per event, frozen __init__ is ~4x slower
class Decision:
    """What one event did to one contact."""

    state: ContactState
    duplicate: bool
    counted: tuple[str, ...]  # engagement rules that fired
    nurtured: tuple[str, ...]
    engagement: float
    fit: float
    handoff: dict[str, Any] | None  # an MqlHandoff, JSON-ready
    disqualified: bool
    lifecycle: tuple[dict[str, Any], ...]  # transitions and SLA breaches, JSON-ready

    def __init__(
        self,
        state: ContactState,
        duplicate: bool = False,
        counted: tuple[str, ...] = (),
        nurtured: tuple[str, ...] = (),
        engagement: float = 0.0,
        fit: float = 0.0,
        handoff: dict[str, Any] | None = None,
        disqualified: bool = False,
        lifecycle: tuple[dict[str, Any], ...] = (),
    ) -> None:
        self.state = state
        self.duplicate = duplicate
        self.counted = counted
        self.nurtured = nurtured
        self.engagement = engagement
        self.fit = fit
        self.handoff = handoff
        self.disqualified = disqualified
        self.lifecycle = lifecycle


def mql_handoff_id(contact_id: str, model_version: str, qualification_number: int) -> str:
    """Deterministic: the n-th qualification of a contact under a model version."""
    return uuid5_text(HANDOFF_NAMESPACE, f"mql|{contact_id}|{model_version}|{qualification_number}")


def score(
    state: ContactState,
    event: AnyEvent | schema.AnyEvent,
    model: ScoringModel | CompiledModel,
    now: float,
    firmographics: FirmographicsAsOf | Mapping[str, dict[str, Any]] | None = None,
) -> Decision:
    """Apply ``event`` (an event model, as validated from the schema, or the core's copy of one) to
    a copy of ``state``; the input state is left untouched. ``firmographics``: account domain ->
    the values in effect (a mapping holds at every time), or the versioned view as of ``now``."""
    if firmographics is not None and not isinstance(firmographics, FirmographicsAsOf):
        firmographics = FirmographicsAsOf.always(firmographics)
    # ContactState.__deepcopy__ shares its memos (and the compiled model in them) with the copy.
    return apply(copy.deepcopy(state), core_event(event), model, now, firmographics)


def apply(
    state: ContactState,
    event: AnyEvent,
    model: ScoringModel | CompiledModel,
    now: float,
    firmographics: FirmographicsAsOf | None = None,
    decide: bool = True,
    at: float | None = None,
) -> Decision:
    """Like :func:`score`, but mutates ``state`` in place (callers that own a fresh copy), and
    takes the core's copy of an event only (``scoring.events.from_model``).

    ``firmographics``: what the accounts topic said about each account domain, as of the event.
    ``decide=False`` applies the event's inputs only (scores, traits, context): for points whose
    decisions were published before and are not taken again (see timeline.py). ``at``: the
    event's time in epoch seconds, when the caller has it already (it is the timeline key's).
    """
    compiled = model if isinstance(model, CompiledModel) else compile_model(model)
    fingerprint = event.fingerprint
    if fingerprint in state.seen_ids or event.event_id in state.seen_ids:
        return Decision(state, duplicate=True)
    if at is None:
        at = epoch(event.occurred_at)
    # Timers that came due before this event fire first, exactly as the timer service would have
    # fired them: the same events give the same lifecycle whether timers ran live or not.
    lifecycle = fire_due(compiled, state, now) if decide else []
    if type(event) is SalesOutcome:
        if not decide:
            state.seen_ids.append(fingerprint)
            del state.seen_ids[:-RECENT_EVENT_IDS]
            state.clock = max(state.clock, at)
            return Decision(state)
        lifecycle += sales_outcome(compiled, state, event, at)
        state.seen_ids.append(fingerprint)
        del state.seen_ids[:-RECENT_EVENT_IDS]
        state.clock = max(state.clock, at)
        return Decision(state, lifecycle=tuple(lifecycle))
    # Only a contact that qualified before needs the pre-event value (for the re-arm band).
    before = engagement(compiled, state, now)[0] if state.mql_count and decide else 0.0

    _update_identity(state, event)
    props = properties(event)
    rules = matching_rules(compiled, event.type, props)
    nurtured = matching_nurture(compiled, event.type, props)
    for compiled_rule in rules:
        add_match(compiled_rule, state.rules.setdefault(compiled_rule.name, RuleState()), at)
    for name in nurtured:
        state.nurture[name] = state.nurture.get(name, 0) + 1
    _record_context(state, event, at, [r.name for r in rules], nurtured)
    state.seen_ids.append(fingerprint)
    del state.seen_ids[:-RECENT_EVENT_IDS]
    state.clock = max(state.clock, at)
    if state.since is None or at < state.since:
        state.since = at
    counted = tuple(r.name for r in rules)
    if not decide:
        disqualified = evaluate_fit(compiled, state).disqualified_by is not None
        return Decision(state, counted=counted, nurtured=tuple(nurtured), disqualified=disqualified)
    return _decide(
        compiled, state, now, before, counted, tuple(nurtured), firmographics, event.event_id, lifecycle
    )


def reevaluate(
    state: ContactState,
    model: ScoringModel | CompiledModel,
    now: float,
    firmographics: FirmographicsAsOf | None,
    trigger: str,
) -> Decision:
    """Decide again at ``now`` without an event: the contact's fit inputs changed (its account's
    firmographics took a new version at ``now``). Mutates ``state`` like :func:`apply`."""
    compiled = model if isinstance(model, CompiledModel) else compile_model(model)
    lifecycle = fire_due(compiled, state, now)
    before = engagement(compiled, state, now)[0] if state.mql_count else 0.0
    return _decide(compiled, state, now, before, (), (), firmographics, trigger, lifecycle)


def _decide(
    compiled: CompiledModel,
    state: ContactState,
    now: float,
    before: float,
    counted: tuple[str, ...],
    nurtured: tuple[str, ...],
    firmographics: FirmographicsAsOf | None,
    trigger: str,
    lifecycle: list[dict[str, Any]],
) -> Decision:
    """Both bars, re-arming, the handoff and the lifecycle moves, at ``now``."""
    after, parts = engagement(compiled, state, now)
    account = firmographics.get(account_of(compiled, state) or "") if firmographics else None
    fit = evaluate_fit(compiled, state, account)
    if state.mql_count and min(before, after) < compiled.rearm_below:
        state.dipped_since_mql = True
    armed = state.stage in REQUALIFYING_STAGES and (
        state.mql_count == 0
        or (
            state.dipped_since_mql
            and state.last_mql_at is not None
            and now - state.last_mql_at >= compiled.rearm_cooldown_s
        )
    )
    qualifies = (
        fit.disqualified_by is None and fit.score >= compiled.mql_fit and after >= compiled.mql_engagement
    )
    handoff = None
    if armed and qualifies:
        state.mql_count += 1
        state.last_mql_at = now
        state.dipped_since_mql = False
        handoff = build_mql_handoff(
            compiled,
            state,
            fit,
            after,
            parts,
            now,
            handoff_id=mql_handoff_id(state.contact_id, compiled.model.version, state.mql_count),
            triggering_event_id=trigger,
            firmographics=account,
        )
        lifecycle += on_mql(compiled, state, handoff, now)
    elif fit.disqualified_by is not None and state.stage in REQUALIFYING_STAGES:
        moved = transition(compiled, state, "disqualified", f"domain list {fit.disqualified_by}", now)
        lifecycle += [moved] if moved else []
    elif counted and state.stage == "mql":
        watch_decay(compiled, state, now)  # engagement changed: when does the open MQL fall below?
    return Decision(
        state,
        counted=counted,
        nurtured=nurtured,
        engagement=after,
        fit=fit.score,
        handoff=handoff,
        disqualified=fit.disqualified_by is not None,
        lifecycle=tuple(lifecycle),
    )


def fire_due(compiled: CompiledModel, state: ContactState, now: float) -> list[dict[str, Any]]:
    """Fire, in time order, every timer of ``state`` due at or before ``now``."""
    fired: list[dict[str, Any]] = []
    if not state.timers:
        return fired  # most contacts: no MQL open, nothing scheduled
    for _ in range(64):  # an SLA step may schedule the next one, also already due
        due = sorted((when, kind) for kind, when in state.timers.items() if when <= now)
        if not due:
            break
        when, kind = due[0]
        fired += fire(compiled, state, kind, when)
    return fired


def _update_identity(state: ContactState, event: AnyEvent) -> None:
    if event.email:
        state.email = event.email
        state.email_display = event.email_display
    if event.company_domain:
        state.company_domain = event.company_domain
    if type(event) is Identify:
        for name, trait in event.traits.given:
            if name in ("first_name", "last_name"):
                continue  # first and last name: not needed for scoring; kept out of Redis
            state.traits[name] = trait
    elif type(event) is FormSubmission:
        for name, raw in event.fields.items():
            value = coerce_trait(name, raw)
            if value is not None:
                state.traits[name] = value


def add_recent(
    recent: list[tuple[float, str, str, str, bool]], signal: tuple[float, str, str, str, bool]
) -> None:
    """Put ``signal`` in its place among the recent signals: newest first, then by rule name, after
    those of the same time and name (where a stable sort of the list with it appended puts it).
    A new event's signals are the newest nearly always, so the scan stops at once; sorting the
    list with a key function after each event cost a call per signal held."""
    at, name = signal[0], signal[1]
    place = 0
    for held in recent:
        if held[0] < at or (held[0] == at and held[1] > name):
            break
        place += 1
    recent.insert(place, signal)


def least_visited(pages: dict[str, int]) -> str:
    """The page to drop from the top pages: the least visited; among ties, the alphabetically
    last (by code point, a prefix before the longer path). The characters are compared only among
    the ties."""
    fewest = min(pages.values())
    ties = [p for p, n in pages.items() if n == fewest]
    return ties[0] if len(ties) == 1 else min(ties, key=lambda p: [-ord(c) for c in p])


def _record_context(
    state: ContactState, event: AnyEvent, at: float, rules: list[str], nurtured: list[str]
) -> None:
    """Keep what a sales rep wants to see: recent signals, top pages, the first touch."""
    first_touch = event.type != "identify" and (state.first_touch is None or at < state.first_touch["at"])
    # Described only when something records it (most events match no rule and touch nothing first).
    place = where(event) if rules or nurtured or first_touch else ""
    for name in rules:
        add_recent(state.recent, (at, name, event.type, place, True))
    for name in nurtured:
        add_recent(state.recent, (at, name, event.type, place, False))
    if rules or nurtured:
        del state.recent[RECENT_SIGNALS:]
    if type(event) is PageView:
        path = url_path(event.url)
        state.pages[path] = state.pages.get(path, 0) + 1
        if len(state.pages) > TOP_PAGES:
            del state.pages[least_visited(state.pages)]  # to stay bounded
    if first_touch:
        context = event.context
        state.first_touch = {
            "at": at,
            "event_type": event.type,
            "where": place,
            **(context.given() if context else {}),
        }
