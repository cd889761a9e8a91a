"""A tiny run of the benchmark so it never rots (no timing assertions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_bench_runs_end_to_end(kafka_bootstrap, redis_url, tmp_path):
    env = {
        **os.environ,
        "LEADSTREAM_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LEADSTREAM_REDIS_URL": redis_url,
    }
    out = subprocess.run(
        [sys.executable, "-m", "bench.run", "--contacts", "40", "--seconds", "0.5", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=True,
    )
    results = json.loads((tmp_path / "results.json").read_text())
    for name in (
        "kafka_passthrough_events_per_s",
        "redis_commit_calls_per_s",
        "embedded_events_per_s",
        "worker_faust_1_events_per_s",
        "worker_confluent_2_events_per_s",
        "naive_events_per_s",
    ):
        assert results[name] > 0, name
    assert "| measure | value |" in out.stdout
    assert (tmp_path / "latency.png").read_bytes().startswith(b"\x89PNG")
