"""Worker throughput and Redis bytes per contact on the local stack (or the cluster stack: the
LEADSTREAM_* variables scripts/stack cluster status prints).

    .venv/bin/python -m bench.worker_throughput --contacts 20000 --partitions 4 [--workers 2]

Pre-loads generated journeys into fresh topics, starts one `leadstream worker`, and times it from
its first assignment until its group has committed every record, sampling the workers' resident
memory each second (over a long backlog: whether a worker's memory levels off). Then samples
MEMORY USAGE of contact hashes in Redis. Also Redis's own CPU per event over the same window
(INFO cpu): a worker waits for it at every load and commit. Prints one line per figure and a
JSON summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from leadstream.bootstrap import redis_blocking
from leadstream.config.settings import Settings, Topics
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import consumer_lag, produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.state.keys import contact_key
from leadstream.tools.generator import JourneyGenerator, default_start, record_key, to_records
from leadstream.tools.worker_process import WorkerProcess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--engine", choices=["faust", "confluent"], default="confluent")
    parser.add_argument("--workers", type=int, default=1, help="worker processes in the group")
    parser.add_argument(
        "--one-topic", action="store_true", help="every event on one topic (each contact's events in order)"
    )
    args = parser.parse_args(argv)

    run = uuid.uuid4().hex[:8]
    settings = Settings(
        topics=Topics(**{name: f"bench{run}.{name}" for name in Topics.model_fields}),
        topic_partitions=args.partitions,
        consumer_group=f"bench{run}",
        redis_key_prefix=f"bench{run}",
        worker_engine=args.engine,
    )
    ensure_topics(settings)
    events = JourneyGenerator(args.seed, args.contacts, start=default_start()).events()
    print(
        f"producing {len(events)} events for {args.contacts} contacts to {args.partitions} partitions",
        file=sys.stderr,
    )
    records = to_records(events, settings.topics)
    if args.one_topic:
        records = [
            (settings.topics.page_views if t != settings.topics.accounts else t, k, v) for t, k, v in records
        ]
    produce_all(
        make_producer(settings),
        records,
        progress=lambda n: print(f"  produced {n}", file=sys.stderr),
    )

    workers = [
        WorkerProcess(
            settings, Path(".leadstream") / f"bench-{run}-worker-{n}.log", {"LEADSTREAM_INSTANCE_ID": f"w{n}"}
        )
        for n in range(args.workers)
    ]
    for worker in workers:
        worker.start(timeout_s=120)
    client = redis_blocking(settings)
    started = time.monotonic()
    cpu_started = sum(w.cpu_seconds() for w in workers)
    redis_cpu_started = redis_cpu_seconds(client)
    rss: list[tuple[int, int]] = []  # (events done, the largest worker's resident MiB) each second
    try:
        while (lag := consumer_lag(settings, settings.topics.inputs())) > 0:
            rss.append((len(events) - lag, max(w.memory_kib()[0] for w in workers) // 1024))
            print(f"  lag {lag}  worker RSS {rss[-1][1]} MiB", file=sys.stderr)
            time.sleep(1.0)
        elapsed = time.monotonic() - started
        cpu = sum(w.cpu_seconds() for w in workers) - cpu_started
        redis_cpu = redis_cpu_seconds(client) - redis_cpu_started
        peak = max(w.memory_kib()[1] for w in workers) // 1024
    finally:
        for worker in workers:
            worker.stop()

    contacts = sorted({record_key(e) for e in events})
    sample = contacts[:: max(1, len(contacts) // 500)]
    sizes = [client.memory_usage(contact_key(settings.redis_key_prefix, c), samples=0) or 0 for c in sample]
    result = {
        "events": len(events),
        "contacts": len(contacts),
        "partitions": args.partitions,
        "workers": args.workers,
        "seconds": round(elapsed, 2),
        "events_per_s": round(len(events) / elapsed),
        # The workers' own CPU (all threads) per event: what a faster machine would not change.
        "worker_cpu_us_per_event": round(1e6 * cpu / len(events), 1),
        "worker_cpu_share": round(cpu / elapsed / len(workers), 2),
        # Redis's own CPU per event (every node's): a worker waits for it at each commit and load,
        # and it shares the machine's cores with the workers.
        "redis_cpu_us_per_event": round(1e6 * redis_cpu / len(events), 1),
        "redis_bytes_per_contact": round(sum(sizes) / len(sizes)),
        # Resident memory as the backlog is read: after each tenth of the events, and the peak.
        "rss_mib_by_tenth": [
            next((m for done, m in rss if done >= len(events) * t / 10), None) for t in range(1, 10)
        ],
        "rss_mib_peak": peak,
    }
    print(
        f"worker: {result['events_per_s']} events/s "
        f"({len(events)} events in {elapsed:.1f}s, {args.workers} workers)"
    )
    print(
        f"worker CPU: {result['worker_cpu_us_per_event']} µs per event, "
        f"{result['worker_cpu_share']:.0%} of a core per worker"
    )
    print(f"redis CPU: {result['redis_cpu_us_per_event']} µs per event (INFO cpu, every node)")
    print(
        f"redis: {result['redis_bytes_per_contact']} bytes per contact (MEMORY USAGE, {len(sample)} sampled)"
    )
    print(f"worker RSS: {result['rss_mib_by_tenth']} MiB after each tenth of the events, peak {peak} MiB")
    print(json.dumps(result))
    return 0


def redis_cpu_seconds(client: Any) -> float:
    """Redis's own CPU so far (user and system), summed over a cluster's nodes: INFO's
    ``used_cpu_*``, so it needs no access to the server's host."""
    # A cluster client sends INFO to one node unless told otherwise.
    info = client.info("cpu", target_nodes="all") if hasattr(client, "get_nodes") else client.info("cpu")
    nodes = list(info.values()) if info and all(isinstance(v, dict) for v in info.values()) else [info]
    return sum(float(node["used_cpu_sys"]) + float(node["used_cpu_user"]) for node in nodes)


if __name__ == "__main__":
    sys.exit(main())
