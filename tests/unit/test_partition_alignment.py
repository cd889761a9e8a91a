"""A worker reads its partitions in step in event time (streams/kafka/alignment.py)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from leadstream.engine.eventtime.watermarks import PartitionProgress
from leadstream.kafka.alignment import EventTimeAlignment

DAY = 86_400.0


def behind(name: str, at: float) -> PartitionProgress:
    """A partition read up to event time ``at`` with records still unread."""
    return PartitionProgress(name, at, processed=10, high=100, at=0.0)


def caught_up(name: str, at: float) -> PartitionProgress:
    return PartitionProgress(name, at, processed=100, high=100, at=0.0)


def test_a_partition_far_ahead_of_the_slowest_is_paused_and_resumed_once_within_half_the_window():
    align = EventTimeAlignment(window_s=DAY)
    plan = align.plan([behind("forms:0", 0.0), behind("page_views:0", 3 * DAY)], now=0.0)
    assert plan.pause == {"page_views:0"} and not plan.resume
    # Still more than half a window ahead: stays paused (no churn at the edge).
    plan = align.plan([behind("forms:0", 2.2 * DAY), behind("page_views:0", 3 * DAY)], now=1.0)
    assert not plan.pause and not plan.resume and align.paused == {"page_views:0"}
    plan = align.plan([behind("forms:0", 2.6 * DAY), behind("page_views:0", 3 * DAY)], now=2.0)
    assert plan.resume == {"page_views:0"} and not align.paused


def test_a_partition_never_read_holds_every_other_back_until_it_is():
    align = EventTimeAlignment(window_s=DAY)
    never = PartitionProgress("trials:3", processed=-1, high=6000)
    plan = align.plan([never, behind("forms:0", 0.0), behind("page_views:0", 1.0)], now=0.0)
    assert plan.pause == {"forms:0", "page_views:0"}


def test_caught_up_partitions_are_never_paused_and_do_not_hold_others_back():
    align = EventTimeAlignment(window_s=DAY)
    plan = align.plan([caught_up("webinars:0", 0.0), behind("forms:0", 5 * DAY)], now=0.0)
    assert not plan.pause
    plan = align.plan([behind("webinars:0", 0.0), caught_up("forms:0", 5 * DAY)], now=0.0)
    assert not plan.pause
    # Paused, then it reached the end of what it held: resumed (live data is never held back).
    align.plan([behind("webinars:0", 0.0), behind("forms:0", 5 * DAY)], now=1.0)
    plan = align.plan([behind("webinars:0", 0.0), caught_up("forms:0", 5 * DAY)], now=2.0)
    assert plan.resume == {"forms:0"}


def test_a_slowest_partition_that_does_not_move_releases_everything_until_it_does():
    align = EventTimeAlignment(window_s=DAY, patience_s=10.0)
    stuck = [behind("forms:0", 0.0), behind("page_views:0", 3 * DAY)]
    assert align.plan(stuck, now=0.0).pause == {"page_views:0"}
    assert not align.plan(stuck, now=9.0).resume
    assert align.plan(stuck, now=11.0).resume == {"page_views:0"}  # its leader gone, say
    assert not align.plan(stuck, now=12.0).pause  # not paused again while it stays stuck
    moved = [behind("forms:0", 1.0), behind("page_views:0", 3 * DAY)]
    assert align.plan(moved, now=13.0).pause == {"page_views:0"}


def test_a_slowest_topic_read_at_one_event_time_is_moving_while_its_offsets_advance():
    # Firmographics: every record of a snapshot carries the same event time.
    align = EventTimeAlignment(window_s=DAY, patience_s=10.0)

    def rows(read: int) -> list[PartitionProgress]:
        snapshot = PartitionProgress("accounts:0", 0.0, processed=read, high=2000, at=0.0)
        return [snapshot, behind("page_views:0", 3 * DAY)]

    assert align.plan(rows(10), now=0.0).pause == {"page_views:0"}
    for step in range(1, 30):
        assert not align.plan(rows(10 + 50 * step), now=5.0 * step).resume  # 145 s, reading
    assert align.plan(rows(1460), now=160.0).resume == {"page_views:0"}  # stuck for 15 s


def test_patience_counts_from_the_first_plan_on_a_monotonic_clock():
    align = EventTimeAlignment(window_s=DAY, patience_s=10.0)
    never = PartitionProgress("trials:3", processed=-1, high=6000)
    rows = [never, behind("forms:0", 0.0)]
    assert align.plan(rows, now=5_000.0).pause == {"forms:0"}
    assert not align.plan(rows, now=5_001.0).resume  # not given up at once: 1 s of 10


def test_revoked_partitions_are_forgotten_and_zero_turns_it_off():
    align = EventTimeAlignment(window_s=DAY)
    align.plan([behind("forms:0", 0.0), behind("page_views:0", 3 * DAY)], now=0.0)
    plan = align.plan([behind("forms:0", 0.0)], now=1.0)  # page_views:0 went to another worker
    assert not plan.resume and not align.paused
    off = EventTimeAlignment(window_s=0.0)
    assert not off.plan([behind("forms:0", 0.0), behind("page_views:0", 3 * DAY)], now=0.0).pause


progress = st.lists(
    st.builds(
        PartitionProgress,
        st.sampled_from([f"t{t}:{p}" for t in range(3) for p in range(3)]),
        st.one_of(st.just(-math.inf), st.floats(0, 30 * DAY)),
        st.integers(-1, 100),
        st.integers(-1, 100),
    ),
    max_size=9,
    unique_by=lambda p: p.partition,
)


@given(st.lists(progress, min_size=1, max_size=12))
def test_the_slowest_partition_with_unread_records_is_never_paused(rounds):
    align = EventTimeAlignment(window_s=DAY)
    for now, rows in enumerate(rounds):
        plan = align.plan(rows, now=float(now))
        assert not plan.pause & plan.resume
        assert align.paused <= {p.partition for p in rows}
        unread = [p for p in rows if not p.caught_up]
        if unread:
            slowest = min(unread, key=lambda p: p.max_event_time)
            assert slowest.partition not in align.paused
        assert not {p.partition for p in rows if p.caught_up} & align.paused
