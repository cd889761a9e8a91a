"""A quiet contact's late-data journal closes in Redis once the stream is a horizon past it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import TopicTail, produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.state.keys import contact_key
from tests.factories import GOOD_FIT, encode, form, identify, page
from tests.integration.helpers import wait_caught_up

pytestmark = pytest.mark.integration

HORIZON_S = 10.0


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def journal_fields(redis_client, key: str) -> list[bytes]:
    return sorted(f for f in redis_client.hkeys(key) if f.startswith((b"p:j:", b"p:b", b"p:c")))


@pytest.mark.parametrize("engine", ["faust", "confluent"])
def test_a_quiet_contacts_journal_closes_and_its_state_stays(settings, start_worker, redis_client, engine):
    settings = settings.model_copy(
        update={"late_data_horizon_days": HORIZON_S / 86_400, "worker_engine": engine}
    )
    ensure_topics(settings)
    handoffs = TopicTail(settings, settings.topics.handoffs)
    start_worker(settings)
    producer = make_producer(settings)
    start = datetime.now(UTC) - timedelta(seconds=60)
    step = timedelta(seconds=1)
    journey = [
        identify("quiet", iso(start), "ana@acme-labs.com", **GOOD_FIT),
        page("quiet", "/pricing", iso(start + step)),
        page("quiet", "/pricing", iso(start + 2 * step)),
        form("quiet", "demo_request", iso(start + 3 * step)),
    ]
    produce_all(producer, [(settings.topics.forms, b"quiet", encode(e)) for e in journey])
    wait_caught_up(settings)
    assert [json.loads(m.value())["contact_id"] for m in handoffs.read(1, 30)] == ["quiet"]
    key = contact_key(settings.redis_key_prefix, "quiet")
    assert b"p:b" in journal_fields(redis_client, key)
    state = redis_client.hget(key, "s")

    # The stream moves on (another contact, later); "quiet" says nothing more.
    later = page("other", "/pricing", iso(datetime.now(UTC) + timedelta(seconds=2 * HORIZON_S)))
    produce_all(producer, [(settings.topics.page_views, b"other", encode(later))])
    deadline = time.monotonic() + 90
    while journal_fields(redis_client, key) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert journal_fields(redis_client, key) == [], "the journal did not close within 90 s"
    assert redis_client.hget(key, "s") == state  # nothing decided anew, nothing lost
    handoffs.close()

    # Its next event starts a new journal from that state.
    now = iso(datetime.now(UTC))
    produce_all(producer, [(settings.topics.page_views, b"quiet", encode(page("quiet", "/docs", now)))])
    wait_caught_up(settings)
    assert b"p:b" in journal_fields(redis_client, key)
