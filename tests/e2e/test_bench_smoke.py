"""A tiny run of the benchmark so it never rots (no timing assertions)."""

from __future__ import annotations

import json
import math
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
        [
            sys.executable,
            "-m",
            "bench.run",
            *("--events", "400", "--contacts", "60", "--window", "3", "--seconds", "0.5"),
            *("--memory-contacts", "300", "--memory-db", "14", "--out", str(tmp_path)),
            *("--latency-repeats", "2"),
        ],
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
        "replay_events_per_s",
        "naive_events_per_s",
        "redis_bytes_per_contact",
        "redis_bytes_per_quiet_contact",
        "redis_bytes_per_account",
    ):
        assert results[name] > 0, name
    # A quiet contact's journal closed: most of what a contact costs.
    assert results["redis_bytes_per_quiet_contact"] < results["redis_bytes_per_contact"] / 2
    # A backlog this small may drain before a worker's window opens: then the figure is NaN.
    for engine in ("faust", "confluent"):
        for workers in (1, 2):
            rate = results[f"worker_{engine}_{workers}_events_per_s"]
            assert math.isnan(rate) or rate > 0
            assert results[f"worker_{engine}_{workers}_rss_mib"] > 20
    assert "| measure | value |" in out.stdout
    for name in (
        "latency_50pct_p99_ms",
        "passthrough_latency_50pct_p99_ms",
        "latency_50pct_p99_over_passthrough_ms",
    ):
        assert name in results, name  # measured (a tiny run may see no probe arrive: NaN)
    assert results["latency_50pct_runs"] == 2  # worker and passthrough alternated, medians kept
    assert (tmp_path / "latency.png").read_bytes().startswith(b"\x89PNG")


def bench_summary(module_and_args, env):
    """The JSON summary a bench prints last, run as a user runs it."""
    out = subprocess.run(
        [sys.executable, "-m", *module_and_args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_ingest_bench_runs_end_to_end(kafka_bootstrap, redis_url):
    env = {
        **os.environ,
        "LEADSTREAM_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LEADSTREAM_REDIS_URL": redis_url,
    }
    result = bench_summary(["bench.ingest", "--contacts", "40", "--repeats", "1", "--threads", "2"], env)
    assert result["events"] > 40
    assert result["ingest_events_per_s"] > 0 and result["produce_ceiling_events_per_s"] > 0


def test_overlap_bench_runs_both_variants_and_leaves_no_keys(redis_url, redis_client):
    env = {**os.environ, "LEADSTREAM_REDIS_URL": redis_url}
    result = bench_summary(["bench.overlap", "--contacts", "60", "--repeats", "1", "--chunk", "5"], env)
    assert result["events"] > 60 and result["chunk"] == 5
    assert result["one_send_wall_us"] > 0 and result["chunked_wall_us"] > 0 and result["wall_ratio"] > 0
    assert not list(redis_client.scan_iter(match="overlap*"))


def test_redis_cpu_is_read_from_info_and_grows_with_work(redis_client):
    from bench.worker_throughput import redis_cpu_seconds

    before = redis_cpu_seconds(redis_client)
    assert before > 0
    # Enough work for Redis's CPU clock (microsecond resolution) to move.
    redis_client.eval("local n = 0 for i = 1, 3000000 do n = n + i end return n", 0)
    assert redis_cpu_seconds(redis_client) > before
