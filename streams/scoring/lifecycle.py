"""The lifecycle after the handoff: stage transitions, sales outcomes, SLA and decay timers.

Pure like the rest of the core. Timers are values: a kind and the event time at which it should
fire; the worker indexes them (a Redis sorted set) and calls :func:`fire` when they are due.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from leadstream.scoring.accounts import account_of
from leadstream.scoring.engagement import engagement, engagement_curve
from leadstream.scoring.events import SalesOutcome
from leadstream.scoring.ids import uuid5_text
from leadstream.scoring.signals import CompiledModel, to_json_time
from leadstream.scoring.state import ContactState

__all__ = [
    "HOUR_S",
    "MAX_PREDICTION_STEPS",
    "NAMESPACE",
    "OPEN_MQL",
    "OUTCOME_STAGES",
    "PREDICTION_HORIZON_S",
    "PREDICTION_PRECISION_S",
    "fire",
    "on_mql",
    "predict_below",
    "sales_outcome",
    "transition",
    "watch_decay",
]

NAMESPACE: Final = uuid.UUID("8d4b1f0e-2c6a-4e9b-a7d3-5f1e0c9b8a26")
HOUR_S: Final = 3600.0
PREDICTION_HORIZON_S: Final = 730 * 86_400.0
PREDICTION_PRECISION_S: Final = 0.001
MAX_PREDICTION_STEPS: Final = 100  # regula falsi's steps; it needs ~10, bisection's worst case 36
OUTCOME_STAGES: Final = {
    "accepted": ("sql", "sales accepted"),
    "rejected": ("recycled", "sales rejected"),
    "opportunity_created": ("opportunity", "opportunity created"),
    "closed_won": ("customer", "closed won"),
    "closed_lost": ("recycled", "closed lost"),
}
OPEN_MQL: Final = "mql"


def transition(
    compiled: CompiledModel,
    state: ContactState,
    to_stage: str,
    reason: str,
    at: float,
    handoff_id: str | None = None,
    always: bool = False,
) -> dict[str, Any] | None:
    """Move the contact to ``to_stage`` (in place); the event to publish, or None if already
    there. ``always`` publishes even then: sales feedback is recorded even when it changes no
    stage (a rejection of a lead that had already decayed back to nurture)."""
    if state.stage == to_stage and not always:
        return None
    # A move out of an open MQL (decay), or sales feedback sent without the handoff's id,
    # concerns the latest handoff.
    if handoff_id is None and (state.stage == OPEN_MQL or always):
        handoff_id = state.last_handoff_id
    state.transitions += 1
    # What schemas.lifecycle.LifecycleTransition dumps, built directly (its shape held byte for
    # byte by tests/unit/test_handoff_shape.py): the model and its dump cost more than the move.
    event = {
        "kind": "transition",
        "transition_id": uuid5_text(NAMESPACE, f"t|{state.contact_id}|{state.transitions}"),
        "contact_id": state.contact_id,
        "account_domain": account_of(compiled, state),
        "from_stage": state.stage,
        "to_stage": to_stage,
        "reason": reason,
        "at": to_json_time(at),
        "model_version": compiled.model.version,
        "handoff_id": handoff_id,
    }
    state.stage = to_stage
    if to_stage != OPEN_MQL:
        state.timers.clear()  # the SLA and the decay watch only concern an open MQL
    return event


def sales_outcome(
    compiled: CompiledModel, state: ContactState, event: SalesOutcome, at: float
) -> list[dict[str, Any]]:
    to_stage, reason = OUTCOME_STAGES[event.outcome]
    if event.reason:
        reason = f"{reason}: {event.reason}"
    moved = transition(compiled, state, to_stage, reason, at, event.handoff_id, always=True)
    return [moved] if moved else []


def on_mql(
    compiled: CompiledModel, state: ContactState, handoff: dict[str, Any], at: float
) -> list[dict[str, Any]]:
    """The contact was just handed off: it is an MQL; start its SLA clock and its decay watch."""
    state.last_handoff_id = handoff["handoff_id"]
    moved = transition(
        compiled, state, OPEN_MQL, "qualified: fit and engagement cleared the bar", at, handoff["handoff_id"]
    )
    state.sla_step = 0
    due = datetime.fromisoformat(handoff["follow_up_due_at"]).timestamp()
    steps = compiled.model.lifecycle.sla_escalations
    if steps:
        state.timers["sla"] = due + steps[0].after_due_hours * HOUR_S
    watch_decay(compiled, state, at)
    return [moved] if moved else []


def watch_decay(compiled: CompiledModel, state: ContactState, now: float) -> None:
    """(Re)predict when an open MQL's engagement falls below the bar, and set the timer."""
    if state.stage != OPEN_MQL or not compiled.model.lifecycle.recycle_when_decayed:
        state.timers.pop("decay", None)
        return
    when = predict_below(compiled, state, now, compiled.mql_engagement)
    if when is None:
        state.timers.pop("decay", None)
    else:
        state.timers["decay"] = when


