"""Segment calls as leadstream events (streams/ingest/segment.py): pure, no server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadstream.engine.input.decode import parse_event
from leadstream.ingest.mapping import MappingFileError, load_mapping
from leadstream.ingest.segment import CallRejected, translate, translate_batch

MAPPING = load_mapping()
RECEIVED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def events_of(call, **kwargs):
    out = translate(call, MAPPING, RECEIVED, **kwargs)
    return [(kind, key.decode(), json.loads(value)) for kind, key, value in out.records]


def test_page_becomes_a_page_view_with_identity_campaign_and_time():
    call = {
        "type": "page",
        "userId": "u-1",
        "anonymousId": "a-1",
        "messageId": "msg-1",
        "timestamp": "2026-11-20T10:00:00.000Z",
        "properties": {"url": "https://example.com/Pricing?plan=pro", "title": "Pricing"},
        "context": {
            "campaign": {"source": "google", "medium": "cpc", "name": "q4"},
            "traits": {"email": "Ana@Acme.com"},
        },
    }
    [(kind, key, event)] = events_of(call)
    assert (kind, key) == ("page_views", "u-1")
    assert event["event_id"] == "msg-1"
    assert (
        event["contact_id"] == "u-1" and event["anonymous_id"] == "a-1" and event["email"] == "Ana@Acme.com"
    )
    assert event["context"] == {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "q4"}
    parsed = parse_event(json.dumps(event).encode())
    assert parsed.path == "/pricing" and parsed.occurred_at == datetime(2026, 11, 20, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "properties", "expected"),
    [
        (
            "Demo Requested",
            {"form_id": "F-9", "job_title": "CTO"},
            {
                "type": "form_submission",
                "form_type": "demo_request",
                "form_id": "F-9",
                "fields": {"job_title": "CTO"},
            },
        ),
        ("Trial Started", {}, {"type": "trial", "action": "signup"}),
        (
            "Webinar Attended",
            {"webinar_id": "w-7"},
            {"type": "webinar", "action": "attended", "webinar_id": "w-7"},
        ),
    ],
)
def test_mapped_track_events(name, properties, expected):
    call = {"type": "track", "userId": "u", "event": name, "properties": properties, "messageId": "m"}
    [(_kind, _key, event)] = events_of(call)
    assert {k: event[k] for k in expected} == expected
    parse_event(json.dumps(event).encode())  # the worker accepts it


def test_unmapped_track_is_ignored_or_rejected_as_configured():
    call = {"type": "track", "userId": "u", "event": "Button Clicked", "messageId": "m"}
    out = translate(call, MAPPING, RECEIVED)
    assert out.records == [] and out.ignored == ["track 'Button Clicked'"]
    strict = MAPPING.model_copy(update={"unmapped_track": "reject"})
    with pytest.raises(CallRejected, match="not in the ingest mapping"):
        translate(call, strict, RECEIVED)


def test_identify_maps_segment_traits_and_drops_the_rest():
    call = {
        "type": "identify",
        "userId": "u",
        "messageId": "m",
        "traits": {
            "email": "bo@acme.com",
            "title": "VP Sales",
            "company": {"name": "Acme", "industry": "software", "employee_count": 250},
            "address": {"country": "de"},
            "favourite_colour": "blue",
        },
    }
    [(_kind, _key, event)] = events_of(call)
    assert event["traits"] == {
        "job_title": "VP Sales",
        "company_name": "Acme",
        "industry": "software",
        "employees": 250,
        "country": "DE",
    }


def test_alias_links_the_previous_anonymous_id_to_the_user():
    [(kind, key, event)] = events_of(
        {"type": "alias", "previousId": "anon-9", "userId": "u-9", "messageId": "m"}
    )
    assert (kind, key) == ("identify", "u-9")
    assert (event["contact_id"], event["anonymous_id"]) == ("u-9", "anon-9")


def test_time_without_timestamp_takes_the_clients_clock_skew_out():
    call = {
        "type": "page",
        "anonymousId": "a",
        "properties": {"path": "/x"},
        "originalTimestamp": "2026-11-20T11:00:00Z",
    }
    # The client's clock is 5 minutes fast: it sent at 11:06 (its clock) what it recorded at 11:00.
    [(_k, _key, event)] = events_of(call, sent_at="2026-11-20T11:06:00Z")
    assert datetime.fromisoformat(event["occurred_at"]) == RECEIVED - timedelta(minutes=6)


def test_a_call_without_message_id_gets_the_same_id_on_retry():
    call = {"type": "track", "userId": "u", "event": "Trial Started", "timestamp": "2026-11-20T10:00:00Z"}
    first, again = events_of(call), events_of(dict(call))
    assert first[0][2]["event_id"] == again[0][2]["event_id"]
    other = events_of({**call, "timestamp": "2026-11-20T10:00:01Z"})
    assert other[0][2]["event_id"] != first[0][2]["event_id"]


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        ({"type": "page", "properties": {"url": "https://x.com"}}, "userId, anonymousId or an email"),
        ({"type": "page", "userId": "u"}, "properties.url"),
        ({"type": "track", "userId": "u"}, "event name"),
        ({"type": "track", "userId": "u", "event": "Webinar Attended"}, "webinar_id"),
        ({"type": "group", "userId": "u", "groupId": "g", "traits": {}}, "domain"),
        ({"type": "alias", "userId": "u"}, "previousId"),
        ({"type": "page", "userId": "u", "properties": {"path": "/"}, "timestamp": "yesterday"}, "ISO 8601"),
        (
            {"type": "page", "userId": "u", "properties": {"path": "/"}, "timestamp": "2026-11-20T10:00:00"},
            "time zone",
        ),
        ({"type": "identify", "userId": "u", "traits": {"email": "not-an-address"}}, "not an email"),
        ({"type": "nonsense", "userId": "u"}, "type must be one of"),
    ],
)
def test_invalid_calls_say_why(call, reason):
    with pytest.raises(CallRejected) as caught:
        translate(call, MAPPING, RECEIVED)
    assert any(reason in r for r in caught.value.reasons), caught.value.reasons


def test_batch_reasons_name_each_bad_call():
    body = {"batch": [{"type": "page", "userId": "u", "properties": {"path": "/"}}, {"type": "page"}, 7]}
    with pytest.raises(CallRejected) as caught:
        translate_batch(body, MAPPING, RECEIVED)
    assert [r.split(":")[0] for r in caught.value.reasons] == ["batch[1]", "batch[2]"]


def test_mapping_file_errors_name_the_problem(tmp_path):
    bad = tmp_path / "ingest.yaml"
    bad.write_text("track:\n  Demo Requested: { type: form_submission }\n")
    with pytest.raises(MappingFileError, match="needs form_type"):
        load_mapping(bad)
    with pytest.raises(MappingFileError, match="cannot read"):
        load_mapping(tmp_path / "missing.yaml")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
_calls = st.fixed_dictionaries(
    {"type": st.sampled_from(["page", "track", "identify", "group", "alias", "screen", "x"])},
    optional={
        "userId": _json,
        "anonymousId": _json,
        "messageId": _json,
        "event": st.sampled_from(["Demo Requested", "Webinar Attended", "Other"]) | _json,
        "timestamp": st.sampled_from(["2026-11-20T10:00:00Z", "bad", None]) | _json,
        "properties": _json,
        "traits": _json,
        "context": _json,
        "groupId": _json,
        "previousId": _json,
    },
)


@settings(max_examples=300, deadline=None)
@given(_calls)
def test_hostile_calls_give_events_the_worker_accepts_or_a_clear_rejection(call):
    try:
        out = translate(call, MAPPING, RECEIVED)
    except CallRejected as exc:
        assert exc.reasons and all(isinstance(r, str) and r for r in exc.reasons)
        return
    for kind, _key, value in out.records:
        if kind != "accounts":
            parse_event(value)


def test_identify_traits_from_context_as_rudderstack_sends_them():
    call = {
        "type": "identify",
        "userId": "u",
        "messageId": "m",
        "context": {"traits": {"email": "x@acme.com", "title": "CTO"}},
    }
    [(_kind, _key, event)] = events_of(call)
    assert (event["email"], event["traits"]) == ("x@acme.com", {"job_title": "CTO"})


def test_grafana_dashboard_queries_only_metrics_leadstream_exports():
    """Every metric the dashboard plots is one a component defines (a renamed metric breaks it)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    dashboard = json.loads((root / "config/grafana/leadstream-dashboard.json").read_text())
    queried = {
        m
        for p in dashboard["panels"]
        for t in p["targets"]
        for m in re.findall(r"leadstream_[a-z_]+", t["expr"])
    }
    sources = "".join(
        (root / f).read_text() for f in ("streams/kafka/metrics.py", "streams/ingest/metrics.py")
    )
    for metric in queried:
        base = re.sub(r"_(total|bucket|count|sum)$", "", metric)
        assert f'"{base}"' in sources, metric
