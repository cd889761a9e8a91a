"""A worker scores its partitions near event-time order by holding back records far ahead
(streams/kafka/in_step.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from leadstream.engine.eventtime.watermarks import PartitionProgress
from leadstream.engine.records import SourceRecord
from leadstream.kafka.in_step import InStep, peek_event_time

HOUR = 3600.0


def record(topic: str, partition: int, offset: int, at: float | None) -> SourceRecord:
    body = {"type": "page_view", "event_id": f"{topic}-{partition}-{offset}"}
    if at is not None:
        body["occurred_at"] = datetime.fromtimestamp(at, tz=UTC).isoformat()
    return SourceRecord(topic, partition, offset, orjson.dumps(body), None, None, ())


def reading(name: str, high: int, processed: int = 0) -> PartitionProgress:
    """A partition this worker owns, ``high`` its log end, nothing of it processed yet."""
    return PartitionProgress(name, processed=processed, high=high, at=0.0)


def offsets(records: list[SourceRecord]) -> list[tuple[str, int]]:
    return [(r.topic, r.offset) for r in records]


def test_the_event_time_is_read_from_events_and_accounts_and_none_when_it_is_not_plain():
    assert peek_event_time(record("t", 0, 0, 1_000.0)) == 1_000.0
    account = b'{"type":"account","updated_at":"2026-01-01T00:00:00+00:00"}'
    assert (
        peek_event_time(SourceRecord("a", 0, 0, account, None, None, ()))
        == datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    )
    for value in (
        b"not json",
        b"[1]",
        b'{"occurred_at": 12}',
        b'{"occurred_at":"2026-01-01T00:00:00"}',
        None,
    ):
        assert peek_event_time(SourceRecord("t", 0, 0, value, None, None, ())) is None


def test_records_ahead_of_the_slowest_partition_still_being_read_wait_for_it():
    step = InStep(slack_s=60.0, max_held=1000)
    forms = [record("forms", 0, i, i * HOUR) for i in range(10)]  # ten hours of forms
    progress = [reading("forms:0", high=10), reading("views:0", high=100)]
    # Views have not been read at all: every form waits.
    assert step.take(forms, progress, now=0.0) == []
    assert step.first_held() == {("forms", 0): 0} and step.waiting() == {("forms", 0)}
    # Views read up to 3.5 hours: forms up to then (and the slack) go, in offset order.
    views = [record("views", 0, i, i * 0.5 * HOUR) for i in range(8)]
    out = step.take(views, progress, now=1.0)
    assert offsets(out) == [("forms", 0), ("forms", 1), ("forms", 2), ("forms", 3)] + [
        ("views", i) for i in range(8)
    ]
    assert step.first_held() == {("forms", 0): 4}
    # The views reach the end of their log: nothing holds the forms back any more.
    assert offsets(step.take([], [reading("forms:0", 10), reading("views:0", high=8)], now=2.0)) == [
        ("forms", i) for i in range(4, 10)
    ]
    assert step.held == 0 and step.first_held() == {}


def test_caught_up_partitions_hold_nothing_back_so_live_records_never_wait():
    step = InStep(slack_s=60.0, max_held=1000)
    live = [record("views", 0, 41, 10 * HOUR)]
    # Webinars is idle and read to its end; forms' last record was read long ago and is its last.
    progress = [
        reading("views:0", high=42),
        reading("webinars:0", high=7, processed=7),
        reading("forms:0", 3, 3),
    ]
    assert offsets(step.take(live, progress, now=0.0)) == [("views", 41)]


def test_a_partition_read_to_its_end_still_holds_the_others_back_for_idle_s_after_its_last_record():
    """A producer writes a contact's webinar (10:00) and then its form (18:00) to two topics at
    once; the form can be fetched while the webinar's partition looks read to its end."""

    def progress(webinars_high: int, forms_high: int) -> list[PartitionProgress]:
        return [reading("webinars:0", webinars_high, 0), reading("forms:0", forms_high, 0)]

    def started(idle_s: float) -> InStep:
        step = InStep(slack_s=60.0, max_held=1000, idle_s=idle_s)
        first = [record("forms", 0, 0, 1 * HOUR), record("webinars", 0, 0, 3 * HOUR)]
        out = step.take(first, progress(1, 1), now=0.0) + step.take([], progress(1, 1), now=0.5)
        assert sorted(offsets(out)) == [("forms", 0), ("webinars", 0)] and step.held == 0
        return step

    webinar, form = record("webinars", 0, 1, 10 * HOUR), record("forms", 0, 1, 18 * HOUR)
    step = started(idle_s=0.25)
    assert offsets(step.take([webinar], progress(2, 1), now=1.0)) == [("webinars", 1)]
    assert step.take([form], progress(2, 2), now=1.1) == []  # the webinars may bring more
    later_webinar = record("webinars", 0, 2, 12 * HOUR)
    assert offsets(step.take([later_webinar], progress(3, 2), now=1.2)) == [("webinars", 2)]
    assert step.take([], progress(3, 2), now=1.4) == []  # 0.2 s since its last record
    assert offsets(step.take([], progress(3, 2), now=1.5)) == [("forms", 1)]  # idle: it goes

    without = started(idle_s=0.0)
    assert offsets(without.take([webinar], progress(2, 1), now=1.0)) == [("webinars", 1)]
    assert offsets(without.take([form], progress(2, 2), now=1.1)) == [("forms", 1)]


