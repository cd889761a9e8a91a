"""leadstream benchmarks, side by side with the raw ceilings measured in the same run.

    .venv/bin/python -m bench.run                      # defaults finish in a few minutes
    .venv/bin/python -m bench.run --contacts 50000     # more data

Prints one table and writes bench/results.json and bench/results.md. Ratios, not absolute
figures, are what to compare between runs: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis
from confluent_kafka import Consumer, Producer

from bench.latency import measure
from config.loader import load_model
from config.settings import Settings, Topics
from streams.generator import JourneyGenerator, default_start, record_key, to_records
from streams.kafka_io import consumer_lag, make_producer, produce_all
from streams.records import SourceRecord
from streams.replay import replay_records
from streams.state.keys import contact_key
from streams.state.redis_store import COMMIT_FUNCTION, function_library
from streams.topics import ensure_topics, kafka_client_config
from streams.worker_process import WorkerProcess

OUT = Path(__file__).resolve().parent


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def fresh_settings(partitions: int, engine: str = "faust") -> Settings:
    run = uuid.uuid4().hex[:8]
    return Settings(
        topics=Topics(**{name: f"bench{run}.{name}" for name in Topics.model_fields}),
        topic_partitions=partitions,
        consumer_group=f"bench{run}",
        redis_key_prefix=f"bench{run}",
        timer_interval_s=5,
        worker_engine=engine,  # type: ignore[arg-type]
    )


def kafka_passthrough(settings: Settings, records: list[tuple[str, bytes, bytes]]) -> float:
    """Raw consume -> produce in one Python process, no decoding: events/s."""
    source, sink = settings.topics.page_views, settings.topics.dead_letters
    produce_all(make_producer(settings), [(source, k, v) for _, k, v in records])
    consumer = Consumer(
        {
            **kafka_client_config(settings),
            "group.id": f"{settings.consumer_group}-raw",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    producer = Producer({**kafka_client_config(settings), "linger.ms": 5})
    consumer.subscribe([source])
    done, started = 0, None
    while done < len(records):
        batch = consumer.consume(1000, timeout=1.0)
        if batch and started is None:
            started = time.perf_counter()
        for message in batch:
            if message.error() is None:
                producer.produce(sink, message.value(), message.key())
                done += 1
        producer.poll(0)
    producer.flush(30)
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return done / elapsed


def redis_ceiling(settings: Settings, seconds: float = 5.0, depth: int = 500) -> float:
    """The production commit call (a Redis Function), pipelined, from one client: calls/s."""
    client = redis.Redis.from_url(settings.redis_url)
    client.function_load(function_library(), replace=True)
    blob = b"x" * 1200  # about one contact's encoded state
    versions: dict[str, int] = {}
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        pipe = client.pipeline(transaction=False)
        for i in range(depth):
            key = contact_key(settings.redis_key_prefix, f"ceiling-{(calls + i) % 20_000}")
            pipe.fcall(COMMIT_FUNCTION, 1, key, str(versions.get(key, 0)), "1", blob, "", "600")
        for (_ok, version), i in zip(pipe.execute(), range(depth), strict=True):
            key = contact_key(settings.redis_key_prefix, f"ceiling-{(calls + i) % 20_000}")
            versions[key] = int(version)
        calls += depth
    return calls / (time.perf_counter() - started)


def embedded(settings: Settings, events: list[dict[str, Any]]) -> float:
    """Decode + score + in-memory state (`leadstream replay`'s engine): events/s."""
    records = [SourceRecord("file", 0, i, json.dumps(e).encode()) for i, e in enumerate(events)]
    accounts = [r for r, e in zip(records, events, strict=True) if e["type"] == "account"]
    others = [r for r, e in zip(records, events, strict=True) if e["type"] != "account"]
    fixed = [SourceRecord(settings.topics.accounts, 0, r.offset, r.value) for r in accounts] + others
    started = time.perf_counter()
    asyncio.run(replay_records(iter(fixed), settings, load_model()))
    return len(fixed) / (time.perf_counter() - started)


def worker_run(settings: Settings, records: list[tuple[str, bytes, bytes]], workers: int) -> dict[str, float]:
    produce_all(make_producer(settings), records)
    client = redis.Redis.from_url(settings.redis_url)
    memory_before = client.info("memory")["used_memory"]
    procs = [
        WorkerProcess(settings, OUT / "out" / f"{settings.consumer_group}-{n}.log") for n in range(workers)
    ]
    for proc in procs:
        proc.start(timeout_s=120)
    started = time.perf_counter()
    try:
        while (lag := consumer_lag(settings, settings.topics.inputs())) > 0:
            log(f"  {workers} worker(s): lag {lag}")
            time.sleep(1.0)
        elapsed = time.perf_counter() - started
    finally:
        for proc in procs:
            proc.stop()
    memory_after = client.info("memory")["used_memory"]
    return {"events_per_s": len(records) / elapsed, "redis_bytes": memory_after - memory_before}


def naive_baseline(
    settings: Settings, records: list[tuple[str, bytes, bytes]], seconds: float = 20.0
) -> float:
    """As a user might write it: a consumer loop, one Redis round trip per event, no batching."""
    from pydantic import TypeAdapter

    from schemas.events import Event
    from streams.scoring import ContactState, score
    from streams.state.port import decode_state, encode_state

    produce_all(make_producer(settings), records)
    model = load_model()
    adapter: TypeAdapter[Any] = TypeAdapter(Event)
    client = redis.Redis.from_url(settings.redis_url)
    consumer = Consumer(
        {
            **kafka_client_config(settings),
            "group.id": f"{settings.consumer_group}-naive",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe(list(settings.topics.inputs()))
    done, started = 0, None
    while started is None or time.perf_counter() - started < seconds:
        message = consumer.poll(1.0)
        if message is None or message.error() is not None:
            continue
        started = started or time.perf_counter()
        try:
            event = adapter.validate_json(message.value())
        except Exception:
            continue
        key = f"naive:{event.contact_id or event.anonymous_id}"
        raw = client.get(key)  # one round trip to read...
        state = decode_state(raw) if raw else ContactState(key)
        state = score(state, event, model, max(state.clock, event.occurred_at.timestamp())).state
        client.set(key, encode_state(state))  # ...and one to write, per event
        done += 1
    consumer.close()
    return done / (time.perf_counter() - (started or time.perf_counter()))


def plot_latency(curve: list[tuple[float, dict[str, float]]], path: Path) -> None:
    """Latency percentiles against offered load, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(7, 4))
    loads = [rate for rate, _ in curve]
    for name in ("p50_ms", "p95_ms", "p99_ms"):
        axes.plot(loads, [m[name] for _, m in curve], marker="o", label=name.replace("_ms", ""))
    axes.set_xlabel("offered load (events/s)")
    axes.set_ylabel("produce -> handoff latency (ms)")
    axes.set_title("leadstream worker (confluent engine): latency against load")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=8000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of the timed ceilings/baseline")
    parser.add_argument("--out", type=Path, default=OUT, help="where results.json and results.md go")
    args = parser.parse_args(argv)
    (OUT / "out").mkdir(exist_ok=True)
    events = JourneyGenerator(5, args.contacts, start=default_start()).events()
    contacts = len({record_key(e) for e in events if e["type"] != "account"})
    log(f"{len(events)} events, {contacts} profiles, {args.partitions} partitions")
    results: dict[str, Any] = {"events": len(events), "profiles": contacts, "partitions": args.partitions}

    settings = fresh_settings(args.partitions)
    ensure_topics(settings)
    records = to_records(events, settings.topics)
    log("ceiling: raw Kafka passthrough")
    results["kafka_passthrough_events_per_s"] = kafka_passthrough(settings, records)
    log("ceiling: Redis commit function, pipelined")
    results["redis_commit_calls_per_s"] = redis_ceiling(settings, args.seconds)
    log("ceiling: decode + score in memory (replay engine)")
    results["embedded_events_per_s"] = embedded(settings, events)
    for engine in ("faust", "confluent"):
        for workers in (1, 2):
            settings = fresh_settings(args.partitions, engine)
            ensure_topics(settings)
            log(f"worker: {engine}, {workers} process(es)")
            run = worker_run(settings, to_records(events, settings.topics), workers)
            results[f"worker_{engine}_{workers}_events_per_s"] = run["events_per_s"]
            if workers == 1 and engine == "confluent":
                results["redis_bytes_per_profile"] = run["redis_bytes"] / contacts
    curve = []
    for share in (0.25, 0.5, 0.8):
        settings = fresh_settings(args.partitions, "confluent")
        ensure_topics(settings)
        rate = share * results["worker_confluent_1_events_per_s"]
        log(f"latency: confluent worker at {share:.0%} of its sustained maximum ({rate:,.0f} events/s)")
        log_path = OUT / "out" / f"{settings.consumer_group}-latency.log"
        proc = WorkerProcess(settings, log_path).start(timeout_s=120)
        try:
            measured = measure(settings, to_records(events, settings.topics), rate, 4 * args.seconds)
        finally:
            proc.stop()
        curve.append((rate, measured))
        if share in (0.5, 0.8):
            for name, value in measured.items():
                if name.endswith("_ms"):
                    results[f"latency_{int(share * 100)}pct_{name}"] = value
    plot_latency(curve, args.out / "latency.png")

    settings = fresh_settings(args.partitions)
    ensure_topics(settings)
    log("baseline: naive loop, one Redis round trip per event")
    results["naive_events_per_s"] = naive_baseline(
        settings, to_records(events, settings.topics), 4 * args.seconds
    )

    ceiling = min(results["kafka_passthrough_events_per_s"], results["redis_commit_calls_per_s"])
    results["ratios"] = {}
    for engine in ("faust", "confluent"):
        one = results[f"worker_{engine}_1_events_per_s"]
        results["ratios"].update(
            {
                f"{engine} worker / min(kafka, redis) ceiling (target >= 0.5)": one / ceiling,
                f"{engine} worker / embedded engine": one / results["embedded_events_per_s"],
                f"{engine} 2 workers / 1 (target >= 1.6)": results[f"worker_{engine}_2_events_per_s"] / one,
                f"{engine} worker / naive baseline (target >= 5)": one / results["naive_events_per_s"],
            }
        )
    rows = [(k, f"{v:,.0f}") for k, v in results.items() if isinstance(v, float)]
    rows += [(k, f"{v:.2f}") for k, v in results["ratios"].items()]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    markdown = "| measure | value |\n|---|---|\n" + table + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
