"""Which consume errors leave the confluent worker's consumer unusable (kafka/confluent_loop.py)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from leadstream.kafka.confluent_loop import RejoinBudget, is_fatal


def test_librdkafkas_fatal_event_counts_as_fatal_though_its_flag_is_not_set():
    # What a fenced static member's consumer returns: code _FATAL, fatal() False.
    event = KafkaError(KafkaError._FATAL, "Fatal error: Broker: Static consumer fenced")
    assert not event.fatal()
    assert is_fatal(event)


def test_an_error_flagged_fatal_is_fatal():
    assert is_fatal(KafkaError(KafkaError.FENCED_INSTANCE_ID, "fenced", fatal=True))


@pytest.mark.parametrize(
    "code",
    [
        KafkaError._TRANSPORT,
        KafkaError._PARTITION_EOF,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._MSG_TIMED_OUT,
    ],
)
def test_passing_errors_are_not(code):
    assert not is_fatal(KafkaError(code))


def test_rejoins_in_a_row_run_out():
    budget = RejoinBudget(limit=3, window_s=60)
    assert [budget.spend(t) for t in (0, 5, 10, 15)] == [1, 2, 3, None]


def test_rejoins_far_apart_never_run_out():
    budget = RejoinBudget(limit=3, window_s=60)
    assert [budget.spend(t) for t in (0, 100, 200, 300, 400)] == [1, 1, 1, 1, 1]


def test_a_quiet_spell_restores_the_whole_budget():
    budget = RejoinBudget(limit=2, window_s=60)
    assert [budget.spend(t) for t in (0, 30, 120, 150, 170)] == [1, 2, 1, 2, None]
