"""The fault suite's scenarios (bench/chaos.py), short: a few hundred journeys each, produced at a
pace that lands every fault mid-stream, on a Kafka and a Redis of the suite's own. Each must give
exactly the handoffs and scores of the replay, whatever was killed and whatever arrived."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.chaos import SCENARIOS, Data, Oracle, Row, run_scenario, settings_for
from bench.faultstack import FaultStack
from tests.faults import assert_matches_the_replay

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
CONTACTS, RATE, HOSTILE = 160, 90.0, 400


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    # Ports of its own: a fault suite left running by hand (bench/chaos.py --keep-stack) may hold the
    # suite's default ones.
    faults = FaultStack(tmp_path_factory.mktemp("fault-stack"), 9292, 9293, 6490)
    faults.up()
    yield faults
    faults.down()


@pytest.fixture(scope="module")
def data() -> Data:
    return Data(CONTACTS, seed=5)


@pytest.fixture(scope="module")
def oracle(stack: FaultStack, data: Data) -> Oracle:
    return data.oracle(settings_for(stack, SCENARIOS[0]))


SINGLE_NODE = [s for s in SCENARIOS if not s.cluster]  # the cluster's: tests/cluster/


@pytest.mark.parametrize("scenario", SINGLE_NODE, ids=[s.name for s in SINGLE_NODE])
def test_scenario_matches_the_replay(scenario, stack, data, oracle, tmp_path: Path):
    if scenario.hostile:
        scenario = dataclasses.replace(scenario, hostile=HOSTILE)
    assert oracle.mql and oracle.groups, "the data must qualify contacts and buying groups"
    row: Row = run_scenario(stack, data, oracle, scenario, tmp_path, timeout_s=180, rate=RATE)
    assert_matches_the_replay(row, fault_expected=bool(scenario.fault) and scenario.fault != "worker-kill")
