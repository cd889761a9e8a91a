"""leadstream benchmarks, side by side with the raw ceilings measured in the same run.

    .venv/bin/python -m bench.run                    # 1M events, 1M contacts in memory: ~14 min
    .venv/bin/python -m bench.run --events 100000 --memory-contacts 100000 --window 20   # quick look

One generated data set (>= 1M events, >= 100k contacts by default) is produced to Kafka once;
each measurement reads it with a consumer group of its own. Throughput figures are sustained
rates over ``--window`` seconds on that backlog (after a warm-up), so the bench fits in 15
minutes on a 2-core machine. Prints one table and writes bench/results.json, bench/results.md
and bench/latency.png. Ratios, not absolute figures, are what to compare between runs: these
machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import redis
from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient

from bench.floor import compare
from bench.latency import measure
from bench.memory import measure_memory
from bench.passthrough import PassthroughProcess, passthrough
from leadstream.bootstrap import build_embedded
from leadstream.config.loader import load_model
from leadstream.config.settings import Settings, Topics
from leadstream.engine.records import SourceRecord
from leadstream.kafka.clients import kafka_client_config, make_producer
from leadstream.kafka.topic_io import consumer_lag, produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.native import mode
from leadstream.state.keys import contact_key
from leadstream.state.port import RecordWrite
from leadstream.state.redis_store import COMMIT_FUNCTION, commit_args, function_library
from leadstream.tools.generator import JourneyGenerator, default_start, record_key, to_records
from leadstream.tools.worker_process import WorkerProcess

OUT = Path(__file__).resolve().parent
EVENTS_PER_CONTACT = 6.2  # what the generator produces on average
CREATED: list[str] = []  # the run names (topic and key prefixes) this bench created
INPUT_TOPICS = ("page_views", "forms", "trials", "webinars", "identify", "accounts", "feedback")


STARTED = time.monotonic()


def log(message: str) -> None:
    minutes, seconds = divmod(int(time.monotonic() - STARTED), 60)
    print(f"[bench {minutes:02d}:{seconds:02d}] {message}", file=sys.stderr, flush=True)


def fresh_settings(partitions: int, engine: str = "faust", inputs: Topics | None = None) -> Settings:
    """Settings of one measurement: its own group, Redis prefix and output topics; the input
    topics are ``inputs``' (the shared data set) when given, else its own."""
    run = uuid.uuid4().hex[:8]
    CREATED.append(f"bench{run}")
    topics = {name: f"bench{run}.{name}" for name in Topics.model_fields}
    if inputs is not None:
        topics.update({name: getattr(inputs, name) for name in INPUT_TOPICS})
    return Settings(
        topics=Topics(**topics),
        topic_partitions=partitions,
        consumer_group=f"bench{run}",
        redis_key_prefix=f"bench{run}",
        timer_interval_s=5,
        worker_engine=engine,
    )


def kafka_passthrough(settings: Settings, total: int, seconds: float) -> tuple[float, int]:
    """Raw consume -> produce of the data set in one Python process, no decoding: events/s."""
    done, elapsed = passthrough(
        settings,
        settings.topics.inputs(),
        settings.topics.dead_letters,
        f"{settings.consumer_group}-raw",
        limit=total,
        seconds=seconds,
        progress=lambda n: log(f"  passthrough: {n:,} records"),
    )
    return done / elapsed, done


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
            write = RecordWrite(key, versions.get(key, 0), blob)
            pipe.fcall(COMMIT_FUNCTION, 1, key, *commit_args(write, "600"))
        for (_ok, version), i in zip(pipe.execute(), range(depth), strict=True):
            key = contact_key(settings.redis_key_prefix, f"ceiling-{(calls + i) % 20_000}")
            versions[key] = int(version)
        calls += depth
    return calls / (time.perf_counter() - started)


