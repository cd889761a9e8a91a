"""`leadstream report` on generated data with a simulated sales team answering the handoffs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from leadstream.config.loader import load_model
from leadstream.config.settings import settings_to_env
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import produce_all, read_topic
from leadstream.kafka.topics import ensure_topics
from leadstream.tools.generator import JourneyGenerator, default_start, to_records
from leadstream.tools.sales_sim import outcomes_for
from tests.integration.helpers import wait_caught_up

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def leadstream(settings, *args):
    return subprocess.run(
        [sys.executable, "-m", "leadstream.cli", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={**os.environ, **settings_to_env(settings)},
    )


def test_report_measures_conversion_by_model_version(settings, start_worker):
    ensure_topics(settings)
    start_worker(settings)
    events = JourneyGenerator(seed=31, contacts=800, start=default_start()).events()
    produce_all(make_producer(settings), to_records(events, settings.topics))
    wait_caught_up(settings)
    leadstream(settings, "simulate-sales", "--idle-exit", "2")
    wait_caught_up(settings)

    report = json.loads(leadstream(settings, "report", "--json").stdout)
    handoffs = [h for h in read_topic(settings, settings.topics.handoffs) if h["kind"] == "mql"]
    now = datetime.now(UTC)
    accepted = sum(1 for h in handoffs if any(o["outcome"] == "accepted" for o in outcomes_for(h, now)))
    won = sum(1 for h in handoffs if any(o["outcome"] == "closed_won" for o in outcomes_for(h, now)))
    [(version, row)] = report["by_version"].items()
    assert version == load_model().version
    assert row["mqls"] == len(handoffs) > 50
    assert row["sqls"] == accepted and row["closed_won"] == won
    assert row["mql_to_sql"] == round(accepted / len(handoffs), 4)
    assert 0 < row["sla_breach_rate"] < 1 and row["median_hours_to_first_touch"] is not None
    assert "MQL->SQL" in row["verdict"] or "too" in row["verdict"]
    assert sum(r["mqls"] for r in report["by_version_and_week"]) == row["mqls"]
    table = leadstream(settings, "report").stdout
    assert load_model().version in table and "by week:" in table
