"""A quiet contact's journal closes a horizon after its latest entry (engine/stages/journal.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from leadstream.config.loader import default_model_text, parse_model
from leadstream.config.settings import Topics
from leadstream.engine.eventtime.timers import CLOSE_RETRY_S, TimerService
from leadstream.engine.pipeline import ScoringPipeline
from leadstream.engine.ports import MemorySink
from leadstream.engine.records import SourceRecord
from leadstream.engine.stages.journal import CLOSE_STEP_S
from leadstream.scoring import compile_model
from leadstream.state import MemoryStateStore
from leadstream.state.keys import TIMER_SHARDS, contact_key, record_id, timer_key, timer_member
from leadstream.state.port import StoredRecord
from tests.factories import Releasing as Release
from tests.factories import at, buyer_journey, encode, form, page

TOPICS = Topics()
MODEL = parse_model(default_model_text(), "default")
DAY = 86_400.0
HORIZON = 7 * DAY
JOURNAL_FIELDS = ("j:", "b", "c", "jt")


NEVER = Release(lambda _at, _record_time: False)


def read_to(moment: float) -> Release:
    """Every input partition read up to ``moment`` in event time, none of them idle."""
    return Release(lambda at, _record_time: at <= moment)


def seconds(event: dict) -> float:
    return datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00")).timestamp()


class Harness:
    """The embedded pipeline and the timer service over one in-memory store; records carry the
    time they reached Kafka (``lag`` seconds after their event time), as a live stream's do."""

    def __init__(self, lag: float = 1.0) -> None:
        self.store, self.sink = MemoryStateStore(), MemorySink()
        self.pipeline = ScoringPipeline(self.store, self.sink, MODEL, TOPICS)
        compiled = compile_model(MODEL)
        self.timers = TimerService(
            self.store, self.store, self.sink, compiled, TOPICS, "ls", horizon_s=HORIZON
        )
        self.offset, self.lag = 0, lag

    def send(self, events: list[dict]) -> None:
        batch = []
        for event in events:
            stamp = int((seconds(event) + self.lag) * 1000)
            batch.append(SourceRecord("in", 0, self.offset, encode(event), timestamp_ms=stamp))
            self.offset += 1
        asyncio.run(self.pipeline.process(batch))

    def tick(self, now: float, release: Release | None = None) -> None:
        asyncio.run(self.timers.tick(now, release))

    def record(self, contact: str) -> StoredRecord:
        key = contact_key("ls", contact)
        return asyncio.run(self.store.load([key]))[key]

    def journal(self, contact: str) -> list[str]:
        return sorted(n for n in self.record(contact).parts if n.startswith(JOURNAL_FIELDS))

    def close_timer(self, contact: str) -> float | None:
        member = timer_member(record_id(contact_key("ls", contact)), "journal")
        for shard in range(TIMER_SHARDS):
            for found, due in asyncio.run(self.store.due(timer_key("ls", shard), float("inf"), 10_000)):
                if found == member:
                    return due
        return None

    def outputs(self) -> list[tuple[str, dict]]:
        return [(r.topic, json.loads(r.value or b"null")) for r in self.sink.records]


def test_a_quiet_contacts_journal_closes_a_horizon_after_its_latest_entry():
    h = Harness()
    journey = buyer_journey("c1")
    h.send(journey)
    assert "b" in h.journal("c1") and any(n.startswith("j:") for n in h.journal("c1"))
    latest = max(seconds(e) for e in journey) + h.lag  # the latest record time
    due = h.close_timer("c1")
    assert due is not None and latest + HORIZON <= due < latest + HORIZON + CLOSE_STEP_S
    assert h.record("c1").parts["jt"] == repr(due).encode()  # the commit knows it without the entries
    journal = h.journal("c1")

    for _ in range(4):  # the SLA breaches due by then, one step per tick (they update the checkpoint)
        h.tick(due - 1)
    assert h.journal("c1") == journal and h.close_timer("c1") == due  # not due yet
    before = h.record("c1")

    h.tick(due)
    after = h.record("c1")
    assert h.journal("c1") == [] and after.value == before.value  # the state stays as it was
    assert h.close_timer("c1") is None and h.timers.journals_closed == 1


def test_a_journal_stays_while_the_stream_is_not_past_it_and_is_looked_at_again_later():
    h = Harness()
    h.send(buyer_journey("c1"))
    due = h.close_timer("c1")
    assert due is not None
    journal = h.journal("c1")

    h.tick(due, NEVER)  # a partition still behind the horizon
    assert h.journal("c1") == journal
    assert h.close_timer("c1") == due + CLOSE_RETRY_S  # not left due, holding other timers

    h.tick(due + CLOSE_RETRY_S)
    assert h.journal("c1") == [] and h.close_timer("c1") is None