def embedded(settings: Settings, events: list[dict[str, Any]], seconds: float) -> tuple[float, int]:
    """Decode + score + in-memory state (the replay engine), for ``seconds``: events/s."""
    pipeline, _sink, _store = build_embedded(settings, load_model())
    records = (
        SourceRecord(
            settings.topics.accounts if e["type"] == "account" else "file", 0, i, json.dumps(e).encode()
        )
        for i, e in enumerate(events)
    )

    async def run() -> tuple[int, float]:
        done, busy = 0, 0.0
        while busy < seconds:
            batch = list(itertools.islice(records, 1000))
            if not batch:
                break
            started = time.perf_counter()
            await pipeline.process(batch)
            busy += time.perf_counter() - started
            done += len(batch)
        return done, busy

    done, busy = asyncio.run(run())
    return done / busy, done


def replay_cli(events: list[dict[str, Any]], count: int) -> tuple[float, int]:
    """``leadstream replay --quiet FILE`` on the first ``count`` events, start-up included: events/s."""
    path = OUT / "out" / "replay.jsonl"
    with path.open("w") as handle:
        for event in events[:count]:
            handle.write(json.dumps(event, separators=(",", ":")) + "\n")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "leadstream.cli", "replay", "--quiet", str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - started
    path.unlink()
    return min(count, len(events)) / elapsed, min(count, len(events))


def worker_run(settings: Settings, workers: int, seconds: float) -> dict[str, float]:
    """Start ``workers`` processes on the shared backlog; after a warm-up, count what the group
    commits in ``seconds``: sustained events/s. Should the backlog run dry first, the window ends
    there (and the figure says so: ``dry``)."""
    procs = [
        WorkerProcess(settings, OUT / "out" / f"{settings.consumer_group}-{n}.log") for n in range(workers)
    ]
    for proc in procs:
        proc.start(timeout_s=120)
    inputs = settings.topics.inputs()
    try:
        lag_before, started = consumer_lag(settings, inputs), time.perf_counter()
        warm_until = started + min(5.0, seconds / 4)  # connections, first fetches, first batches
        lag = lag_before
        while time.perf_counter() < warm_until and lag > 0:
            time.sleep(0.25)
            lag = consumer_lag(settings, inputs)
        if lag > 0:  # warmed up with work left: the window starts now (else: all of it counts)
            lag_before, started = lag, time.perf_counter()
        reported = started
        while (elapsed := time.perf_counter() - started) < seconds and lag > 0:
            time.sleep(min(2.0, seconds - elapsed))
            lag = consumer_lag(settings, inputs)
            if time.perf_counter() - reported >= 10:
                reported = time.perf_counter()
                log(f"  {workers} worker(s): {lag_before - lag:,} events in {reported - started:.0f} s")
        elapsed = time.perf_counter() - started
        rss = [p.memory_kib() for p in procs if p.process is not None]
    finally:
        for proc in procs:
            proc.stop()
    if lag == 0:
        log(f"  the backlog ran dry after {elapsed:.0f} s: use more --events for a sustained figure")
    return {
        # NaN: drained before the first look (a tiny smoke run), so no rate to report.
        "events_per_s": (lag_before - lag) / elapsed if lag_before else math.nan,
        "events": lag_before - lag,
        "dry": float(lag == 0),
        "rss_mib": max(r[0] for r in rss) / 1024,
        "peak_rss_mib": max(r[1] for r in rss) / 1024,
    }


def worker_latency(
    engine: str, partitions: int, background: list[dict[str, Any]], rate: float, seconds: float
) -> dict[str, float]:
    """Produce-to-handoff percentiles of a fresh worker offered ``rate`` events/s for 4x ``seconds``."""
    settings = fresh_settings(partitions, engine)
    ensure_topics(settings)
    proc = WorkerProcess(settings, OUT / "out" / f"{settings.consumer_group}-latency.log").start(120)
    try:
        return measure(settings, to_records(background, settings.topics), rate, 4 * seconds)
    finally:
        proc.stop()


