"""The Redis adapter on a real Redis: atomic compare-and-set, outbox, function reload, TTL."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from config.loader import load_model
from streams.kafka_io import make_producer
from streams.pipeline import ScoringPipeline
from streams.records import SourceRecord
from streams.scoring import ContactState
from streams.sinks import ConfluentSink, MemorySink
from streams.state import ContactWrite, RedisContactStore
from streams.state.keys import contact_key
from streams.topics import ensure_topics
from tests.factories import buyer_journey, encode
from tests.integration.helpers import handoffs

pytestmark = pytest.mark.integration
MODEL = load_model()


def run(coro_factory, redis_url):
    """Run with a client bound to this event loop."""

    async def main():
        client = aioredis.from_url(redis_url)
        try:
            return await coro_factory(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_compare_and_set_outbox_and_ttl(settings, redis_client):
    prefix = settings.redis_key_prefix

    async def scenario(client):
        store = RedisContactStore(client, prefix, ttl_seconds=3600)
        first = ContactWrite("c1", 0, ContactState("c1", email="a@b.co"), {"h1": b'{"x":1}'})
        assert await store.commit([first]) == set()
        assert await store.commit([first]) == {"c1"}  # stale version: conflict, nothing written
        loaded = await store.get("c1")
        assert (loaded.version, loaded.state.email, loaded.outbox) == (
            1,
            "a@b.co",
            {"h1": b'{"x":1}'},
        )
        await store.ack_outbox([("c1", "h1")])
        assert (await store.get("c1")).outbox == {}
        assert (await store.get("nobody")).state is None

    run(scenario, settings.redis_url)
    key = contact_key(prefix, "c1")
    assert 0 < redis_client.ttl(key) <= 3600
    assert key.endswith("{c:c1}")


def test_functions_are_reloaded_when_redis_lost_them(settings, redis_client):
    async def scenario(client):
        store = RedisContactStore(client, settings.redis_key_prefix, ttl_seconds=60)
        await store.commit([ContactWrite("c2", 0, ContactState("c2"))])
        await client.function_flush()  # as after a restart without persistence
        assert await store.commit([ContactWrite("c2", 1, ContactState("c2", email="x@y.co"))]) == set()
        return (await store.get("c2")).version

    assert run(scenario, settings.redis_url) == 2


def test_handoff_survives_a_crash_between_commit_and_publish(settings):
    """The worker commits a contact that qualified, then dies before producing the handoff. The
    records were not acknowledged, so they are consumed again: the handoff is published once."""
    ensure_topics(settings)
    batch = [SourceRecord("in", 0, i, encode(e)) for i, e in enumerate(buyer_journey("crash"))]

    class DiesBeforePublishing(MemorySink):
        async def send_all(self, records):
            raise SystemExit("killed")

    async def crash(client):
        store = RedisContactStore(client, settings.redis_key_prefix, ttl_seconds=600)
        with pytest.raises(SystemExit):
            await ScoringPipeline(store, DiesBeforePublishing(), MODEL, settings.topics).process(batch)
        return (await store.get("crash")).outbox

    async def restart(client):
        store = RedisContactStore(client, settings.redis_key_prefix, ttl_seconds=600)
        sink = ConfluentSink(make_producer(settings))
        await ScoringPipeline(store, sink, MODEL, settings.topics).process(batch)
        await ScoringPipeline(store, sink, MODEL, settings.topics).process(batch)  # and once more
        return (await store.get("crash")).outbox

    outbox = run(crash, settings.redis_url)
    assert len(outbox) == 1
    assert run(restart, settings.redis_url) == {}
    published = handoffs(settings)
    assert [h["handoff_id"] for h in published] == list(outbox)
    assert json.loads(next(iter(outbox.values())))["contact_id"] == "crash"
