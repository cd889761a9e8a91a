"""Hypothesis properties of the scoring core: order-free, monotone decay, caps, naive equality."""

from __future__ import annotations

import math
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from leadstream.config.loader import load_model
from leadstream.scoring import ContactState, compile_model, score
from leadstream.scoring.decay import add, rate, value
from leadstream.scoring.engagement import engagement
from leadstream.scoring.engine import add_recent
from leadstream.scoring.events import address_domain
from leadstream.scoring.fit import evaluate_fit
from leadstream.scoring.lifecycle import PREDICTION_HORIZON_S, PREDICTION_PRECISION_S, predict_below
from tests.factories import T0, form, page, parse, trial, webinar

MODEL = load_model()
COMPILED = compile_model(MODEL)
DAY = 86_400.0

paths = st.sampled_from(["/pricing", "/plans/pro", "/case-studies/a", "/careers", "/blog/x", "/"])
offsets = st.floats(min_value=0, max_value=200, allow_nan=False)


@st.composite
def events(draw: st.DrawFn) -> dict:
    day = draw(offsets)
    when = (T0 + timedelta(days=day)).isoformat()
    kind = draw(st.sampled_from(["page", "form", "trial", "webinar"]))
    if kind == "page":
        return page("c", draw(paths), when)
    if kind == "form":
        return form("c", draw(st.sampled_from(["demo_request", "unsubscribe", "newsletter"])), when)
    if kind == "trial":
        return trial("c", draw(st.sampled_from(["signup", "activated"])), when)
    return webinar("c", draw(st.sampled_from(["registered", "attended", "asked_question"])), when)


def run(history: list[dict]) -> ContactState:
    state = ContactState("c")
    for raw in history:
        event = parse(raw)
        state = score(state, event, MODEL, max(state.clock, event.occurred_at.timestamp())).state
    return state


def naive_engagement(history: list[dict], now: float) -> float:
    """Recompute from the full history, the slow obvious way."""
    total = 0.0
    for rule in MODEL.engagement_rules:
        lam = rate(MODEL.families[rule.family].half_life_days * DAY)
        times = sorted(
            parse(e).occurred_at.timestamp()
            for e in history
            if any(r.rule.name == rule.name for r in _matching(parse(e)))
        )
        raw = 0.0
        for i, t in enumerate(times):
            if rule.frequency is not None:
                window = rule.frequency.within_days * DAY
                if sum(1 for u in times[: i + 1] if t - u <= window) < rule.frequency.min_count:
                    continue
            raw += rule.points * math.exp(-lam * (now - t))
        if times:
            total += max(-rule.cap, min(rule.cap, raw)) if rule.cap else raw
    return total


def _matching(event):
    from leadstream.scoring.signals import matching_rules, properties

    return matching_rules(COMPILED, event.type, properties(event))