def passthrough_latency(
    partitions: int, background: list[dict[str, Any]], rate: float, seconds: float
) -> dict[str, float]:
    """The same load through the raw passthrough (consume, forward unchanged): the ceiling."""
    settings = fresh_settings(partitions)
    ensure_topics(settings)
    sink = settings.topics.dead_letters
    with PassthroughProcess(settings, settings.topics.inputs(), sink, f"{settings.consumer_group}-raw"):
        return measure(settings, to_records(background, settings.topics), rate, 4 * seconds, watch=sink)


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each percentile's median over the runs (NaN where no run saw a probe arrive)."""
    names = [name for name in runs[0] if name.endswith("_ms")]
    out = {}
    for name in names:
        values = [r[name] for r in runs if not math.isnan(r[name])]
        out[name] = statistics.median(values) if values else math.nan
    return out


def naive_baseline(settings: Settings, seconds: float) -> float:
    """As a user might write it: a consumer loop, one Redis round trip per event, no batching."""
    from pydantic import TypeAdapter

    from leadstream.schemas.events import Event
    from leadstream.scoring import ContactState, score
    from leadstream.state.port import decode_state, encode_state

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
        value = None if message is None or message.error() is not None else message.value()
        if value is None:
            continue
        started = started or time.perf_counter()
        try:
            event = adapter.validate_json(value)
        except Exception:
            continue
        key = f"{settings.redis_key_prefix}:naive:{event.contact_id or event.anonymous_id}"
        raw = client.get(key)  # one round trip to read...
        state = decode_state(raw) if isinstance(raw, bytes) else ContactState(key)
        state = score(state, event, model, max(state.clock, event.occurred_at.timestamp())).state
        client.set(key, encode_state(state))  # ...and one to write, per event
        done += 1
    consumer.close()
    return done / (time.perf_counter() - (started or time.perf_counter()))


def plot_latency(curve: list[tuple[float, dict[str, float]]], path: Path, engine: str) -> None:
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
    axes.set_title(f"leadstream worker ({engine} engine): latency against load")
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="size of the generated data set")
    parser.add_argument("--contacts", type=int, default=None, help="default: enough for --events, >= 100k")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--window", type=float, default=45.0, help="seconds each throughput figure is measured"
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="duration of the Redis ceiling; latency x4"
    )
    parser.add_argument("--engines", default="faust,confluent", help="worker engines to measure")
    parser.add_argument("--memory-contacts", type=int, default=1_000_000)
    parser.add_argument(
        "--memory-db", type=int, default=15, help="an empty Redis database for the memory run"
    )
    parser.add_argument(
        "--out", type=Path, default=OUT, help="where results.json, results.md and latency.png go"
    )
    parser.add_argument(
        "--floor-events", type=int, default=60_000, help="events the floor and engine CPU are measured on"
    )
    parser.add_argument(
        "--latency-repeats", type=int, default=3, help="worker/passthrough latency runs at 50%% load (median)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the topics and Redis keys it created")
    args = parser.parse_args(argv)
    try:
        return run_bench(args)
    finally:
        if CREATED and not args.keep:
            log("cleaning up the bench's topics and Redis keys")
            clean_up(Settings())


