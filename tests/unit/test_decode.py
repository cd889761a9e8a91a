"""Decoding hostile input: every failure is an InvalidEvent with a reason, nothing else escapes."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from leadstream.config.model import EventPolicy
from leadstream.engine.input.decode import EventLimits, decode_event, direct_validator
from leadstream.engine.records import SourceRecord
from leadstream.errors import InvalidEvent
from leadstream.schemas.events import INVISIBLE, Event, normalise_domain, normalise_email
from tests.factories import T0, at, encode, page

POLICY = EventPolicy()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)


def record(value: bytes | None, timestamp_ms: int | None = None) -> SourceRecord:
    return SourceRecord("t", 0, 0, value, timestamp_ms=timestamp_ms)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_rejected_cleanly(raw):
    try:
        decode_event(record(raw), POLICY)
    except InvalidEvent as exc:
        assert exc.reason in {"json", "schema", "size"}


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_random_json_is_rejected_cleanly(value):
    with pytest.raises(InvalidEvent):
        decode_event(record(json.dumps(value).encode()), POLICY)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["event_id", "occurred_at", "type", "url", "contact_id"]), json_values)
def test_mutated_valid_events_never_crash(field, value):
    event = page("c1", "/pricing", at(0))
    event[field] = value
    try:
        decoded = decode_event(record(json.dumps(event).encode()), POLICY)
        assert decoded.event_id
    except InvalidEvent as exc:
        assert str(exc)


def test_reasons_and_messages():
    with pytest.raises(InvalidEvent, match=r"Invalid JSON") as info:
        decode_event(record(b"{nope"), POLICY)
    assert info.value.reason == "json"
    no_one = page("c1", "/", at(0))
    del no_one["contact_id"]
    with pytest.raises(InvalidEvent, match="one of contact_id, email or anonymous_id"):
        decode_event(record(encode(no_one)), POLICY)
    naive = page("c1", "/", "2026-03-02T09:00:00")
    with pytest.raises(InvalidEvent, match="occurred_at"):
        decode_event(record(encode(naive)), POLICY)
    with pytest.raises(InvalidEvent) as info:
        decode_event(record(b" " * 70_000), POLICY)
    assert info.value.reason == "size"
    with pytest.raises(InvalidEvent, match="tombstone"):
        decode_event(record(None), POLICY)


def test_time_policy_uses_the_record_timestamp_not_the_clock():
    produced = int(T0.timestamp() * 1000)
    ok = decode_event(record(encode(page("c1", "/", at(0))), produced), POLICY)
    assert ok.contact_id == "c1"
    with pytest.raises(InvalidEvent, match="after the record was produced") as info:
        decode_event(record(encode(page("c1", "/", at(hours=1))), produced), POLICY)
    assert info.value.reason == "timestamp"
    with pytest.raises(InvalidEvent, match="days before"):
        decode_event(record(encode(page("c1", "/", at(-800))), produced), POLICY)


def _normalised_the_long_way(value: str, domain_only: bool = False) -> str:
    """What normalise_email / normalise_domain are defined to return, every step taken for every
    input (the functions skip the Unicode steps for ASCII, which they leave as it is)."""

    def domain(text: str) -> str:
        text = INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).strip().lower().rstrip(".")
        try:
            return text.encode("idna").decode("ascii") if not text.isascii() else text
        except UnicodeError:
            return text

    if domain_only:
        return domain(value)
    text = INVISIBLE.sub("", unicodedata.normalize("NFKC", value)).strip()
    local, at, rest = text.rpartition("@")
    return f"{local.lower()}@{domain(rest)}" if at else text.lower()


# ASCII, invisible characters, and letters NFKC, lower() or IDNA change (fullwidth A and @, the
# ideographic full stop, the fi ligature, dotless i, dotted capital I, sharp s).
_ADDRESS_CHARS = st.sampled_from(
    [*"aZ09.-_+@ \t", *"\u200b\u00ad\ufeff\u202e\u00c9\u00df\ufb01\uff21\uff20\u3002\u0131\u0130"]
)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.text(_ADDRESS_CHARS, max_size=40), st.text(max_size=40)))
def test_addresses_and_domains_normalise_as_defined_whatever_their_characters(value):
    assert normalise_email(value) == _normalised_the_long_way(value)
    assert normalise_domain(value) == _normalised_the_long_way(value, domain_only=True)


def test_an_address_typed_differently_is_the_same_identity():
    same = {
        normalise_email(typed)
        for typed in [
            "Ann@Example.COM",
            " ann@example.com. ",
            "an\u200bn@exam\u00adple.com",
            "\uff41nn@example.com",
        ]
    }
    assert same == {"ann@example.com"}
    assert normalise_domain("B\u00fccher.Example.") == "xn--bcher-kva.example"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["event_id", "occurred_at", "type", "url", "email", "company_domain"]), json_values)
def test_the_direct_validator_validates_as_the_adapter_does(field, value):
    """decode_event calls pydantic-core's validator itself (the adapter's method is a Python
    wrapper): the same models, the same errors, on valid and mutated events alike."""
    adapter: TypeAdapter[Any] = TypeAdapter(Event)
    direct = direct_validator(adapter)
    assert getattr(direct, "__self__", None) is adapter.validator  # not the wrapper
    event = page("c1", "/pricing", at(0), email=" Ana@Example.COM ")
    for raw in (json.dumps(event).encode(), json.dumps({**event, field: value}).encode()):
        try:
            expected = adapter.validate_json(raw)
        except ValidationError as exc:
            with pytest.raises(ValidationError) as got:
                direct(raw)
            assert got.value.json() == exc.json()
        else:
            assert direct(raw) == expected


def test_an_adapter_not_built_yet_is_validated_through_its_own_method():
    deferred: TypeAdapter[Any] = TypeAdapter("Later", config={"defer_build": True})  # type: ignore[arg-type]
    assert direct_validator(deferred) == deferred.validate_json


@settings(max_examples=200, deadline=None)
@given(
    st.integers(512, 4096),
    st.floats(0, 7_200),
    st.floats(1, 1_000),
    st.integers(200, 5_000),
    st.floats(-1_200, 3),
)
def test_the_policy_and_its_limits_decide_alike(max_bytes, future_s, age_days, size, days):
    """The pipeline hands decoding the policy's limits (a compiled copy, taken once a model): the
    same events pass, and the same ones fail with the same words."""
    policy = EventPolicy(max_event_bytes=max_bytes, max_future_seconds=future_s, max_age_days=age_days)
    limits = EventLimits.of(policy)
    produced = int(T0.timestamp() * 1000)
    raw = encode(page("c1", "/" + "p" * size, at(days)))
    outcomes = []
    for given_policy in (policy, limits):
        try:
            outcomes.append(decode_event(record(raw, produced), given_policy).event_id)
        except InvalidEvent as exc:
            outcomes.append((exc.reason, str(exc)))
    assert outcomes[0] == outcomes[1]
    assert limits == EventLimits.of(policy.model_copy()) and hash(limits) == hash(EventLimits.of(policy))
    assert limits != EventLimits.of(policy.model_copy(update={"max_age_days": age_days + 1}))
