"""The scoring core's compiled copy of an event holds what pydantic validated, field for field."""

from __future__ import annotations

import typing

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from leadstream.engine.input.decode import parse_event
from leadstream.schemas import events as schema
from leadstream.scoring.state import event_fingerprint
from leadstream.tools.generator import JourneyGenerator, default_start
from tests.factories import T0, at, form, identify, page, trial, webinar

_EVENT: TypeAdapter[typing.Any] = TypeAdapter(schema.Event)
_text = st.none() | st.text(min_size=1, max_size=20).map(str.strip).filter(bool)


def assert_same(model: typing.Any, copy: typing.Any) -> None:
    assert type(copy).__name__ == type(model).__name__
    assert copy.fingerprint == event_fingerprint(model.event_id)  # hashed once, with the copy
    for name in type(model).model_fields:
        held, copied = getattr(model, name), getattr(copy, name)
        if name == "context":
            assert (copied.given() if copied else None) == (
                held.model_dump(exclude_none=True) if held else None
            )
        elif name == "traits":
            assert copied.given == list(held.model_dump(exclude_none=True).items())
        else:
            assert type(copied) is type(held) and copied == held, name


_SAMPLES = {
    "page_view": page("c1", "/p", at(1)),
    "form_submission": form("c1", "demo_request", at(1)),
    "identify": identify("c1", at(1), "a@b.co", job_title="CTO"),
    "trial": trial("c1", "signup", at(1)),
    "webinar": webinar("c1", "attended", at(1)),
    "sales_outcome": {
        "event_id": "e1",
        "type": "sales_outcome",
        "occurred_at": at(1),
        "contact_id": "c1",
        "outcome": "accepted",
    },
}


def test_every_field_of_every_event_model_is_copied():
    """A field added to a schema model and not to its copy fails here."""
    assert set(_SAMPLES) == set(schema.EVENT_TYPES)
    for event in _SAMPLES.values():
        model = _EVENT.validate_python(event)
        copy = parse_event(orjson.dumps(event))
        missing = [name for name in type(model).model_fields if not hasattr(copy, name)]
        assert not missing, f"{type(copy).__name__} lacks {missing}"
        assert_same(model, copy)


def test_generated_journeys_are_copied_exactly():
    events = [e for e in JourneyGenerator(11, 200, start=default_start()).events() if e["type"] != "account"]
    assert {e["type"] for e in events} >= {"page_view", "form_submission", "identify", "trial", "webinar"}
    for event in events:
        raw = orjson.dumps(event)
        assert_same(_EVENT.validate_json(raw), parse_event(raw))


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["page", "form", "identify", "trial", "webinar", "sales"]),
    email=st.none() | st.sampled_from(["Ana@Acme.COM", " b@x.io ", "c@d.co"]),
    domain=st.none() | st.sampled_from(["acme.com", "ACME.io."]),
    context=st.none() | st.fixed_dictionaries({}, optional={"utm_source": _text, "referrer": _text}),
    title=_text,
    traits=st.fixed_dictionaries(
        {},
        optional={
            "job_title": _text,
            "first_name": _text,
            "employees": st.none() | st.integers(0, 10_000_000),
            "country": st.none() | st.sampled_from(["DE", "US"]),
        },
    ),
)
def test_any_event_is_copied_exactly(kind, email, domain, context, title, traits):
    when = at(1)
    if kind == "page":
        event = page("c1", "/pricing?x=1", when, title=title)
    elif kind == "form":
        event = form("c1", "demo_request", when, fields={"job_title": "CTO", "note": "hi"})
    elif kind == "identify":
        event = identify("c1", when, "ana@acme.com", **traits)
    elif kind == "trial":
        event = trial("c1", "signup", when)
    elif kind == "webinar":
        event = webinar("c1", "attended", when)
    else:
        event = {
            "event_id": "e1",
            "type": "sales_outcome",
            "occurred_at": T0.isoformat(),
            "contact_id": "c1",
            "outcome": "accepted",
            "reason": title,
            "handoff_id": "h1",
        }
    if email is not None:
        event["email"] = email
    if domain is not None:
        event["company_domain"] = domain
    if context is not None:
        event["context"] = context
    raw = orjson.dumps(event)
    assert_same(_EVENT.validate_json(raw), parse_event(raw))


def test_score_takes_the_validated_model_or_its_copy_alike():
    """The public ``score`` is handed schema models by callers of the library."""
    from leadstream.config.loader import load_model
    from leadstream.scoring import ContactState, score

    model = load_model()
    for event in (form("c1", "demo_request", at(1)), page("c1", "/pricing", at(1)), *_SAMPLES.values()):
        validated = _EVENT.validate_python(event)
        now = validated.occurred_at.timestamp()
        from_schema = score(ContactState("c1"), validated, model, now)
        from_copy = score(ContactState("c1"), parse_event(orjson.dumps(event)), model, now)
        assert from_schema.state.to_dict() == from_copy.state.to_dict()
        assert from_schema.handoff == from_copy.handoff