def run_bench(args: argparse.Namespace) -> int:
    engines = [e for e in args.engines.split(",") if e]
    (OUT / "out").mkdir(exist_ok=True)
    began = time.perf_counter()

    contacts = args.contacts or max(100_000, math.ceil(args.events / EVENTS_PER_CONTACT))
    log(f"generating journeys for {contacts:,} contacts")
    events = JourneyGenerator(5, contacts, start=default_start()).events()
    profiles = len({record_key(e) for e in events if e["type"] != "account"})
    log(f"{len(events):,} events, {profiles:,} profiles, {args.partitions} partitions")
    results: dict[str, Any] = {"events": len(events), "profiles": profiles, "partitions": args.partitions}

    data = fresh_settings(args.partitions)
    ensure_topics(data)
    log("producing the data set to Kafka once; every measurement reads it with its own group")
    produce_all(
        make_producer(data),
        to_records(events, data.topics),
        progress=lambda n: log(f"  produced {n:,}") if n % 200_000 == 0 else None,
    )

    log("ceiling: raw Kafka passthrough")
    rate, done = kafka_passthrough(data, len(events), args.window)
    results.update(kafka_passthrough_events_per_s=rate, kafka_passthrough_events=done)
    log("ceiling: Redis commit function, pipelined")
    results["redis_commit_calls_per_s"] = redis_ceiling(data, args.seconds)
    log("ceiling: decode + score in memory (the replay engine)")
    rate, done = embedded(data, events, min(args.window, 30.0))
    results.update(embedded_events_per_s=rate, embedded_events=done, embedded_us_per_event=1e6 / rate)
    floor_events = min(len(events), args.floor_events)
    log(f"floor: the minimal scoring loop and the engine, CPU on the same {floor_events:,} events, x3")
    results.update(compare([orjson.dumps(e) for e in events[:floor_events]], load_model(), repeats=3))
    results["hot_path"] = mode()
    log("replay: leadstream replay --quiet FILE")
    rate, done = replay_cli(events, min(len(events), 100_000))
    results.update(replay_events_per_s=rate, replay_events=done)

    for engine in engines:
        for workers in (1, 2):
            settings = fresh_settings(args.partitions, engine, inputs=data.topics)
            ensure_topics(settings)
            log(f"worker: {engine}, {workers} process(es), {args.window:.0f} s on the backlog")
            run = worker_run(settings, workers, args.window)
            results[f"worker_{engine}_{workers}_events_per_s"] = run["events_per_s"]
            results[f"worker_{engine}_{workers}_events"] = run["events"]
            results[f"worker_{engine}_{workers}_rss_mib"] = run["rss_mib"]

    main_engine = "confluent" if "confluent" in engines else engines[0]
    sustained = results[f"worker_{main_engine}_1_events_per_s"]
    if math.isnan(sustained):
        sustained = results["embedded_events_per_s"] / 2
        log(f"no sustained worker figure (backlog too small); offering loads against {sustained:,.0f}/s")
    curve = []
    for share in (0.25, 0.5, 0.8):
        rate = share * sustained
        background = events[: int(rate * 4 * args.seconds) + 1000]  # what the window offers
        # The p99 of one 20-s window moves by tens of ms from run to run on a shared machine: at
        # half load (the target's) the worker and the passthrough are measured alternately, a
        # few times, and the medians are reported, with the median of the paired differences.
        repeats = args.latency_repeats if share == 0.5 else 1
        worker_runs, raw_runs = [], []
        for attempt in range(repeats):
            log(
                f"latency: {main_engine} worker at {share:.0%} of its sustained maximum ({rate:,.0f} "
                f"events/s), run {attempt + 1} of {repeats}"
            )
            worker_runs.append(worker_latency(main_engine, args.partitions, background, rate, args.seconds))
            if share in (0.5, 0.8):
                log(f"latency: raw passthrough at the same load, run {attempt + 1} of {repeats}")
                raw_runs.append(passthrough_latency(args.partitions, background, rate, args.seconds))
        curve.append((rate, median_run(worker_runs)))
        if share in (0.5, 0.8):
            label = f"{int(share * 100)}pct"
            results.update({f"latency_{label}_{k}": v for k, v in median_run(worker_runs).items()})
            results.update({f"passthrough_latency_{label}_{k}": v for k, v in median_run(raw_runs).items()})
            results[f"latency_{label}_p99_over_passthrough_ms"] = median_run(
                [{"p99_ms": w["p99_ms"] - r["p99_ms"]} for w, r in zip(worker_runs, raw_runs, strict=True)]
            )["p99_ms"]
            results[f"latency_{label}_runs"] = repeats
    plot_latency(curve, args.out / "latency.png", main_engine)

    log("baseline: naive loop, one Redis round trip per event")
    results["naive_events_per_s"] = naive_baseline(
        fresh_settings(args.partitions, inputs=data.topics), args.window / 2
    )

    if args.memory_contacts:
        log(f"memory: {args.memory_contacts:,} contacts in Redis database {args.memory_db}")
        results.update(
            measure_memory(data, args.memory_contacts, args.memory_db, min(3000, args.memory_contacts), log)
        )

    results["ratios"] = ratios(results, engines)
    results["seconds"] = time.perf_counter() - began
    markdown = table(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown)
    print(markdown)
    log(f"done in {results['seconds'] / 60:.1f} min; wrote {args.out / 'results.json'}")
    return 0


