"""The wiring end to end: confluent-kafka in, faust worker, Redis state, handoff topic out."""

from __future__ import annotations

import json

import pytest

from streams.kafka_io import TopicTail, make_producer, produce_all
from streams.topics import ensure_topics

pytestmark = pytest.mark.integration


def test_event_reaches_redis_and_handoff_topic(settings, redis_client, start_worker):
    ensure_topics(settings)
    handoffs = TopicTail(settings, settings.topics.handoffs)
    start_worker(settings)
    event = json.dumps({"contact_id": "c-1", "url": "/pricing"}).encode()
    produce_all(make_producer(settings), [(settings.topics.page_views, b"c-1", event)] * 2)

    received = handoffs.read(2, timeout_s=60)
    handoffs.close()

    assert [json.loads(m.value()) for m in received] == [
        {"contact_id": "c-1", "events_seen": 1},
        {"contact_id": "c-1", "events_seen": 2},
    ]
    assert redis_client.hget(f"{settings.redis_key_prefix}:{{c:c-1}}", "events") == b"2"
