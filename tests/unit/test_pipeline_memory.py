"""The batch pipeline over the in-memory store: idempotent replays, outbox after a failed publish."""

from __future__ import annotations

import asyncio
import json

import pytest

from leadstream.config.loader import load_model
from leadstream.config.settings import Topics
from leadstream.engine.pipeline import ScoringPipeline
from leadstream.engine.ports import MemorySink
from leadstream.engine.records import SourceRecord
from leadstream.errors import StateUnavailable
from leadstream.scoring.state import event_fingerprint
from leadstream.state import MemoryStateStore
from leadstream.state.keys import contact_key
from leadstream.state.port import decode_state
from tests.factories import buyer_journey, encode

MODEL = load_model()
TOPICS = Topics()


def records(events, topic="in", start=0):
    return [SourceRecord(topic, 0, start + i, encode(e)) for i, e in enumerate(events)]


def handoff_ids(sink):
    return [json.loads(r.value)["handoff_id"] for r in sink.on_topic(TOPICS.handoffs)]


def load(store, contact):
    return asyncio.run(store.load([contact_key("ls", contact)]))[contact_key("ls", contact)]


def pipeline(store, sink):
    return ScoringPipeline(store, sink, MODEL, TOPICS)


def test_consuming_again_from_offset_zero_changes_nothing():
    store, sink = MemoryStateStore(), MemorySink()
    scoring = pipeline(store, sink)
    batch = records(buyer_journey("c1") + buyer_journey("c2"))
    asyncio.run(scoring.process(batch))
    assert len(handoff_ids(sink)) == 2
    before = load(store, "c1")
    asyncio.run(scoring.process(batch))  # the same records again, e.g. after a rebalance
    assert len(handoff_ids(sink)) == 2
    assert load(store, "c1").value == before.value
    assert scoring.counters.duplicates == len(batch)


def test_producer_duplicates_at_new_offsets_count_once():
    store, sink = MemoryStateStore(), MemorySink()
    journey = buyer_journey("c3")
    scoring = pipeline(store, sink)
    asyncio.run(scoring.process(records(journey)))
    asyncio.run(scoring.process(records(journey, start=100)))  # same event ids, new offsets
    assert decode_state(load(store, "c3").value).rules["pricing_page_repeat"].count == 2
    assert len(handoff_ids(sink)) == 1


class ExplodingSink(MemorySink):
    async def send_all(self, records):
        raise RuntimeError("worker died before publishing")


def test_handoff_decided_but_not_published_is_published_on_redelivery():
    store = MemoryStateStore()
    batch = records(buyer_journey("c4"))
    with pytest.raises(RuntimeError):
        asyncio.run(pipeline(store, ExplodingSink()).process(batch))
    assert any(entry.startswith("h:") for entry in load(store, "c4").outbox)  # decided, kept
    sink = MemorySink()
    asyncio.run(pipeline(store, sink).process(batch))  # offsets not committed: redelivered
    assert len(handoff_ids(sink)) == 1
    assert load(store, "c4").outbox == {}
    # and once acknowledged it is not published a third time
    asyncio.run(pipeline(store, sink).process(batch))
    assert len(handoff_ids(sink)) == 1


def test_invalid_records_go_to_dead_letters_and_valid_ones_still_count():
    store, sink = MemoryStateStore(), MemorySink()
    batch = records(buyer_journey("c5"))
    batch.insert(2, SourceRecord("in", 0, 99, b"not json"))
    asyncio.run(pipeline(store, sink).process(batch))
    dead = sink.on_topic(TOPICS.dead_letters)
    assert len(dead) == 1 and dead[0].value == b"not json"
    headers = dict(dead[0].headers)
    assert headers["__connect.errors.offset"] == b"99"
    assert headers["__connect.errors.exception.class.name"] == b"InvalidEvent.json"
    assert len(handoff_ids(sink)) == 1


class InterferingStore(MemoryStateStore):
    """Another writer commits contact c6 between this worker's load and its commit, once."""

    def __init__(self, journey):
        super().__init__()
        self.journey = journey
        self.interfered = []

    async def load(self, keys):
        loaded = await super().load(keys)
        if self.journey and not self.interfered and contact_key("ls", "c6") in keys:
            self.interfered.append(True)
            await pipeline(self, MemorySink()).process(records(self.journey[2:3], topic="other"))
        return loaded


