"""Privacy controls in pure code: redacted dead letters, pseudonyms, suppressed events (embedded
pipeline over the in-memory store)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

from hypothesis import given
from hypothesis import strategies as st

from leadstream.bootstrap import build_embedded
from leadstream.config.loader import load_model
from leadstream.config.settings import Settings
from leadstream.engine.input.dead_letters import PERSONAL_FIELDS, REDACTED_HEADER, redacted
from leadstream.engine.records import OutputRecord, SourceRecord
from leadstream.state.keys import suppression_key
from leadstream.state.pseudonyms import pseudonym, pseudonym_secret
from tests.factories import at, buyer_journey, encode, page

SECRET = b"test-secret"
personal = st.sampled_from(sorted(PERSONAL_FIELDS))
text = st.text(min_size=3, max_size=30).filter(lambda s: s.strip() and s.isprintable())


@given(
    st.dictionaries(personal, text, min_size=1),
    st.dictionaries(st.sampled_from(["url", "type", "form_id"]), text),
)
def test_a_redacted_dead_letter_holds_no_personal_value(people, other):
    body = {**other, **people, "context": {"traits": dict(people)}}
    letter = OutputRecord("dead", b"email:" + next(iter(people.values())).encode(), json.dumps(body).encode())
    out = redacted(letter, SECRET)
    value = json.loads(out.value)
    for field, secret_value in people.items():
        assert value[field] == pseudonym(SECRET, secret_value) != secret_value
        assert value["context"]["traits"][field] == pseudonym(SECRET, secret_value)
    assert {k: value[k] for k in other if k not in people} == {
        k: v for k, v in other.items() if k not in people
    }
    assert out.key == pseudonym(SECRET, letter.key.decode()).encode()
    assert dict(out.headers)[REDACTED_HEADER] == b"key,fields"


@given(st.binary(max_size=80).filter(lambda b: not b.strip().startswith((b"{", b"[", b'"'))))
def test_a_value_that_is_not_json_is_dropped_whole(raw):
    out = redacted(OutputRecord("dead", None, raw), SECRET)
    if out.value is not None:  # valid JSON scalars (numbers, true) carry nothing personal
        assert json.loads(out.value) == json.loads(raw)
    else:
        assert dict(out.headers)[REDACTED_HEADER] == b"key,value" and out.key == b"redacted"


def test_events_of_an_erased_person_are_dead_lettered_as_suppressed():
    settings = Settings()
    pipeline, sink, store = build_embedded(settings, load_model())
    # The secret the pipeline names people with: the built-in one, or LEADSTREAM_PSEUDONYM_SECRET.
    store.suppress(
        suppression_key(settings.redis_key_prefix), [pseudonym(pseudonym_secret(settings), "gone")]
    )
    events = [*buyer_journey("gone"), *buyer_journey("stays"), page("gone", "/pricing", at(9))]
    records = [SourceRecord("leadstream.page_views", 0, i, encode(e)) for i, e in enumerate(events)]
    asyncio.run(pipeline.process(records))
    handoffs = [json.loads(r.value) for r in sink.on_topic(settings.topics.handoffs)]
    assert [h["contact_id"] for h in handoffs] == ["stays"]
    dead = sink.on_topic(settings.topics.dead_letters)
    assert len(dead) == 6 and all(r.value is None and b"gone" not in (r.key or b"") for r in dead)
    assert pipeline.counters.dead_letter_reasons == {"suppressed": 6}


def test_an_erasure_between_two_batches_holds_from_the_next_batch_on():
    settings = Settings()
    pipeline, sink, store = build_embedded(settings, load_model())
    first = [SourceRecord("leadstream.page_views", 0, 0, encode(page("later", "/pricing", at(1))))]
    asyncio.run(pipeline.process(first))
    assert pipeline.counters.dead_letter_reasons == {}
    store.suppress(
        suppression_key(settings.redis_key_prefix), [pseudonym(pseudonym_secret(settings), "anon:a-1")]
    )
    # Named by an anonymous id the list holds (with a contact id it does not).
    second = [
        SourceRecord("leadstream.page_views", 0, 1, encode(page("later", "/blog", at(2)))),
        SourceRecord(
            "leadstream.page_views", 0, 2, encode({**page("later", "/docs", at(3)), "anonymous_id": "a-1"})
        ),
    ]
    asyncio.run(pipeline.process(second))
    assert pipeline.counters.dead_letter_reasons == {"suppressed": 1}
    assert pipeline.counters.applied == 2
    (dead,) = sink.on_topic(settings.topics.dead_letters)
    assert dead.value is None and dead.key == pseudonym(pseudonym_secret(settings), "later").encode()


def test_a_shadow_model_reads_its_deployments_suppression_list():
    from leadstream.engine.shadow import shadow_settings

    settings = Settings()
    shadow = shadow_settings(settings, "2026-02-01.candidate")
    assert suppression_key(shadow.redis_key_prefix) == suppression_key(settings.redis_key_prefix)


@given(st.binary(min_size=1, max_size=200), st.text(max_size=80))
def test_a_pseudonym_is_hmac_sha256_of_the_profile_under_the_secret(secret, profile):
    """Keys in Redis and the erasure list are named by it: any other digest would orphan them."""
    expected = hmac.new(secret, profile.encode(), hashlib.sha256).hexdigest()[:32]
    assert pseudonym(secret, profile) == "p" + expected
