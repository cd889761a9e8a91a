"""Prometheus metrics of a running worker and of the router, scraped for real."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from prometheus_client import generate_latest

from leadstream.config.loader import load_model
from leadstream.kafka.clients import make_producer
from leadstream.kafka.metrics import router_registry
from leadstream.kafka.topic_io import produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.router.service import router_group
from leadstream.tools.generator import TOPIC_OF_TYPE
from leadstream.tools.ingest_process import free_port
from tests.factories import buyer_journey, encode
from tests.integration.helpers import wait_caught_up

pytestmark = pytest.mark.integration
MODEL = load_model()


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


@pytest.mark.parametrize("engine", ["faust", "confluent"])
def test_worker_metrics_count_records_dead_letters_handoffs_and_lag(settings, start_worker, engine):
    port = free_port()
    settings = settings.model_copy(update={"metrics_port": port, "worker_engine": engine})
    ensure_topics(settings)
    start_worker(settings)
    journey = buyer_journey("metered")
    records = [(getattr(settings.topics, TOPIC_OF_TYPE[e["type"]]), b"metered", encode(e)) for e in journey]
    records.append((settings.topics.page_views, b"x", b"{not json"))
    records.append((settings.topics.page_views, b"y", json.dumps({"type": "page_view"}).encode()))
    produce_all(make_producer(settings), records)
    wait_caught_up(settings)

    samples = scrape(port)
    pages = settings.topics.page_views
    assert samples[f'leadstream_records_total{{topic="{pages}"}}'] == 5  # 3 pages + 2 bad ones
    assert samples['leadstream_dead_letters_total{reason="json"}'] == 1
    assert samples['leadstream_dead_letters_total{reason="schema"}'] == 1
    assert samples["leadstream_events_applied_total"] == len(journey)
    assert samples[f'leadstream_handoffs_total{{kind="mql",model_version="{MODEL.version}"}}'] == 1
    assert samples[f'leadstream_model_info{{model_version="{MODEL.version}"}}'] == 1
    assert samples["leadstream_batch_seconds_count"] >= 1
    lags = {k: v for k, v in samples.items() if k.startswith("leadstream_consumer_lag{")}
    assert len(lags) == len(settings.topics.inputs()) * settings.topic_partitions
    assert all(v == 0 for v in lags.values())
    assert samples['leadstream_rebalance_events_total{kind="assigned"}'] >= 1

    # The MQL's SLA timer (due a day after its back-dated handoff) fires once stream time follows
    # the wall clock, 30 s after the last event: the timer metrics count it.
    deadline = time.monotonic() + 120
    while (samples := scrape(port))["leadstream_timers_fired_total"] < 1:
        assert time.monotonic() < deadline, "no timer fired"
        time.sleep(1)
    assert samples["leadstream_timers_due_total"] >= 1


def test_router_metrics_count_assignments_and_read_its_lag(settings):
    ensure_topics(settings)
    produce_all(make_producer(settings), [(settings.topics.handoffs, b"c1", b"{}")])
    registry, on_assignment = router_registry(settings, router_group(settings))
    on_assignment({"handoff_kind": "mql", "queue": "enterprise"})
    text = generate_latest(registry).decode()
    assert 'leadstream_assignments_total{kind="mql",queue="enterprise"} 1.0' in text
    # The router never ran: its group has committed nothing, so the handoff is lag.
    assert (
        sum(
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith("leadstream_consumer_lag{")
        )
        == 1
    )