def test_commit_conflicts_are_reloaded_and_reapplied():
    journey = buyer_journey("c6")
    store, sink = InterferingStore(None), MemorySink()
    scoring = pipeline(store, sink)
    asyncio.run(scoring.process(records(journey[:2])))
    store.journey = journey  # from now on, the next load of c6 is interfered with
    asyncio.run(scoring.process(records(journey[3:], start=2)))
    assert store.interfered and scoring.counters.conflicts == 1
    state = decode_state(load(store, "c6").value)
    assert set(state.seen_ids) == {event_fingerprint(e["event_id"]) for e in journey}


def test_a_later_record_with_an_earlier_event_time_is_not_lost():
    """In a batch a contact's events are applied in event-time order, not offset order."""
    store, sink = MemoryStateStore(), MemorySink()
    journey = buyer_journey("c7")
    reordered = [journey[0], journey[3], journey[2], journey[1], journey[4]]  # produced out of order
    asyncio.run(pipeline(store, sink).process(records(reordered)))
    state = decode_state(load(store, "c7").value)
    assert state.rules["pricing_page_repeat"].count == 2
    assert state.rules["bottom_funnel_content"].count == 1
    assert len(handoff_ids(sink)) == 1


class ChunkRecordingStore(MemoryStateStore):
    """Records the keys of each commit call that writes anything; the first of those fails after
    its round trip went out (a Redis that went away mid-batch) when ``fail_first`` is set."""

    def __init__(self, fail_first=False):
        super().__init__()
        self.commits = []
        self.fail_first = fail_first

    async def commit(self, writes):
        if not writes:
            return await super().commit(writes)
        self.commits.append(sorted(w.key for w in writes))
        await asyncio.sleep(0)  # in flight while the next chunk is decided
        if self.fail_first and len(self.commits) == 1:
            raise StateUnavailable("Redis went away while committing")
        return await super().commit(writes)


def five_buyers():
    return {f"b{n}": buyer_journey(f"b{n}") for n in range(1, 6)}


def in_one_batch(journeys):
    return records([e for journey in journeys.values() for e in journey])


def test_commits_go_out_a_chunk_at_a_time_with_the_same_outcome_as_one_send():
    chunked_store, chunked_sink = ChunkRecordingStore(), MemorySink()
    chunked = pipeline(chunked_store, chunked_sink)
    chunked.commit_chunk = 2
    whole_store, whole_sink = ChunkRecordingStore(), MemorySink()
    batch = in_one_batch(five_buyers())
    asyncio.run(chunked.process(batch))
    asyncio.run(pipeline(whole_store, whole_sink).process(batch))

    contacts = [contact_key("ls", f"b{n}") for n in range(1, 6)]
    sent = [keys for keys in chunked_store.commits if set(keys) <= set(contacts)]
    assert [len(keys) for keys in sent] == [2, 2, 1]
    assert sorted(key for keys in sent for key in keys) == sorted(contacts)
    assert [len(keys) for keys in whole_store.commits if set(keys) <= set(contacts)] == [5]
    assert sorted(handoff_ids(chunked_sink)) == sorted(handoff_ids(whole_sink))
    assert len(handoff_ids(whole_sink)) == 5
    for n in range(1, 6):
        assert load(chunked_store, f"b{n}").value == load(whole_store, f"b{n}").value


def test_a_chunk_that_fails_to_commit_fails_the_batch_with_nothing_left_running_or_counted_twice():
    store, sink = ChunkRecordingStore(fail_first=True), MemorySink()
    scoring = pipeline(store, sink)
    scoring.commit_chunk = 2
    journeys = five_buyers()
    batch = in_one_batch(journeys)

    async def first_attempt():
        with pytest.raises(StateUnavailable):
            await scoring.process(batch)
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert asyncio.run(first_attempt()) == []  # the other chunks' commits were waited for
    assert len(store.commits) >= 3 and sink.on_topic(TOPICS.handoffs) == []

    asyncio.run(scoring.process(batch))  # consumed again: the chunks that landed skip their events
    assert sorted(handoff_ids(sink)) == sorted(set(handoff_ids(sink))) and len(handoff_ids(sink)) == 5
    for contact, journey in journeys.items():
        state = decode_state(load(store, contact).value)
        assert set(state.seen_ids) == {event_fingerprint(e["event_id"]) for e in journey}
        assert state.rules["pricing_page_repeat"].count == 2  # each page view counted once