def test_live_records_never_wait_for_a_partition_with_a_backlog():
    step = InStep(slack_s=60.0, max_held=1000)
    now = 1_800_000_000.0
    # A partition catching up on a backlog from an hour ago, another one live.
    progress = [reading("backlog:0", high=10_000), reading("live:0", high=100)]
    backlog = [record("backlog", 0, 0, now - HOUR)]
    live = [record("live", 0, 7, now - 2.0), record("live", 0, 8, now - 1.0)]
    out = step.take(backlog + live, progress, now=0.0, wall=now)
    assert offsets(out) == [("backlog", 0), ("live", 7), ("live", 8)]
    # The same records an hour later (a replay of history): the live partition's wait.
    step = InStep(slack_s=60.0, max_held=1000)
    out = step.take(backlog + live, progress, now=0.0, wall=now + 2 * HOUR)
    assert offsets(out) == [("backlog", 0)] and step.first_held() == {("live", 0): 7}


def test_a_partition_read_to_its_end_does_not_hold_back_even_with_its_own_records_held():
    step = InStep(slack_s=0.001, max_held=1000)
    a = [record("a", 0, 0, 0.0), record("a", 0, 1, 5 * HOUR)]
    b = [record("b", 0, 0, 1 * HOUR)]
    progress = [reading("a:0", high=2), reading("b:0", high=50)]
    assert offsets(step.take(a + b, progress, now=0.0)) == [("a", 0), ("b", 0)]
    assert step.first_held() == {("a", 0): 1}


def test_records_without_a_readable_time_pass_but_never_ahead_of_a_held_one():
    step = InStep(slack_s=60.0, max_held=1000)
    progress = [reading("a:0", high=10), reading("b:0", high=10)]
    batch = [record("a", 0, 0, None), record("a", 0, 1, 9 * HOUR), record("a", 0, 2, None)]
    batch.append(record("b", 0, 0, 1 * HOUR))
    assert offsets(step.take(batch, progress, now=0.0)) == [("a", 0), ("b", 0)]
    assert step.first_held() == {("a", 0): 1}  # offset 2 stays behind offset 1: commits stop at 1


def test_past_max_held_the_earliest_records_go_first_and_nothing_is_lost():
    step = InStep(slack_s=60.0, max_held=3)
    progress = [reading("slow:0", high=100), reading("a:0", high=100), reading("b:0", high=100)]
    a = [record("a", 0, i, (2 * i + 1) * HOUR) for i in range(3)]
    b = [record("b", 0, i, (2 * i) * HOUR) for i in range(3)]
    out = step.take(a + b, progress, now=0.0)  # "slow" never read: everything would wait
    assert offsets(out) == [("b", 0), ("a", 0), ("b", 1)]
    assert step.held == 3