@settings(max_examples=200, deadline=None)
@given(st.lists(events(), min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_order_does_not_matter(history, rnd):
    shuffled = list(history)
    rnd.shuffle(shuffled)
    now = T0.timestamp() + 210 * DAY
    a, _ = engagement(COMPILED, run(history), now)
    b, _ = engagement(COMPILED, run(shuffled), now)
    assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(events(), min_size=1, max_size=12))
def test_equals_naive_recomputation(history):
    now = T0.timestamp() + 210 * DAY
    fast, _ = engagement(COMPILED, run(history), now)
    assert math.isclose(fast, naive_engagement(history, now), rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(events(), min_size=1, max_size=12), st.floats(0, 100), st.floats(0.001, 100))
def test_each_rule_decays_monotonically_toward_zero(history, start, step):
    state = run(history)
    t1 = state.clock + start * DAY
    t2 = t1 + step * DAY
    _, early = engagement(COMPILED, state, t1)
    _, late = engagement(COMPILED, state, t2)
    for name in early:
        assert abs(late[name]) <= abs(early[name]) + 1e-12


@settings(max_examples=200, deadline=None)
@given(st.lists(events(), min_size=1, max_size=30))
def test_caps_hold(history):
    state = run(history)
    _, parts = engagement(COMPILED, state, state.clock)
    for name, part in parts.items():
        cap = COMPILED.rules_by_name[name].rule.cap
        assert cap is None or abs(part) <= cap + 1e-9


@given(
    st.lists(st.tuples(st.floats(-1000, 1000), st.floats(0, 5e8)), min_size=1, max_size=40),
    st.floats(1, 1e8),
)
def test_forward_decay_matches_direct_sum_even_across_rebases(contributions, half_life):
    lam = rate(half_life)
    landmark, scaled = contributions[0][1], contributions[0][0]
    for points, when in contributions[1:]:
        landmark, scaled = add(landmark, scaled, points, when, lam)
    now = max(w for _, w in contributions)
    direct = sum(p * math.exp(-lam * (now - w)) for p, w in contributions)
    magnitude = sum(abs(p) for p, _ in contributions)
    assert math.isclose(
        value(landmark, scaled, now, lam), direct, rel_tol=1e-9, abs_tol=1e-9 * magnitude + 1e-12
    )


def test_half_life_halves():
    lam = rate(14 * DAY)
    assert math.isclose(value(0.0, 30.0, 14 * DAY, lam), 15.0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(events(), min_size=1, max_size=12),
    st.lists(st.floats(min_value=0, max_value=400, allow_nan=False), min_size=1, max_size=5),
)
def test_engagement_curve_equals_engagement_bit_for_bit(history, days):
    """The decay-crossing bisection evaluates a precomputed curve; a timer fired at the predicted
    time re-checks with engagement(), so the two must agree exactly, not approximately."""
    from leadstream.scoring.engagement import engagement_curve

    state = run(history)
    curve = engagement_curve(COMPILED, state.rules)
    for day in days:
        now = T0.timestamp() + day * DAY
        assert curve(now) == engagement(COMPILED, state, now)[0]


@settings(max_examples=200, deadline=None)
@given(st.lists(events(), min_size=1, max_size=12), st.sampled_from([25.0, 60.0, 90.0]))
def test_the_predicted_decay_is_the_moment_engagement_falls_below_the_bar(history, bar):
    """The decay timer's time: engagement is below the bar then and was not a millisecond
    before (a crossing, found to its precision), or it is below already. Every family's half-life
    is at most 60 days, so a dozen events decay below any of these bars within the horizon."""
    state = run(history)
    now = state.clock
    when = predict_below(COMPILED, state, now, bar)
    assert when is not None and now <= when < now + PREDICTION_HORIZON_S
    assert engagement(COMPILED, state, when)[0] < bar
    if when > now:
        # A millisecond before, or at ``now`` when the crossing is within a millisecond of it:
        # before ``now`` the curve is no part of the contact's past (events at ``now`` are in it).
        assert engagement(COMPILED, state, max(now, when - PREDICTION_PRECISION_S))[0] >= bar


@given(
    st.dictionaries(
        st.text(alphabet=st.sampled_from("/abcAB-_é\u00ff\u4e00"), min_size=1, max_size=6),
        st.integers(min_value=1, max_value=3),
        min_size=1,
        max_size=12,
    )
)
def test_the_page_dropped_from_top_pages_is_the_least_visited_then_alphabetically_last(pages):
    from leadstream.scoring.engine import least_visited

    # The definition: one key over every page (fewest visits, then the characters reversed).
    expected = min(pages.items(), key=lambda kv: (kv[1], [-ord(c) for c in kv[0]]))[0]
    assert least_visited(pages) == expected


def _globs_say(event_type: str, props: dict[str, str]) -> list[str]:
    """The rules whose every property matches one of its globs: matching's definition."""
    from fnmatch import fnmatchcase

    return [
        rule.name
        for rule in MODEL.engagement_rules
        if rule.when.type == event_type
        and all(
            any(fnmatchcase(props.get(name, ""), glob) for glob in globs)
            for name, globs in rule.when.patterns().items()
        )
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(events(), st.builds(lambda p: page("c", "/" + p, T0.isoformat()), st.text()))))
def test_rule_matching_is_the_rules_globs_however_often_a_value_was_seen(history):
    """Matching remembers each pattern's answer for each value it saw: whatever was matched
    before, and in whatever order, a rule matches when every property matches one of its globs."""
    from leadstream.scoring.signals import matching_rules, properties

    for raw in history + history[::-1]:  # each value again: the second time from the answers kept
        event = parse(raw)
        props = properties(event)
        assert [r.rule.name for r in matching_rules(COMPILED, event.type, props)] == _globs_say(
            event.type, props
        )


_TRAIT_VALUES = {
    "first_name": st.text(min_size=1, max_size=8),
    "job_title": st.sampled_from(["VP Marketing", "engineer", "  Head of Ops "]),
    "department": st.sampled_from(["marketing", "it"]),
    "country": st.sampled_from(["DE", "US"]),
    "industry": st.sampled_from(["software", "retail"]),
    "employees": st.integers(0, 10_000_000),
    "annual_revenue": st.integers(0, 10**12),
    "company_stage": st.sampled_from(["seed", "public"]),
}


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({}, optional=_TRAIT_VALUES))
def test_an_identify_sets_the_traits_it_carries_except_the_names(traits):
    """The engine reads an identify's traits field by field: what it keeps is what the model
    dumps without the unset ones, less first and last name (kept out of Redis)."""
    from pydantic import TypeAdapter

    from leadstream.schemas.events import Event
    from tests.factories import identify

    raw = identify("c", T0.isoformat(), "a@example.com", **traits)
    event = parse(raw)
    state = score(ContactState("c"), event, MODEL, event.occurred_at.timestamp()).state
    expected = TypeAdapter(Event).validate_python(raw).traits.model_dump(exclude_none=True)
    expected.pop("first_name", None)
    assert state.traits == expected


