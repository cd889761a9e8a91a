"""What every fault-suite test asserts of a scenario's row (tests/e2e, tests/cluster)."""

from __future__ import annotations

from bench.chaos import Row, table


def assert_matches_the_replay(row: Row, fault_expected: bool) -> None:
    """Exactly the replay's handoff ids and scores, the dead letters expected, the fault injected."""
    report = table([row])
    assert (row.missing, row.extra) == (0, 0), report
    assert row.got == row.expected, report
    assert row.score_mismatches == 0, report
    assert row.dead_letters == row.dead_letters_expected, report
    if fault_expected:
        assert "at" in " ".join(row.notes), f"the fault was not injected: {report}"
