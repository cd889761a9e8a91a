"""The scoring worker on a real Kafka broker and a real Redis, run as `leadstream worker`."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import redis

from leadstream.config.loader import load_model
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.scoring import mql_handoff_id
from leadstream.state.keys import contact_key
from leadstream.tools.generator import TOPIC_OF_TYPE
from tests.factories import GOOD_FIT, at, buyer_journey, encode, identify, page
from tests.integration.helpers import handoffs, read_all, wait_caught_up

pytestmark = pytest.mark.integration
MODEL = load_model()
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "json"


def produce(settings, events):
    records = [
        (getattr(settings.topics, TOPIC_OF_TYPE[e["type"]]), e["contact_id"].encode(), encode(e))
        for e in events
    ]
    produce_all(make_producer(settings), records)


def journeys():
    return {
        "buyer": buyer_journey("buyer", spread_days=6),
        "fit_only": [
            identify("fit_only", at(0), "bo@acme-labs.com", **GOOD_FIT),
            page("fit_only", "/blog/a", at(1)),
        ],
        "engagement_only": buyer_journey(
            "engagement_only", traits={"job_title": "Intern", "industry": "retail"}
        ),
        "competitor": buyer_journey("competitor", domain="rivalsoft.com"),
        "student": buyer_journey("student", domain="state.edu"),
        "slow_buyer": buyer_journey("slow_buyer", spread_days=90),
    }


@pytest.mark.parametrize("engine", ["faust", "confluent"])
def test_journeys_replay_and_dead_letters(settings, redis_client, start_worker, engine):
    settings = settings.model_copy(update={"worker_engine": engine})
    ensure_topics(settings)
    start_worker(settings)
    all_events = [e for journey in journeys().values() for e in journey]
    produce(settings, all_events)
    wait_caught_up(settings)

    # Exactly the expected handoffs: the buyer qualifies once; nobody else does.
    received = handoffs(settings)
    assert [(h["contact_id"], h["handoff_id"]) for h in received] == [
        ("buyer", mql_handoff_id("buyer", MODEL.version, 1))
    ]
    assert received[0]["engagement"]["score"] >= MODEL.thresholds.engagement
    jsonschema.validate(received[0], json.loads((SCHEMAS / "mql_handoff.schema.json").read_text()))
    buyer_key = contact_key(settings.redis_key_prefix, "buyer")
    state_before = redis_client.hget(buyer_key, "s")
    assert redis_client.ttl(buyer_key) > 0
    # One hash per contact, no per-event keys: version, state, and the journal of its recent
    # events (open to late inputs) with its base, the checkpoint of its published handoff and
    # when the journal may close.
    fields = set(redis_client.hkeys(buyer_key))
    journal = {f for f in fields if f.startswith(b"p:j:")}
    buyer_events = sum(1 for e in all_events if e.get("contact_id") == "buyer")
    assert fields == {b"v", b"s", b"p:b", b"p:c", b"p:jt"} | journal and len(journal) == buyer_events
    # Under the Redis setting scripts/stack gives (README: "Configuration") the hash stays one
    # compact listpack through its handoff's outbox entry: Redis never converts a hash back.
    bound = redis.Redis.from_url(settings.redis_url).config_get("hash-max-listpack-value")
    if int(bound["hash-max-listpack-value"]) >= 8192:
        assert redis_client.object("encoding", buyer_key) == b"listpack"

    # Consuming the topics again from offset 0 with a fresh group double-counts nothing.
    second = settings.model_copy(update={"consumer_group": settings.consumer_group + "-again"})
    start_worker(second)
    wait_caught_up(second)
    assert [h["handoff_id"] for h in handoffs(settings)] == [received[0]["handoff_id"]]
    assert redis_client.hget(buyer_key, "s") == state_before


@pytest.mark.parametrize("engine", ["faust", "confluent"])
def test_malformed_events_go_to_dead_letters_while_valid_ones_flow(settings, start_worker, engine):
    settings = settings.model_copy(update={"worker_engine": engine})
    ensure_topics(settings)
    start_worker(settings)
    bad = [
        b"{not json",
        b'{"type": "page_view"}',
        b"\xff\xfe",
        b'{"event_id": "x", "type": "nope"}',
    ]
    malformed = [(settings.topics.page_views, b"junk", bad[i % len(bad)]) for i in range(1000)]
    valid = [
        (getattr(settings.topics, TOPIC_OF_TYPE[e["type"]]), b"buyer2", encode(e))
        for e in buyer_journey("buyer2")
    ]
    # Interleave: the valid journey is spread through the junk.
    records = malformed[:300] + valid[:2] + malformed[300:700] + valid[2:] + malformed[700:]
    produce_all(make_producer(settings), records)
    wait_caught_up(settings)

    dead = read_all(settings, settings.topics.dead_letters)
    assert len(dead) == 1000
    # A consumer validating the headers with the published schema accepts every dead letter.
    schema = json.loads((SCHEMAS / "dead_letter_headers.schema.json").read_text())
    for record in dead:
        text = {k: v.decode() for k, v in record.headers() or [] if k.startswith("__connect.errors.")}
        jsonschema.validate(text, schema)
    headers = dict(dead[0].headers())
    assert headers["__connect.errors.topic"] == settings.topics.page_views.encode()
    assert headers["__connect.errors.exception.class.name"].startswith(b"InvalidEvent.")
    assert headers["__connect.errors.exception.message"]
    assert {m.value() for m in dead} == set(bad)
    assert [h["contact_id"] for h in handoffs(settings)] == ["buyer2"]
