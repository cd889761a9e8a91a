"""The batch pipeline over the in-memory store: idempotent replays, outbox after a failed publish."""

from __future__ import annotations

import asyncio
import json

import pytest

from config.loader import load_model
from config.settings import Topics
from streams.pipeline import ScoringPipeline
from streams.records import SourceRecord
from streams.sinks import MemorySink
from streams.state import MemoryContactStore
from tests.factories import buyer_journey, encode

MODEL = load_model()
TOPICS = Topics()


def records(events, topic="in", start=0):
    return [SourceRecord(topic, 0, start + i, encode(e)) for i, e in enumerate(events)]


def handoff_ids(sink):
    return [json.loads(r.value)["handoff_id"] for r in sink.on_topic(TOPICS.handoffs)]


def test_consuming_again_from_offset_zero_changes_nothing():
    store, sink = MemoryContactStore(), MemorySink()
    pipeline = ScoringPipeline(store, sink, MODEL, TOPICS)
    batch = records(buyer_journey("c1") + buyer_journey("c2"))
    asyncio.run(pipeline.process(batch))
    assert len(handoff_ids(sink)) == 2
    before = asyncio.run(store.load(["c1"]))["c1"]
    asyncio.run(pipeline.process(batch))  # the same records again, e.g. after a rebalance
    after = asyncio.run(store.load(["c1"]))["c1"]
    assert len(handoff_ids(sink)) == 2
    assert after.state == before.state
    assert pipeline.counters.duplicates == len(batch)


def test_producer_duplicates_at_new_offsets_count_once():
    store, sink = MemoryContactStore(), MemorySink()
    journey = buyer_journey("c3")
    pipeline = ScoringPipeline(store, sink, MODEL, TOPICS)
    asyncio.run(pipeline.process(records(journey)))
    asyncio.run(pipeline.process(records(journey, start=100)))  # same event ids, new offsets
    stored = asyncio.run(store.load(["c3"]))["c3"]
    assert stored.state.rules["pricing_page_repeat"].count == 2
    assert len(handoff_ids(sink)) == 1


class ExplodingSink(MemorySink):
    async def send_all(self, records):
        raise RuntimeError("worker died before publishing")


def test_handoff_decided_but_not_published_is_published_on_redelivery():
    store = MemoryContactStore()
    batch = records(buyer_journey("c4"))
    with pytest.raises(RuntimeError):
        asyncio.run(ScoringPipeline(store, ExplodingSink(), MODEL, TOPICS).process(batch))
    assert asyncio.run(store.load(["c4"]))["c4"].outbox  # decided, kept in the outbox
    sink = MemorySink()
    asyncio.run(
        ScoringPipeline(store, sink, MODEL, TOPICS).process(batch)
    )  # offsets not committed: redelivered
    assert len(handoff_ids(sink)) == 1
    assert asyncio.run(store.load(["c4"]))["c4"].outbox == {}
    # and once acknowledged it is not published a third time
    asyncio.run(ScoringPipeline(store, sink, MODEL, TOPICS).process(batch))
    assert len(handoff_ids(sink)) == 1


def test_invalid_records_go_to_dead_letters_and_valid_ones_still_count():
    store, sink = MemoryContactStore(), MemorySink()
    batch = records(buyer_journey("c5"))
    batch.insert(2, SourceRecord("in", 0, 99, b"not json"))
    asyncio.run(ScoringPipeline(store, sink, MODEL, TOPICS).process(batch))
    dead = sink.on_topic(TOPICS.dead_letters)
    assert len(dead) == 1 and dead[0].value == b"not json"
    headers = dict(dead[0].headers)
    assert headers["__connect.errors.offset"] == b"99"
    assert headers["__connect.errors.exception.class.name"] == b"InvalidEvent.json"
    assert len(handoff_ids(sink)) == 1


def test_commit_conflicts_are_reloaded_and_reapplied():
    store, sink = MemoryContactStore(), MemorySink()
    pipeline = ScoringPipeline(store, sink, MODEL, TOPICS)
    journey = buyer_journey("c6")
    asyncio.run(pipeline.process(records(journey[:2])))
    original_load = store.load
    interfered = []

    async def load_then_interfere(ids):
        loaded = await original_load(ids)
        if not interfered:  # another writer commits between our load and our commit
            interfered.append(True)
            other = ScoringPipeline(store, MemorySink(), MODEL, TOPICS)
            await other.process(records(journey[2:3], topic="other"))
        return loaded

    store.load = load_then_interfere
    asyncio.run(pipeline.process(records(journey[3:], start=2)))
    assert pipeline.counters.conflicts == 1
    state = asyncio.run(original_load(["c6"]))["c6"].state
    assert set(state.seen_ids) == {e["event_id"] for e in journey}