def test_a_slowest_partition_that_does_not_move_lets_everything_pass_until_it_does():
    step = InStep(slack_s=60.0, max_held=1000, patience_s=5.0)
    progress = [reading("stuck:0", high=100), reading("a:0", high=100)]
    assert step.take([record("a", 0, 0, HOUR)], progress, now=0.0) == []
    assert step.take([record("a", 0, 1, 2 * HOUR)], progress, now=4.0) == []
    assert offsets(step.take([], progress, now=6.0)) == [("a", 0), ("a", 1)]  # its leader gone, say
    assert offsets(step.take([record("a", 0, 2, 3 * HOUR)], progress, now=7.0)) == [("a", 2)]
    # It moves again: holding resumes.
    progress = [reading("stuck:0", high=100), reading("a:0", high=100)]
    moved = step.take([record("stuck", 0, 0, 0.0), record("a", 0, 3, 9 * HOUR)], progress, now=8.0)
    assert offsets(moved) == [("stuck", 0)] and step.first_held() == {("a", 0): 3}


def test_time_the_worker_spent_away_from_fetching_is_not_the_slowest_partition_standing_still():
    step = InStep(slack_s=60.0, max_held=1000, patience_s=5.0)
    progress = [reading("slow:0", high=100), reading("a:0", high=100)]
    assert step.take([record("a", 0, 0, HOUR)], progress, now=0.0) == []
    # 30 s in one batch (Redis away, the batch retried until it was back): still held.
    assert step.take([record("a", 0, 1, 2 * HOUR)], progress, now=30.0) == []
    assert step.take([], progress, now=33.0) == []
    # 5 s of fetching from then on with the slowest partition not moving: everything passes.
    assert offsets(step.take([], progress, now=35.5)) == [("a", 0), ("a", 1)]


def test_revoked_partitions_lose_their_held_records_to_their_next_owner_and_zero_turns_it_off():
    step = InStep(slack_s=60.0, max_held=1000)
    progress = [reading("a:0", high=100), reading("b:0", high=100)]
    step.take([record("a", 0, 0, 0.0), record("b", 0, 0, 9 * HOUR)], progress, now=0.0)
    assert step.waiting() == {("b", 0)}
    step.drop([("b", 0)])
    assert step.held == 0 and step.first_held() == {}
    step.take([record("b", 0, 5, 9 * HOUR)], progress, now=1.0)
    step.clear()
    assert step.held == 0
    off = InStep(slack_s=0.0, max_held=1000)
    batch = [record("a", 0, 0, 9 * HOUR), record("b", 0, 0, 0.0)]
    assert off.take(batch, [reading("b:0", high=100)], now=0.0) == batch


def test_pausing_sees_how_far_each_partition_has_been_read_held_records_included():
    step = InStep(slack_s=60.0, max_held=1000)
    step.take([record("a", 0, 6, 9 * HOUR)], [reading("a:0", high=100), reading("b:0", high=9)], now=0.0)
    seen = {p.partition: p for p in step.reading([reading("a:0", high=100), reading("b:0", high=9)])}
    assert seen["a:0"].max_event_time == 9 * HOUR and seen["a:0"].processed == 7
    assert seen["b:0"].processed == 0 and not seen["b:0"].caught_up


batches = st.lists(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.one_of(st.none(), st.floats(0, 100 * HOUR))),
        max_size=12,
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(batches, st.integers(1, 20), st.floats(0, 2 * HOUR))
def test_every_record_is_released_once_in_offset_order_and_commits_never_pass_a_held_one(
    fetched, max_held, slack
):
    step = InStep(slack_s=slack, max_held=max_held)
    next_offset = {"a": 0, "b": 0, "c": 0}
    total = {name: sum(1 for batch in fetched for t, _ in batch if t == name) for name in next_offset}
    released: list[SourceRecord] = []
    for now, batch in enumerate(fetched):
        records = []
        for topic, at in batch:
            records.append(record(topic, 0, next_offset[topic], at))
            next_offset[topic] += 1
        progress = [reading(f"{t}:0", high=total[t]) for t in total]
        out = step.take(records, progress, now=float(now))
        released += out
        assert step.held <= max(max_held, 0)
        done = {t: max((r.offset + 1 for r in released if r.topic == t), default=0) for t in total}
        for (topic, _), first in step.first_held().items():
            assert done[topic] <= first  # what was scored all comes before what is held
    released += step.take([], [reading(f"{t}:0", high=total[t]) for t in total], now=1e6)
    for topic in total:
        assert [r.offset for r in released if r.topic == topic] == list(range(total[topic]))
    assert step.held == 0
