"""The `leadstream` command as a user runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from leadstream.config.settings import settings_to_env

pytestmark = pytest.mark.e2e


def leadstream(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leadstream.cli", *args],
        capture_output=True,
        text=True,
        check=check,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_generate_is_deterministic_and_replay_summarises(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    start = "2026-06-01T00:00:00+00:00"
    leadstream("generate", "--seed", "5", "--contacts", "200", "--start", start, "--out", str(a))
    leadstream("generate", "--seed", "5", "--contacts", "200", "--start", start, "--out", str(b))
    assert a.read_bytes() == b.read_bytes()
    out = leadstream("replay", str(a)).stdout
    assert out.splitlines()[-1].startswith("summary: ")
    assert "MQL handoffs" in out and "contacts" in out
    assert any(line.startswith("MQL ") for line in out.splitlines())


def test_replay_dead_letters_bad_lines_and_goes_on(tmp_path):
    path = tmp_path / "mixed.jsonl"
    leadstream("generate", "--seed", "6", "--contacts", "50", "--out", str(path))
    lines = path.read_text().splitlines()
    lines.insert(3, "{broken")
    path.write_text("\n".join(lines) + "\n")
    out = leadstream("replay", "--quiet", str(path)).stdout
    assert "1 dead letters" in out
    assert f"summary: {len(lines)} events" in out


def test_missing_replay_file_and_bad_model_say_what_is_wrong(tmp_path):
    missing = leadstream("replay", str(tmp_path / "nope.jsonl"), check=False)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    bad = tmp_path / "model.yaml"
    bad.write_text("version: x\nthresholds: {fit: 1}\n")
    result = leadstream("--model", str(bad), "validate", check=False)
    assert result.returncode == 2
    assert f"{bad}:2:" in result.stderr


def test_replay_says_which_lines_were_dead_lettered_and_why(tmp_path):
    path = tmp_path / "mixed.jsonl"
    leadstream("generate", "--seed", "6", "--contacts", "20", "--out", str(path))
    lines = path.read_text().splitlines()
    lines.insert(2, "{broken")
    lines.insert(5, '{"type": "page_view"}')
    path.write_text("\n".join(lines) + "\n")
    result = leadstream("replay", "--quiet", str(path))
    said = [line for line in result.stderr.splitlines() if "dead letter (" in line]
    assert len(said) == 2, result.stderr
    assert said[0].startswith("leadstream replay: line 3: dead letter (json)")
    assert said[1].startswith("leadstream replay: line 6: dead letter (schema)")


def test_replay_reads_stdin_for_a_dash_and_refuses_a_directory(tmp_path):
    path = tmp_path / "events.jsonl"
    leadstream("generate", "--seed", "7", "--contacts", "30", "--out", str(path))
    from_file = leadstream("replay", "--quiet", str(path)).stdout
    from_stdin = subprocess.run(
        [sys.executable, "-m", "leadstream.cli", "replay", "--quiet", "-"],
        input=path.read_text(),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    assert from_stdin == from_file
    directory = leadstream("replay", str(tmp_path), check=False)
    assert directory.returncode == 2 and "is a directory" in directory.stderr


@pytest.mark.integration
def test_demo_then_explain(settings):
    env = settings_to_env(settings)
    demo = leadstream("demo", "--contacts", "80", "--seed", "21", env=env)
    assert "summary:" in demo.stdout
    mql_lines = [line for line in demo.stdout.splitlines() if line.strip().startswith("MQL ")]
    assert mql_lines, demo.stdout
    contact = mql_lines[0].split()[1]
    explained = leadstream("explain", contact, env=env).stdout
    assert f"contact {contact}" in explained
    assert "fit " in explained and "engagement " in explained and "MQL handoffs so far: 1" in explained
    # The lifecycle stage, and whether and why the contact hands off again (not a bare "no"):
    # still an open MQL, or recycled once its engagement decayed (the demo's SLA/decay timers).
    stage = re.search(r"^stage (\w+);", explained, re.MULTILINE)
    assert stage and stage.group(1) in {"mql", "recycled"}, explained
    if stage.group(1) == "mql":
        assert "hands off again: no - stage 'mql'" in explained
    else:
        assert re.search(r"hands off again: (yes|no) - \S", explained), explained

    # Scores are read at the stream's event time (as the demo printed them), not the wall clock:
    # the demo's events are back-dated, so the wall clock would show them decayed.
    as_json = json.loads(leadstream("explain", contact, "--json", env=env).stdout)
    assert as_json["scored_at_source"] == "stream" and as_json["scored_at"] >= as_json["last_event_at"]
    at = as_json["scored_at"]
    at_stream = json.loads(leadstream("explain", contact, "--json", "--at", at, env=env).stdout)
    assert at_stream["engagement"] == as_json["engagement"]
    now = datetime.now(UTC).isoformat()
    at_wall_clock = json.loads(leadstream("explain", contact, "--json", "--at", now, env=env).stdout)
    assert at_wall_clock["engagement"]["score"] < as_json["engagement"]["score"]

    lines = demo.stdout.splitlines()
    account = next(line.split()[1] for line in lines if line.strip().startswith("ACCOUNT "))
    table = leadstream("explain", "--account", account, env=env).stdout
    header = next(line for line in table.splitlines() if line.startswith("ENGAGED"))
    assert header.split() == ["ENGAGED", "ENGAGEMENT", "CONTACT", "ROLE", "TITLE", "LAST", "EVENT"]
    assert "{" not in table, "firmographics are shown as fields, not a Python dict"
    assert "missing:" in table


@pytest.mark.integration
def test_report_without_a_worker_warns_and_judges_nothing(settings):
    """Outcomes waiting on the feedback topic are not in the report: it says so, and gives no
    verdict on MQLs nobody answered."""
    from leadstream.kafka.clients import make_producer
    from leadstream.kafka.topic_io import produce_all
    from leadstream.kafka.topics import ensure_topics
    from tests.factories import encode

    ensure_topics(settings)
    outcome = {
        "event_id": "o-1",
        "type": "sales_outcome",
        "occurred_at": "2026-03-02T10:00:00Z",
        "contact_id": "c-1",
        "outcome": "accepted",
    }
    produce_all(make_producer(settings), [(settings.topics.feedback, b"c-1", encode(outcome))])
    report = leadstream("report", env=settings_to_env(settings))
    assert f"1 record(s) on {settings.topics.feedback} not yet processed" in report.stderr
    assert "Start `leadstream worker`" in report.stderr
    assert "too loose" not in report.stdout