def test_rule_matching_stays_right_past_the_answers_it_keeps():
    """Each pattern keeps a bounded number of answers (signals.ANSWERS_LIMIT) and starts over
    when full: with more distinct values than that, every value still matches as its globs say."""
    from leadstream.scoring.signals import ANSWERS_LIMIT, matching_rules, properties

    paths = [f"/{'pricing' if i % 3 else 'blog'}/{i}" for i in range(ANSWERS_LIMIT * 2 + 7)]
    for path in paths + paths[:50]:
        props = properties(parse(page("c", path, T0.isoformat())))
        assert [r.rule.name for r in matching_rules(COMPILED, "page_view", props)] == _globs_say(
            "page_view", props
        )
    assert _globs_say("page_view", properties(parse(page("c", "/pricing/1", T0.isoformat()))))  # not vacuous


@given(
    st.lists(st.integers(0, 20), max_size=16).map(sorted),
    st.floats(min_value=-1, max_value=21, allow_nan=False),
)
def test_the_firmographics_version_at_a_time_is_the_last_one_from_before_it(times, at):
    """What bisect_right over the versions' times gives: the last version valid at ``at`` (of
    two from the same moment, the later in the list), None before the first."""
    from bisect import bisect_right

    from leadstream.scoring.firmographics import version_at

    versions = [(float(t), {"n": i}, None) for i, t in enumerate(times)]
    index = bisect_right([v[0] for v in versions], at)
    assert version_at(versions, at) == (versions[index - 1][1] if index else None)


_FIT_STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("trait"),
            st.sampled_from(["job_title", "industry", "employees", "country"]),
            st.sampled_from(["VP Marketing", "Intern", "software", "retail", 250, 12_000, "US"]),
        ),
        st.tuples(
            st.just("email"), st.sampled_from(["a@acme.io", "b@gmail.com", "c@example.com"]), st.none()
        ),
        st.tuples(
            st.just("firmographics"),
            st.sampled_from(["industry", "employees", "region"]),
            st.sampled_from([None, "software", "retail", 40, 5_000, "EMEA"]),
        ),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(_FIT_STEPS)
def test_a_remembered_fit_is_the_fit_of_the_contact_as_it_is_now(steps):
    """Fit is remembered between events; traits and firmographics changed in place, an email
    changed or a version replaced must each give the fit evaluated afresh."""
    state = ContactState("c")
    firmographics: dict = {}
    for kind, name, given_value in steps:
        if kind == "trait":
            state.traits[name] = given_value
        elif kind == "email":
            state.email = name
        elif given_value is None:
            firmographics.pop(name, None)
        else:
            firmographics[name] = given_value
        remembered = evaluate_fit(COMPILED, state, firmographics)
        fresh = evaluate_fit(
            COMPILED, ContactState("c", email=state.email, traits=dict(state.traits)), dict(firmographics)
        )
        assert (remembered.score, remembered.breakdown, remembered.disqualified_by) == (
            fresh.score,
            fresh.breakdown,
            fresh.disqualified_by,
        )


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.emails(), st.sampled_from(["A@Example.COM", " b@x.io ", "x@a@b.co"])))
def test_the_compiled_core_reads_an_events_email_domain_as_the_event_gives_it(email):
    from pydantic import TypeAdapter, ValidationError

    from leadstream.schemas.events import Event

    try:
        model = TypeAdapter(Event).validate_python(page("c", "/", T0.isoformat(), email=email))
    except ValidationError:
        return  # not an address the schema takes: no event to read
    assert address_domain(model.email) == model.email_domain
    assert parse(page("c", "/", T0.isoformat(), email=email)).email_domain == model.email_domain


_SIGNALS = st.tuples(
    st.sampled_from([0.0, 1.5, 2.0, 1e9, 1e9 + 0.001]),
    st.sampled_from(["demo", "pricing", "Pricing", "trial", "é"]),
    st.sampled_from(["page_view", "form_submission"]),
    st.text(max_size=3),
    st.booleans(),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_SIGNALS, max_size=12), st.lists(st.lists(_SIGNALS, max_size=4), max_size=6))
def test_recent_signals_are_in_the_order_a_stable_sort_gives(held, added):
    """A signal is put in its place (newest first, then by rule name, after equal ones), as the
    list sorted again with it appended would have it."""
    recent = sorted(held, key=lambda s: (-s[0], s[1]))
    expected = list(recent)
    for signals in added:
        for signal in signals:
            add_recent(recent, signal)
        expected = sorted(expected + signals, key=lambda s: (-s[0], s[1]))
        assert recent == expected
