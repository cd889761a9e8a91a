"""The injected error policy: today's behaviour by default, and each other action doing what it says."""

from __future__ import annotations

import asyncio
import json

import pytest

from leadstream.config.loader import load_model
from leadstream.config.settings import Topics
from leadstream.engine.guard import RetryingProcessor
from leadstream.engine.pipeline import ScoringPipeline
from leadstream.engine.policy import Action, default_policy, policy_from
from leadstream.engine.ports import MemorySink
from leadstream.engine.records import SourceRecord
from leadstream.errors import InvalidEvent, StateUnavailable, StreamStopped
from leadstream.state import MemoryStateStore
from tests.factories import buyer_journey, encode

MODEL = load_model()
TOPICS = Topics()


def batch_with_garbage():
    events = [SourceRecord("in", 0, i, encode(e)) for i, e in enumerate(buyer_journey("c1"))]
    return [*events, SourceRecord("in", 0, len(events), b"{not json")]


def run(policy):
    sink = MemorySink()
    pipeline = ScoringPipeline(MemoryStateStore(), sink, MODEL, TOPICS, on_error=policy)
    asyncio.run(pipeline.process(batch_with_garbage()))
    return pipeline, sink


def test_the_default_dead_letters_invalid_events_retries_infrastructure_and_stops_on_bugs():
    record = SourceRecord("in", 0, 0, b"")
    assert default_policy(InvalidEvent("json", "x"), record) is Action.DEAD_LETTER
    assert default_policy(StateUnavailable("redis down"), None) is Action.RETRY
    assert default_policy(KeyError("bug"), None) is Action.STOP
    pipeline, sink = run(default_policy)
    assert len(sink.on_topic(TOPICS.dead_letters)) == 1
    assert pipeline.counters.dead_letters == 1
    assert len(sink.on_topic(TOPICS.handoffs)) == 1  # the valid events still qualify the buyer


def test_skip_drops_the_invalid_event_counted_and_the_rest_goes_on():
    pipeline, sink = run(policy_from(on_invalid_event="skip"))
    assert sink.on_topic(TOPICS.dead_letters) == []
    assert pipeline.counters.skipped == 1
    assert len(sink.on_topic(TOPICS.handoffs)) == 1


def test_stop_stops_on_the_invalid_event_and_says_where():
    with pytest.raises(StreamStopped, match=r"in:0@\d+"):
        run(policy_from(on_invalid_event="stop"))


class Flaky:
    """A processor that fails ``times`` times with ``error``, then succeeds."""

    def __init__(self, error, times):
        self.error, self.times, self.calls = error, times, 0

    async def process(self, batch):
        self.calls += 1
        if self.calls <= self.times:
            raise self.error


def test_infrastructure_errors_are_retried_until_the_batch_goes_through():
    inner = Flaky(StateUnavailable("redis down"), 2)
    asyncio.run(RetryingProcessor(inner, first_delay_s=0.01).process([]))
    assert inner.calls == 3


def test_a_bug_stops_the_worker_with_the_cause_chained():
    inner = Flaky(KeyError("no such field"), 1)
    with pytest.raises(StreamStopped) as raised:
        asyncio.run(RetryingProcessor(inner, first_delay_s=0.01).process([]))
    assert isinstance(raised.value.__cause__, KeyError)
    assert inner.calls == 1


def test_stop_on_infrastructure_errors_for_a_supervisor_that_prefers_restarts():
    inner = Flaky(StateUnavailable("redis down"), 1)
    policy = policy_from(on_infrastructure_error="stop")
    with pytest.raises(StreamStopped):
        asyncio.run(RetryingProcessor(inner, first_delay_s=0.01, on_error=policy).process([]))


def test_a_batch_the_policy_dead_letters_goes_whole_to_the_dead_letter_topic():
    sink = MemorySink()
    pipeline = ScoringPipeline(MemoryStateStore(), sink, MODEL, TOPICS)
    batch = [SourceRecord("in", 0, i, encode(e)) for i, e in enumerate(buyer_journey("c2"))]
    guard = RetryingProcessor(
        Flaky(ValueError("poison"), 1),
        on_error=lambda exc, record: Action.DEAD_LETTER,
        dead_letter_batch=pipeline.dead_letter_batch,
    )
    asyncio.run(guard.process(batch))
    dead = sink.on_topic(TOPICS.dead_letters)
    assert [r.value for r in dead] == [r.value for r in batch]
    headers = dict(dead[0].headers)
    assert headers["__connect.errors.exception.class.name"] == b"InvalidEvent.processing"
    assert b"poison" in headers["__connect.errors.exception.message"]
    assert json.loads(dead[0].value)["contact_id"] == "c2"
