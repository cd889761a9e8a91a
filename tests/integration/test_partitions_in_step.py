"""A backlog whose topics run far apart in event time: the worker pauses the partitions ahead,
loses nothing it paused, and hands off exactly what a replay of the same events does
(streams/kafka/alignment.py, both engines)."""

from __future__ import annotations

import asyncio
import json

import pytest

from leadstream.bootstrap import build_embedded
from leadstream.config.loader import load_model
from leadstream.engine.records import SourceRecord
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import consumer_lag, produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.tools.generator import JourneyGenerator, default_start, to_records
from tests.integration.helpers import handoffs, wait_caught_up

pytestmark = pytest.mark.integration
MODEL = load_model()


@pytest.mark.parametrize("engine", ["faust", "confluent"])
def test_partitions_paused_ahead_in_event_time_lose_nothing(settings, start_worker, engine):
    # An hour's window: the generated journeys span months, so the small topics (forms,
    # identify) run weeks ahead of page views and are paused again and again.
    settings = settings.model_copy(
        update={"worker_engine": engine, "partition_alignment_s": 3600.0, "timer_interval_s": 60}
    )
    events = JourneyGenerator(seed=43, contacts=600, start=default_start()).events()
    ensure_topics(settings)
    produce_all(make_producer(settings), to_records(events, settings.topics))
    worker = start_worker(settings)
    wait_caught_up(settings, timeout_s=240)

    assert consumer_lag(settings, settings.topics.inputs()) == 0
    log = worker.log_path.read_text()
    assert "reading partitions in step:" in log and "paused while more than 3600 s" in log

    pipeline, sink, _store = build_embedded(settings, MODEL)
    accounts = [e for e in events if e["type"] == "account"]
    ordered = [
        SourceRecord(settings.topics.accounts, 0, i, json.dumps(e).encode()) for i, e in enumerate(accounts)
    ]
    ordered += [
        SourceRecord("file", 0, i, json.dumps(e).encode())
        for i, e in enumerate(events)
        if e["type"] != "account"
    ]
    asyncio.run(pipeline.process(ordered))
    asyncio.run(pipeline.release_accounts())
    expected = {
        (h["kind"], h["handoff_id"])
        for h in (json.loads(r.value) for r in sink.on_topic(settings.topics.handoffs))
    }
    live = {(h["kind"], h["handoff_id"]) for h in handoffs(settings)}
    assert expected and live == expected