def test_visits_move_the_close_time_not_the_timer_which_moves_itself_when_it_fires_early():
    h = Harness()
    h.send(buyer_journey("c1"))
    first = h.close_timer("c1")
    assert first is not None and h.record("c1").parts["jt"] == repr(first).encode()
    for day in (2, 4):  # visits on later days: the journal may close later, its timer stays
        h.send([page("c1", "/docs", at(day))])
        assert h.close_timer("c1") == first
        assert not any(e.startswith("t:journal") for e in h.record("c1").outbox)  # none written
    close_at = float(h.record("c1").parts["jt"])
    assert close_at >= seconds({"occurred_at": at(4)}) + HORIZON > first
    journal = h.journal("c1")

    h.tick(first, read_to(first))  # early: the stream is not a horizon past the visits yet
    assert h.journal("c1") == journal and h.timers.journals_closed == 0
    assert h.close_timer("c1") == close_at  # looked at again at the close time, not an hour on

    h.tick(close_at, read_to(close_at))
    assert h.journal("c1") == [] and h.close_timer("c1") is None and h.timers.journals_closed == 1


def test_after_closing_a_late_input_is_applied_after_the_state_and_a_new_journal_starts():
    h = Harness()
    h.send(buyer_journey("c1"))
    h.tick(h.close_timer("c1") or 0.0)
    assert h.journal("c1") == []
    h.send([page("c1", "/docs", at(0.5))])  # older than anything the contact keeps: nothing to replay
    assert h.pipeline.counters.applied == 6 and h.pipeline.counters.replays == 0
    assert "b" in h.journal("c1")  # a new journal, from the state as it was stored
    assert h.close_timer("c1") is not None


# Contacts 1-3 with events anywhere in 40 days (the first contact: a buyer journey on day 0 and
# nothing after, so at least one journal always closes); timers ticked after every batch.
event_plans = st.lists(
    st.tuples(
        st.integers(1, 3),
        st.floats(0, 40, allow_nan=False),
        st.sampled_from(["/pricing", "/docs", "/case-studies/x", "demo_request", "newsletter"]),
    ),
    min_size=1,
    max_size=25,
)


def journeys(plan: list[tuple[int, float, str]]) -> list[list[dict]]:
    events = []
    for contact, day, what in sorted(plan, key=lambda item: item[1]):
        name = f"c{contact}"
        events.append(form(name, what, at(day)) if not what.startswith("/") else page(name, what, at(day)))
    batches = [buyer_journey("c0")] + [events[i : i + 3] for i in range(0, len(events), 3)]
    last_day = (max(seconds(e) for b in batches for e in b) - seconds({"occurred_at": at(0)})) / DAY
    # On time, after every journal could close: the same state whether it closed or not.
    return [*batches, [page(f"c{c}", "/pricing", at(last_day + 9)) for c in range(4)]]


@settings(max_examples=25, deadline=None)
@given(event_plans)
def test_closing_journals_changes_no_handoff_or_state_of_inputs_in_event_time_order(plan):
    closing, keeping = Harness(), Harness()
    for batch in journeys(plan):
        for h, release in ((closing, None), (keeping, NEVER)):
            h.tick(min(seconds(e) for e in batch), release)  # the timers keep up with the stream
            h.send(batch)
            h.tick(max(seconds(e) for e in batch) + h.lag, release)
    assert closing.timers.journals_closed >= 1 and keeping.timers.journals_closed == 0
    assert closing.outputs() == keeping.outputs()
    for contact in ("c0", "c1", "c2", "c3"):
        assert closing.record(contact).value == keeping.record(contact).value


def test_a_published_decisions_checkpoint_holds_its_decisions_only_and_a_late_input_keeps_them():
    """The checkpoint stored while a journal is open is read only for its decision fields: it
    holds those as they were right after the handoff, none of the contact's inputs, and a late
    input before the handoff is applied in place without the contact qualifying again."""
    from leadstream.scoring.timeline import DECISION_FIELDS
    from leadstream.state.port import CHECKPOINT_PART, decode_state

    harness = Harness()
    harness.send(buyer_journey("c1"))
    [handoff] = [value for topic, value in harness.outputs() if topic == TOPICS.handoffs]
    published = len(harness.outputs())
    stored = harness.record("c1")
    state, checkpoint = decode_state(stored.value), decode_state(stored.parts[CHECKPOINT_PART])
    for name in DECISION_FIELDS:
        assert getattr(checkpoint, name) == getattr(state, name), name
    assert checkpoint.mql_count == 1 and checkpoint.published_key is not None
    assert state.recent and state.pages and state.seen_ids and state.rules
    assert not (checkpoint.recent or checkpoint.pages or checkpoint.seen_ids or checkpoint.rules)
    assert len(stored.parts[CHECKPOINT_PART]) < len(stored.value)

    harness.send([page("c1", "/pricing", at(0.1))])  # before the handoff, inside the horizon
    assert len(harness.outputs()) == published
    after = decode_state(harness.record("c1").value)
    assert after.mql_count == 1 and after.last_handoff_id == handoff["handoff_id"]
    assert after.pages["/pricing"] == state.pages["/pricing"] + 1
