"""The explain breakdown (pure part): re-arming in words, and what a contact's JSON carries."""

from __future__ import annotations

from datetime import UTC, datetime

from leadstream.config.loader import load_model
from leadstream.scoring.engine import DAY_S
from leadstream.scoring.state import ContactState, RuleState
from leadstream.tools.explain import Scored, contact_breakdown, render_contact

MODEL = load_model()
REARM = MODEL.thresholds.rearm
T0 = 1_790_000_000.0


def handed_off(stage: str = "lead", dipped: bool = False) -> ContactState:
    state = ContactState("c-1", email="ana@acme.io", company_domain="acme.io", stage=stage)
    state.rules["demo_request"] = RuleState(landmark=T0, scaled=65.0, count=1, last_at=T0)
    state.clock = T0
    state.mql_count, state.last_mql_at, state.dipped_since_mql = 1, T0, dipped
    return state


def breakdown(state: ContactState, at: float) -> dict:
    return contact_breakdown(state, MODEL, Scored(at, "requested"))


def test_a_contact_still_hot_is_not_re_armed_and_says_why():
    mql = breakdown(handed_off(), T0 + 60)["mql"]
    assert mql["armed"] is False
    assert f"stayed at or above {REARM.engagement_below:g}" in mql["armed_reason"]


def test_a_contact_decayed_far_below_the_band_after_the_cooldown_is_re_armed():
    later = T0 + (REARM.cooldown_days + 365) * DAY_S
    b = breakdown(handed_off(), later)
    assert b["engagement"]["score"] < REARM.engagement_below
    assert b["mql"]["armed"] is True and "has decayed to" in b["mql"]["armed_reason"]


def test_the_cooldown_holds_a_dipped_contact_back_until_its_date():
    b = breakdown(handed_off(dipped=True), T0 + 1)
    assert b["mql"]["armed"] is False and b["mql"]["armed_reason"].startswith("cooling down: re-arms on ")


def test_a_contact_with_sales_is_not_re_armed_whatever_its_score():
    later = T0 + (REARM.cooldown_days + 365) * DAY_S
    b = breakdown(handed_off(stage="sales_accepted", dipped=True), later)
    assert b["mql"]["armed"] is False and "stage 'sales_accepted'" in b["mql"]["armed_reason"]


def test_the_breakdown_names_the_stage_and_the_time_it_scores_at():
    b = breakdown(handed_off(stage="mql"), T0 + DAY_S)
    assert b["stage"] == "mql" and b["account_domain"] == "acme.io"
    day_after = datetime.fromtimestamp(T0 + DAY_S, tz=UTC).isoformat()
    assert b["scored_at"] == day_after
    assert b["last_event_at"] == datetime.fromtimestamp(T0, tz=UTC).isoformat()
    text = render_contact(b)
    assert "stage mql" in text and f"scores at {day_after} (as asked" in text
    assert [r["rule"] for r in b["engagement"]["rules"]] == ["demo_request"]
