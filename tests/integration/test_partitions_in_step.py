"""A backlog whose topics run far apart in event time: the worker pauses the partitions ahead,
loses nothing it paused, and hands off exactly what a replay of the same events does
(streams/kafka/alignment.py, both engines); the confluent worker holds back records far ahead
of the slowest partition, so contacts are scored in event-time order (streams/kafka/in_step.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from leadstream.bootstrap import build_embedded
from leadstream.config.loader import load_model
from leadstream.engine.records import SourceRecord
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import consumer_lag, produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.tools.generator import JourneyGenerator, default_start, to_records
from leadstream.tools.ingest_process import free_port
from tests.integration.helpers import handoffs, wait_caught_up
from tests.integration.test_metrics import scrape

pytestmark = pytest.mark.integration
MODEL = load_model()


@pytest.mark.parametrize("engine", ["faust", "confluent"])
def test_partitions_paused_ahead_in_event_time_lose_nothing(settings, start_worker, engine):
    # An hour's window: the generated journeys span months, so the small topics (forms,
    # identify) run weeks ahead of page views and are paused again and again. The confluent
    # worker's hold (in_step, tested below) is off here: it pauses the partitions whose records
    # it holds, and on a busy machine that alone kept every read within the hour, so whether
    # this test saw a pause of its own depended on the fetches' timing.
    settings = settings.model_copy(
        update={
            "worker_engine": engine,
            "partition_alignment_s": 3600.0,
            "in_step_slack_s": 0.0,
            "timer_interval_s": 60,
        }
    )
    events = JourneyGenerator(seed=43, contacts=600, start=default_start()).events()
    ensure_topics(settings)
    produce_all(make_producer(settings), to_records(events, settings.topics))
    worker = start_worker(settings)
    wait_caught_up(settings, timeout_s=240)

    assert consumer_lag(settings, settings.topics.inputs()) == 0
    log = worker.log_path.read_text()
    assert "reading partitions in step:" in log and "paused while more than 3600 s" in log

    live = {(h["kind"], h["handoff_id"]) for h in handoffs(settings)}
    assert live == replayed(settings, events)


@pytest.mark.parametrize("slack_s", [60.0, 0.0])
def test_a_backlog_over_several_topics_is_scored_in_event_time_order(settings, start_worker, slack_s):
    # Each topic is fetched in runs of a partition's records: the forms and identify topics
    # come whole, weeks ahead of the page views. Held back, every contact's inputs reach it in
    # event-time order and none re-applies its journal; without (0), a late replay is common.
    port = free_port()
    settings = settings.model_copy(
        update={
            "worker_engine": "confluent",
            "in_step_slack_s": slack_s,
            "metrics_port": port,
            "timer_interval_s": 60,
        }
    )
    events = JourneyGenerator(seed=44, contacts=600, start=default_start()).events()
    ensure_topics(settings)
    produce_all(make_producer(settings), to_records(events, settings.topics))
    start_worker(settings)
    wait_caught_up(settings, timeout_s=240)

    samples = scrape(port)
    applied, replays = samples["leadstream_events_applied_total"], samples["leadstream_late_replays_total"]
    assert applied == sum(1 for e in events if e["type"] != "account")
    if slack_s:
        assert replays <= 0.01 * applied, f"{replays:.0f} late replays for {applied:.0f} events"
    else:
        assert replays >= 0.05 * applied, f"{replays:.0f} late replays for {applied:.0f} events"
    live = {(h["kind"], h["handoff_id"]) for h in handoffs(settings)}
    assert live == replayed(settings, events)


def replayed(settings: Any, events: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """The handoffs of the embedded engine over the same events, firmographics first."""
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
    assert expected
    return expected
