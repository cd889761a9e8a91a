"""Sales feedback, re-qualification, decay and SLA timers through `leadstream worker`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from leadstream.config.loader import default_model_text
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import TopicTail, produce_all
from leadstream.kafka.topics import ensure_topics
from tests.factories import GOOD_FIT, encode, form, identify, page
from tests.integration.helpers import wait_caught_up

pytestmark = pytest.mark.integration


def fast_model(tmp_path):
    """The default model with half-lives of ~86 s and an SLA of ~11 s, so timers fire during a test."""
    text = default_model_text()
    for days in ("30", "21", "14", "60"):
        text = text.replace(f"half_life_days: {days} }}", "half_life_days: 0.001 }")
    text = text.replace("sla_hours: 24 ", "sla_hours: 0.003 ")
    text = text.replace(
        "after_due_hours: 24, escalation: sdr_manager", "after_due_hours: 0.002, escalation: sdr_manager"
    )
    text = text.replace(
        "after_due_hours: 72, escalation: head_of_sales", "after_due_hours: 1, escalation: head_of_sales"
    )
    text = text.replace("cooldown_days: 14", "cooldown_days: 0")
    path = tmp_path / "fast.yaml"
    path.write_text(text)
    return path


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def journey(contact, start):
    step = timedelta(seconds=1)
    return [
        identify(contact, iso(start), f"{contact}@acme-labs.com", **GOOD_FIT),
        page(contact, "/pricing", iso(start + step)),
        page(contact, "/pricing", iso(start + 2 * step)),
        form(contact, "demo_request", iso(start + 3 * step)),
    ]


def outcome(contact, result, when, **extra):
    return {
        "event_id": f"o-{contact}-{result}",
        "type": "sales_outcome",
        "occurred_at": iso(when),
        "contact_id": contact,
        "outcome": result,
        **extra,
    }


@pytest.mark.parametrize("engine", ["faust", "confluent"])
def test_feedback_requalification_sla_and_decay(settings, start_worker, tmp_path, engine):
    settings = settings.model_copy(update={"model_path": fast_model(tmp_path), "worker_engine": engine})
    ensure_topics(settings)
    lifecycle = TopicTail(settings, settings.topics.lifecycle)
    handoff_tail = TopicTail(settings, settings.topics.handoffs)
    start_worker(settings)
    producer = make_producer(settings)
    now = datetime.now(UTC).replace(microsecond=0)

    def send(events):
        produce_all(producer, [(settings.topics.forms, e["contact_id"].encode(), encode(e)) for e in events])

    send(
        journey("acc", now - timedelta(seconds=8))
        + journey("rej", now - timedelta(seconds=8))
        + journey("idle", now - timedelta(seconds=8))
    )
    wait_caught_up(settings)
    first = {h["contact_id"]: h for h in (json.loads(m.value()) for m in handoff_tail.read(3, 30))}
    assert set(first) == {"acc", "rej", "idle"}
    send(
        [
            outcome("acc", "accepted", now - timedelta(seconds=3), handoff_id=first["acc"]["handoff_id"]),
            outcome("rej", "rejected", now - timedelta(seconds=3), reason="student project"),
        ]
    )
    # Rejected, then new intent a few half-lives later (event time) qualifies again with a new id.
    send(journey("rej", now + timedelta(seconds=250))[1:])
    wait_caught_up(settings)
    [again] = [json.loads(m.value()) for m in handoff_tail.read(1, 30)]
    assert again["contact_id"] == "rej" and again["qualification_number"] == 2
    assert again["handoff_id"] != first["rej"]["handoff_id"]

    # "idle" is left alone: an SLA breach per step, then recycled when its engagement decays.
    events, arrivals = [], {}

    def seen(contact, to_stage):
        return any(e["contact_id"] == contact and e.get("to_stage") == to_stage for e in events)

    deadline = time.monotonic() + 120
    for message in lifecycle.poll(deadline):
        event = json.loads(message.value())
        events.append(event)
        arrivals[event.get("transition_id") or event["breach_id"]] = time.time()
        if seen("idle", "recycled") and seen("acc", "sql") and seen("rej", "recycled"):
            break
    lifecycle.close()
    handoff_tail.close()

    transitions = [
        (e["contact_id"], e["from_stage"], e["to_stage"]) for e in events if e["kind"] == "transition"
    ]
    assert ("acc", "mql", "sql") in transitions
    assert ("rej", "mql", "recycled") in transitions and ("rej", "recycled", "mql") in transitions
    assert ("idle", "mql", "recycled") in transitions
    breaches = [
        (e["step"], e["escalation"])
        for e in events
        if e["kind"] == "sla_breached" and e["contact_id"] == "idle"
    ]
    assert breaches == [(0, "rep"), (1, "sdr_manager")]  # once per step
    assert not [e for e in events if e["kind"] == "sla_breached" and e["contact_id"] == "acc"]
    recycled = next(e for e in events if e["contact_id"] == "idle" and e.get("to_stage") == "recycled")
    lag = arrivals[recycled["transition_id"]] - datetime.fromisoformat(recycled["at"]).timestamp()
    print(f"decay flag arrived {lag:.3f}s after its predicted time")  # reported, not asserted