def clean_up(settings: Settings) -> None:
    """Delete the topics and Redis keys this run created: a bench must not leave a million
    records behind on the stack it measured (or slow down what runs on it next)."""
    admin = AdminClient(kafka_client_config(settings))
    topics = [t for t in admin.list_topics(timeout=30).topics if t.split(".", 1)[0] in CREATED]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=60).values():
            try:
                future.result()
            except KafkaException as exc:
                log(f"could not delete a bench topic: {exc}")
    client = redis.Redis.from_url(settings.redis_url)
    deleted = 0
    for prefix in CREATED:
        keys: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=10_000):
            keys.append(key)
            if len(keys) >= 10_000:
                deleted += client.unlink(*keys)
                keys = []
        if keys:
            deleted += client.unlink(*keys)
    log(f"cleaned up: {len(topics)} topics and {deleted:,} Redis keys deleted (--keep to keep them)")


def ratios(results: dict[str, Any], engines: list[str]) -> dict[str, float]:
    ceiling = min(results["kafka_passthrough_events_per_s"], results["redis_commit_calls_per_s"])
    out = {}
    for engine in engines:
        one = results[f"worker_{engine}_1_events_per_s"]
        out.update(
            {
                f"{engine} worker / min(kafka, redis) ceiling (target >= 0.5)": _ratio(one, ceiling),
                f"{engine} worker / embedded engine (decode + score alone)": one
                / results["embedded_events_per_s"],
                f"{engine} 2 workers / 1 (target >= 1.6)": _ratio(
                    results[f"worker_{engine}_2_events_per_s"], one
                ),
                f"{engine} worker / naive baseline (target >= 5)": _ratio(one, results["naive_events_per_s"]),
                f"{engine} worker / 15k events/s target": one / 15_000,
            }
        )
    if "latency_50pct_p99_over_passthrough_ms" in results:
        out["p99 at 50% load minus passthrough p99, ms, median of runs (target <= 50)"] = results[
            "latency_50pct_p99_over_passthrough_ms"
        ]
    if "redis_bytes_per_contact" in results:
        out["redis bytes per contact / 300 target"] = results["redis_bytes_per_contact"] / 300
    if "redis_bytes_per_quiet_contact" in results:
        out["redis bytes per quiet contact / 300 target"] = results["redis_bytes_per_quiet_contact"] / 300
    out["replay / 100k events/s target"] = results["replay_events_per_s"] / 100_000
    out["embedded engine CPU / floor CPU per event (target <= 3)"] = results["engine_over_floor"]
    if "engine_pure_python_over_floor" in results:
        out["the same engine as pure Python / floor"] = results["engine_pure_python_over_floor"]
    return out


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan  # a tiny run's backlog may run dry before a figure is taken


def table(results: dict[str, Any]) -> str:
    rows = [
        (k, f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}")
        for k, v in results.items()
        if isinstance(v, (int, float))
    ]
    rows += [(k, f"{v:.2f}") for k, v in results["ratios"].items()]
    if "hot_path" in results:
        rows.append(("the hot path ran", str(results["hot_path"])))
    return "| measure | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows) + "\n"


if __name__ == "__main__":
    sys.exit(main())
