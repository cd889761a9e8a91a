"""The fault suite's cluster scenarios (bench/chaos.py), short, on the cluster stack: a Redis
master failover and a broker kill with leader election. Each must give exactly the handoffs and
scores of the replay. Runs where the stack is a cluster (scripts/run-cluster-tests, CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.chaos import SCENARIOS, Data, Oracle, Row, run_scenario, settings_for
from bench.faultstack import ClusterFaultStack
from tests.faults import assert_matches_the_replay

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("LEADSTREAM_REDIS_CLUSTER", "").lower() not in ("1", "true"),
        reason="needs the cluster stack: scripts/run-cluster-tests",
    ),
]
CONTACTS, RATE = 160, 90.0
CLUSTER = [s for s in SCENARIOS if s.cluster]


@pytest.fixture(scope="module")
def stack() -> ClusterFaultStack:
    cluster = ClusterFaultStack()
    cluster.up()  # reuses the cluster scripts/run-cluster-tests started
    return cluster


@pytest.fixture(scope="module")
def data() -> Data:
    return Data(CONTACTS, seed=5)


@pytest.fixture(scope="module")
def oracle(stack: ClusterFaultStack, data: Data) -> Oracle:
    return data.oracle(settings_for(stack, SCENARIOS[0]))


@pytest.mark.parametrize("scenario", CLUSTER, ids=[s.name for s in CLUSTER])
def test_cluster_fault_matches_the_replay(scenario, stack, data, oracle, tmp_path: Path):
    assert oracle.mql and oracle.groups, "the data must qualify contacts and buying groups"
    row: Row = run_scenario(stack, data, oracle, scenario, tmp_path, timeout_s=240, rate=RATE)
    assert_matches_the_replay(row, fault_expected=True)
    assert stack.victims, "no node was taken down"