def predict_below(compiled: CompiledModel, state: ContactState, now: float, bar: float) -> float | None:
    """The first time after ``now`` at which engagement is below ``bar``, if within the horizon.

    Between events engagement only decays (negative signals' pull decays too, so a contact with
    strong negative signals may briefly rise; the search then finds a crossing, not always the
    first). The bracket doubles from an hour until it holds the crossing; then regula falsi with
    the Illinois step (a sum of exponentials is smooth: ~10 evaluations where bisection took 32)
    narrows it to a millisecond. The result is engagement's time below the bar, never before it.
    """
    curve = engagement_curve(compiled, state.rules)
    f_low = curve(now) - bar
    if f_low < 0:
        return now
    low, step = now, 3600.0
    while (value := curve(now + step) - bar) >= 0:
        low, f_low = now + step, value
        step *= 2
        if step > PREDICTION_HORIZON_S:
            return None
    high, f_high = now + step, value
    moved = 0  # which end the last step moved: -1 the high one, +1 the low one
    for _ in range(MAX_PREDICTION_STEPS):
        if high - low <= PREDICTION_PRECISION_S:
            break
        guess = high - f_high * (high - low) / (f_high - f_low)
        if not low < guess < high:  # rounding at the bracket's ends: halve it instead
            guess = (low + high) / 2
        value = curve(guess) - bar
        if value < 0:
            high, f_high = guess, value
            if moved == -1:
                f_low /= 2  # the low end stuck twice: weigh it less, so the next step moves it
            moved = -1
        else:
            low, f_low = guess, value
            if moved == 1:
                f_high /= 2  # the high end stuck twice
            moved = 1
    return high


def fire(compiled: CompiledModel, state: ContactState, kind: str, due: float) -> list[dict[str, Any]]:
    """A timer came due. Stale timers (moved or cancelled since) do nothing."""
    if state.timers.get(kind) != due:
        return []
    del state.timers[kind]
    if state.stage != OPEN_MQL:
        return []
    if kind == "decay":
        bar = compiled.mql_engagement
        if engagement(compiled, state, due)[0] >= bar:  # new engagement since: predict again
            watch_decay(compiled, state, due)
            return []
        moved = transition(
            compiled, state, "recycled", "engagement decayed below the MQL bar before sales acted", due
        )
        return [moved] if moved else []
    if kind == "sla":
        return [_sla_breach(compiled, state, due)]
    return []


def _sla_breach(compiled: CompiledModel, state: ContactState, at: float) -> dict[str, Any]:
    steps = compiled.model.lifecycle.sla_escalations
    step = state.sla_step
    handoff_id = _current_handoff_id(compiled, state)
    first_due = at - steps[step].after_due_hours * HOUR_S
    breach = {  # what schemas.lifecycle.SlaBreach dumps (see transition)
        "kind": "sla_breached",
        "breach_id": uuid5_text(NAMESPACE, f"sla|{handoff_id}|{step}"),
        "contact_id": state.contact_id,
        "account_domain": account_of(compiled, state),
        "handoff_id": handoff_id,
        "due_at": to_json_time(first_due),
        "at": to_json_time(at),
        "step": step,
        "escalation": steps[step].escalation,
        "model_version": compiled.model.version,
    }
    state.sla_step = step + 1
    if state.sla_step < len(steps):
        state.timers["sla"] = first_due + steps[state.sla_step].after_due_hours * HOUR_S
    return breach


def _current_handoff_id(compiled: CompiledModel, state: ContactState) -> str:
    if state.last_handoff_id:
        return state.last_handoff_id
    from leadstream.scoring.engine import mql_handoff_id

    # A state written before it kept the id: the id the current model would have given.
    return mql_handoff_id(state.contact_id, compiled.model.version, state.mql_count)
