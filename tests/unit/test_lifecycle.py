"""The lifecycle after the handoff: sales outcomes, re-qualification, decay and SLA timers."""

from __future__ import annotations

import asyncio
import json
import math

from leadstream.config.loader import default_model_text, parse_model
from leadstream.config.settings import Topics
from leadstream.engine.eventtime.timers import TimerService
from leadstream.engine.pipeline import ScoringPipeline
from leadstream.engine.ports import MemorySink
from leadstream.engine.records import SourceRecord
from leadstream.scoring import compile_model
from leadstream.scoring.engagement import engagement
from leadstream.state import MemoryStateStore
from leadstream.state.keys import contact_key
from leadstream.state.port import decode_state
from tests.factories import at, buyer_journey, encode, form, page, parse

TOPICS = Topics()
MODEL = parse_model(default_model_text(), "default")


def outcome(contact, result, when, **extra):
    return {
        "event_id": f"o-{contact}-{result}-{when}",
        "type": "sales_outcome",
        "occurred_at": when,
        "contact_id": contact,
        "outcome": result,
        **extra,
    }


class Harness:
    def __init__(self, model=MODEL):
        self.model = model
        self.store, self.sink = MemoryStateStore(), MemorySink()
        self.pipeline = ScoringPipeline(self.store, self.sink, model, TOPICS)
        self.timers = TimerService(self.store, self.store, self.sink, compile_model(model), TOPICS, "ls")
        self.offset = 0

    def send(self, events):
        batch = []
        for event in events:
            batch.append(SourceRecord("in", 0, self.offset, encode(event)))
            self.offset += 1
        asyncio.run(self.pipeline.process(batch))

    def tick(self, now):
        return asyncio.run(self.timers.tick(now))

    def lifecycle(self):
        return [json.loads(r.value) for r in self.sink.on_topic(TOPICS.lifecycle)]

    def handoffs(self):
        return [json.loads(r.value) for r in self.sink.on_topic(TOPICS.handoffs)]

    def state(self, contact):
        key = contact_key("ls", contact)
        return decode_state(asyncio.run(self.store.load([key]))[key].value)


def stages(events):
    return [(e["from_stage"], e["to_stage"]) for e in events if e["kind"] == "transition"]


def test_accept_makes_an_sql_and_stops_the_clocks():
    h = Harness()
    h.send(buyer_journey("c1"))
    handoff = h.handoffs()[0]
    assert stages(h.lifecycle()) == [("lead", "mql")]
    assert set(h.state("c1").timers) == {"sla", "decay"}
    h.send([outcome("c1", "accepted", at(2), handoff_id=handoff["handoff_id"])])
    assert stages(h.lifecycle()) == [("lead", "mql"), ("mql", "sql")]
    assert h.state("c1").timers == {}
    assert h.tick(parse(buyer_journey("x")[0]).occurred_at.timestamp() + 400 * 86_400) == 0


def test_reject_recycles_and_new_engagement_qualifies_again_with_a_new_id():
    h = Harness()
    h.send(buyer_journey("c2"))
    h.send([outcome("c2", "rejected", at(1.5), reason="no budget")])
    assert h.lifecycle()[-1]["to_stage"] == "recycled" and "no budget" in h.lifecycle()[-1]["reason"]
    # The rejection named no handoff: it concerns the open one, and says so.
    assert h.lifecycle()[-1]["handoff_id"] == h.handoffs()[0]["handoff_id"]
    h.send(
        [page("c2", "/pricing", at(10)), page("c2", "/pricing", at(10.5)), form("c2", "demo_request", at(11))]
    )
    assert len(h.handoffs()) == 1  # still above the re-arm band 10 days later: no new handoff
    h.send(
        [
            page("c2", "/pricing", at(100)),
            page("c2", "/pricing", at(100.5)),
            form("c2", "demo_request", at(101)),
        ]
    )
    first, second = h.handoffs()
    assert (first["qualification_number"], second["qualification_number"]) == (1, 2)
    assert first["handoff_id"] != second["handoff_id"]
    assert stages(h.lifecycle())[-1] == ("recycled", "mql")


def test_sla_breach_once_per_step_at_the_due_time():
    h = Harness()
    h.send(buyer_journey("c3"))
    handoff = h.handoffs()[0]
    due = parse({**buyer_journey("y")[0], "occurred_at": handoff["follow_up_due_at"]}).occurred_at.timestamp()
    assert h.tick(due - 1) == 0
    assert h.tick(due) == 1
    assert h.tick(due + 3600) == 0  # once
    breaches = [e for e in h.lifecycle() if e["kind"] == "sla_breached"]
    assert [(b["step"], b["escalation"]) for b in breaches] == [(0, "rep")]
    assert breaches[0]["handoff_id"] == handoff["handoff_id"]
    h.tick(due + 24 * 3600)
    assert [b["escalation"] for b in h.lifecycle() if b["kind"] == "sla_breached"] == ["rep", "sdr_manager"]


def test_decayed_mql_is_recycled_at_the_predicted_time_without_a_new_event():
    h = Harness()
    h.send(buyer_journey("c4"))
    state = h.state("c4")
    predicted = state.timers["decay"]
    compiled = compile_model(MODEL)
    bar = MODEL.thresholds.engagement
    assert (
        engagement(compiled, state, predicted - 1)[0] >= bar > engagement(compiled, state, predicted + 1)[0]
    )
    h.tick(predicted - 1)
    assert [e for e in h.lifecycle() if e.get("to_stage") == "recycled"] == []
    h.tick(predicted + 0.5)
    [recycled] = [e for e in h.lifecycle() if e.get("to_stage") == "recycled"]
    assert math.isclose(
        parse({**buyer_journey("z")[0], "occurred_at": recycled["at"]}).occurred_at.timestamp(),
        predicted,
        abs_tol=1e-5,
    )
    assert "decayed" in recycled["reason"]
    assert recycled["handoff_id"] == h.handoffs()[0]["handoff_id"]
    assert h.state("c4").stage == "recycled" and h.state("c4").timers == {}


def test_the_same_events_fire_the_same_timers_without_the_timer_service():
    """A replay has no wall clock: a contact's next event fires what came due before it."""
    live, replay = Harness(), Harness()
    journey = buyer_journey("c5")
    later = [page("c5", "/blog/x", at(200))]
    live.send(journey)
    live.tick(parse(later[0]).occurred_at.timestamp() - 1)
    live.send(later)
    replay.send(journey + later)
    assert live.lifecycle() == replay.lifecycle()
    assert [e["kind"] for e in replay.lifecycle()].count("sla_breached") == 3
    assert math.isclose(live.state("c5").clock, replay.state("c5").clock)


def test_sla_breaches_name_the_handoff_even_after_the_model_version_changed():
    first = Harness()
    first.send(buyer_journey("c6"))
    handoff = first.handoffs()[0]
    newer = MODEL.model_copy(update={"version": f"{MODEL.version}-next"})
    h = Harness(newer)
    h.store = first.store  # the same state, now scored by the next model version
    h.timers = TimerService(h.store, h.store, h.sink, compile_model(newer), TOPICS, "ls")
    due = parse({**buyer_journey("y")[0], "occurred_at": handoff["follow_up_due_at"]}).occurred_at.timestamp()
    assert h.tick(due) == 1
    [breach] = [e for e in h.lifecycle() if e["kind"] == "sla_breached"]
    assert breach["handoff_id"] == handoff["handoff_id"] and breach["model_version"] == newer.version
