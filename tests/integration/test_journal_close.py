"""A quiet contact's late-data journal closes in Redis once the stream is a horizon past it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from leadstream.config.loader import default_model_text, load_model
from leadstream.engine.shadow import shadow_settings
from leadstream.kafka import registry
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import TopicTail, produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.state.keys import contact_key
from tests.factories import GOOD_FIT, encode, form, identify, page
from tests.integration.helpers import renamed_model, wait_caught_up

pytestmark = pytest.mark.integration

HORIZON_S = 10.0


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def journal_fields(redis_client, key: str) -> list[bytes]:
    return sorted(f for f in redis_client.hkeys(key) if f.startswith((b"p:j:", b"p:b", b"p:c")))


def produce_journey(settings, producer) -> None:
    """ "quiet" qualifies: a fitting identify, two pricing views and a demo request, a minute ago."""
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


def move_on(settings, producer) -> None:
    """The stream moves on (another contact, two horizons later); "quiet" says nothing more."""
    later = page("other", "/pricing", iso(datetime.now(UTC) + timedelta(seconds=2 * HORIZON_S)))
    produce_all(producer, [(settings.topics.page_views, b"other", encode(later))])


def wait_closed(redis_client, keys: list[str], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while any(journal_fields(redis_client, key) for key in keys) and time.monotonic() < deadline:
        time.sleep(0.5)
    for key in keys:
        assert journal_fields(redis_client, key) == [], f"{key}'s journal did not close in {timeout_s:.0f} s"


@pytest.mark.parametrize("engine", ["faust", "confluent"])
def test_a_quiet_contacts_journal_closes_and_its_state_stays(settings, start_worker, redis_client, engine):
    settings = settings.model_copy(
        update={"late_data_horizon_days": HORIZON_S / 86_400, "worker_engine": engine}
    )
    ensure_topics(settings)
    # From the beginning (the topic is the test's own): the tail may be assigned after the handoff.
    handoffs = TopicTail(settings, settings.topics.handoffs, from_beginning=True)
    start_worker(settings)
    producer = make_producer(settings)
    produce_journey(settings, producer)
    assert [json.loads(m.value())["contact_id"] for m in handoffs.read(1, 30)] == ["quiet"]
    key = contact_key(settings.redis_key_prefix, "quiet")
    assert b"p:b" in journal_fields(redis_client, key)
    state = redis_client.hget(key, "s")

    move_on(settings, producer)
    wait_closed(redis_client, [key])
    assert redis_client.hget(key, "s") == state  # nothing decided anew, nothing lost
    handoffs.close()

    # Its next event starts a new journal from that state.
    now = iso(datetime.now(UTC))
    produce_all(producer, [(settings.topics.page_views, b"quiet", encode(page("quiet", "/docs", now)))])
    wait_caught_up(settings)
    assert b"p:b" in journal_fields(redis_client, key)


def test_a_shadow_models_quiet_journals_close_too(settings, start_worker, redis_client):
    """The shadow keeps a state of its own: its journals close as the active model's do."""
    settings = settings.model_copy(update={"late_data_horizon_days": HORIZON_S / 86_400})
    ensure_topics(settings)
    active, shadow = load_model().version, "journal-close-shadow"
    registry.register(settings, default_model_text(), "default")
    registry.register(settings, renamed_model(shadow), "shadow.yaml")
    registry.promote(settings, active)
    registry.shadow(settings, shadow, "same rules, its own state")
    start_worker(settings, {"LEADSTREAM_INSTANCE_ID": "journal-shadow"})
    running = registry.running_key(settings.redis_key_prefix)
    deadline = time.monotonic() + 30
    while redis_client.hget(running, "journal-shadow:shadow") != shadow.encode():
        assert time.monotonic() < deadline, redis_client.hgetall(running)
        time.sleep(0.2)
    producer = make_producer(settings)
    produce_journey(settings, producer)
    keys = [
        contact_key(settings.redis_key_prefix, "quiet"),
        contact_key(shadow_settings(settings, shadow).redis_key_prefix, "quiet"),
    ]
    deadline = time.monotonic() + 30
    while not all(b"p:b" in journal_fields(redis_client, key) for key in keys):
        assert time.monotonic() < deadline, "the shadow did not score the journey"
        time.sleep(0.2)
    states = [redis_client.hget(key, "s") for key in keys]

    move_on(settings, producer)
    wait_closed(redis_client, keys)
    assert [redis_client.hget(key, "s") for key in keys] == states
