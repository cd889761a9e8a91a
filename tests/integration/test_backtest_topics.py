"""`leadstream backtest --from-topics` reads the history where it lives: the input topics from
offset 0, outcomes from the feedback topic; it gives what the same records give from a file."""

from __future__ import annotations

import json

import pytest

from leadstream.config.loader import default_model_text
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.tools.backtest import backtest_command
from leadstream.tools.generator import JourneyGenerator, default_start, to_records
from leadstream.tools.ground_truth import planted_outcomes

pytestmark = pytest.mark.integration


def test_from_topics_equals_the_file(settings, tmp_path, capsys):
    ensure_topics(settings)
    events = JourneyGenerator(seed=13, contacts=400, start=default_start()).events()
    outcomes = planted_outcomes(events, 13)
    # In event-time order in the file, as the topics are read back for a backtest.
    history = sorted([*events, *outcomes], key=lambda e: e.get("occurred_at") or e["updated_at"])
    produce_all(make_producer(settings), list(to_records(history, settings.topics)))
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in history))
    model = tmp_path / "model.yaml"
    model.write_text(default_model_text())

    assert backtest_command(None, [model], None, [], settings, as_json=True) == 0
    from_topics = json.loads(capsys.readouterr().out)
    assert backtest_command(path, [model], None, [], settings, as_json=True) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert from_topics["events"] == from_file["events"] == len(history)
    live, filed = from_topics["models"]["model"], from_file["models"]["model"]
    assert live["mqls"] == filed["mqls"] > 0
    assert live["mql_to_sql"] == filed["mql_to_sql"] is not None
    assert live["buying_groups"] == filed["buying_groups"]
