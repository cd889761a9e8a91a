"""The fault suite: leadstream under real faults, each scenario compared with the replay.

    .venv/bin/python -m bench.chaos [--contacts N] [--only NAME[,NAME...]] [--seed S]

Every scenario streams the same generated journeys (contacts say only their job title: their fit
comes from their account's firmographics, so firmographics that arrive late matter) through
`leadstream worker` processes on a Kafka broker and a Redis of the suite's own
(bench/faultstack.py: other ports, Kafka's log kept across restarts, Redis with an AOF written
before it answers), injects its faults, waits until the workers have nothing left to do, and
compares with the embedded replay of the same events in event-time order (the oracle): MQL and
buying-group handoff ids, and every contact's engagement. It prints one table: expected and got
handoffs, missing, extra, duplicate deliveries, dead letters (expected), contacts whose score
differs, the longest stall of the whole group and of one partition, and the time taken.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.faultstack import ROOT, ClusterFaultStack, FaultStack
from bench.hostile import hostile_records, invisible_email
from leadstream.bootstrap import build_embedded, redis_blocking
from leadstream.config.loader import load_model
from leadstream.config.settings import Settings, Topics
from leadstream.engine.eventtime.watermarks import FileOrder
from leadstream.engine.records import SourceRecord
from leadstream.kafka.clients import kafka_client_config, make_producer
from leadstream.kafka.topic_io import TopicTail, produce_all, read_topic
from leadstream.kafka.topics import ensure_topics
from leadstream.scoring import compile_model
from leadstream.scoring.engagement import engagement
from leadstream.state.keys import contact_key
from leadstream.state.port import decode_state
from leadstream.tools.generator import JourneyGenerator, default_start, to_records
from leadstream.tools.settled import accounts_waiting
from leadstream.tools.worker_process import WorkerProcess

MODEL = load_model()
DAY = timedelta(days=1)
Event = dict[str, Any]
Record = tuple[str, bytes | None, bytes | None]


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    what: str
    engine: str = "confluent"
    workers: int = 2
    late_firmographics: bool = False
    fault: str | None = None  # worker-kill, redis-TERM, redis-KILL, redis-LOST, kafka-TERM, kafka-KILL
    hostile: int = 0
    cluster: bool = False  # on the cluster stack (scripts/stack cluster)


SCENARIOS = [
    Scenario(
        "replay",
        "leadstream replay of the file, firmographics a day late in it",
        workers=0,
        late_firmographics=True,
    ),
    Scenario("firmographics-first", "two workers; firmographics produced before the events"),
    Scenario(
        "firmographics-late",
        "two workers; each account's record 24 h after its first event",
        late_firmographics=True,
    ),
    Scenario(
        "kill-workers-confluent",
        "SIGKILL of one of two workers, restarted, again and again",
        fault="worker-kill",
    ),
    Scenario("kill-workers-faust", "the same with the faust engine", engine="faust", fault="worker-kill"),
    Scenario("redis-sigterm", "Redis stopped (SIGTERM) mid-stream and started again", fault="redis-TERM"),
    Scenario("redis-sigkill", "Redis killed (SIGKILL) mid-stream and started again", fault="redis-KILL"),
    Scenario(
        "redis-lost",
        "Redis killed (SIGKILL) mid-stream and started again without its data, as one run "
        "without persistence comes back",
        fault="redis-LOST",
    ),
    Scenario(
        "broker-sigterm", "the broker stopped (SIGTERM) mid-stream and started again", fault="kafka-TERM"
    ),
    Scenario(
        "broker-sigkill", "the broker killed (SIGKILL) mid-stream and started again", fault="kafka-KILL"
    ),
    Scenario(
        "hostile",
        "10k hostile records of 36 kinds among the events, plus duplicates, wrong keys "
        "and invisible characters in addresses",
        hostile=10_000,
    ),
    Scenario(
        "redis-failover",
        "cluster stack: the Redis master of slot 0 killed (SIGKILL), its replica promoted, the old "
        "master back as a replica",
        fault="redis-KILL",
        cluster=True,
    ),
    Scenario(
        "broker-kill-leader",
        "cluster stack: one of three brokers killed (SIGKILL), its partitions' leaders elected "
        "anew, the broker back",
        fault="kafka-KILL",
        cluster=True,
    ),
]


@dataclass(slots=True)
class Oracle:
    mql: set[str]
    groups: set[str]
    scores: dict[str, float]  # contact -> engagement at ``at``
    at: float
    qualified_at: dict[str, str] = field(default_factory=dict)  # handoff id -> its qualified_at


@dataclass(slots=True)
class Row:
    scenario: str
    expected: tuple[int, int]
    got: tuple[int, int] = (0, 0)
    missing: int = 0
    extra: int = 0
    # Handed off under the right id but at another moment: a contact's events crossing topics
    # after one of its decisions was published (see the README's arrival-order guarantee).
    moved: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    dead_letters_expected: int = 0
    score_mismatches: int = 0
    group_stall_s: float = 0.0
    partition_stall_s: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return (
            self.missing == 0
            and self.extra == 0
            and self.score_mismatches == 0
            and self.dead_letters == self.dead_letters_expected
        )


class Data:
    """The journeys, the time-ordered file the oracle reads, and each scenario's records."""

    def __init__(self, contacts: int, seed: int) -> None:
        self.events = JourneyGenerator(seed, contacts, start=default_start(), company_traits=False).events()
        self.seed = seed

    def records(self, topics: Topics, scenario: Scenario) -> tuple[list[Record], int]:
        """The records to produce, in production order, and how many must be dead-lettered."""
        firmographics = [e for e in self.events if e["type"] == "account"]
        journeys = [e for e in self.events if e["type"] != "account"]
        ordered = late_firmographics(firmographics, journeys) if scenario.late_firmographics else self.events
        records = to_records(ordered, topics)
        if not scenario.hostile:
            return list(records), 0
        return with_hostile(list(records), ordered, topics, scenario.hostile, self.seed)

    def oracle(self, settings: Settings) -> Oracle:
        events = self.events
        _pipeline, sink, store = _replayed(events, settings)
        handoffs = [json.loads(r.value or b"{}") for r in sink.on_topic(settings.topics.handoffs)]
        # By the id in the state: a key names its contact's pseudonym only (state/keys.py).
        states = {
            decode_state(stored.value).contact_id: decode_state(stored.value)
            for _key, stored in asyncio.run(
                store.load(store.keys(f"{settings.redis_key_prefix}:{{c:"))
            ).items()
            if stored.value is not None and stored.alias is None
        }
        at = max(s.clock for s in states.values()) + 86_400
        compiled = compile_model(MODEL)
        return Oracle(
            {h["handoff_id"] for h in handoffs if h["kind"] == "mql"},
            {h["handoff_id"] for h in handoffs if h["kind"] == "buying_group"},
            {contact: engagement(compiled, state, at)[0] for contact, state in states.items()},
            at,
            {h["handoff_id"]: h["qualified_at"] for h in handoffs},
        )


def _replayed(events: list[Event], settings: Settings) -> Any:
    order = FileOrder()
    pipeline, sink, store = build_embedded(settings, MODEL, order)

    async def run() -> None:
        batch = []
        for offset, event in enumerate(events):
            topic = settings.topics.accounts if event["type"] == "account" else "file"
            batch.append(SourceRecord(topic, 0, offset, json.dumps(event).encode()))
            if len(batch) == 1000:
                await pipeline.process(batch)
                await pipeline.release_accounts()
                batch = []
        await pipeline.process(batch)
        order.finish()
        await pipeline.release_accounts()

    asyncio.run(run())
    return pipeline, sink, store


def _time(event: Event) -> datetime:
    return datetime.fromisoformat((event.get("occurred_at") or event["updated_at"]).replace("Z", "+00:00"))


def late_firmographics(firmographics: list[Event], journeys: list[Event]) -> list[Event]:
    """Each account's record placed after the first event 24 h past its company's first event (a
    nightly sync), the record itself valid since before."""
    first: dict[str, datetime] = {}
    for event in journeys:
        domain = event.get("company_domain") or (event.get("email") or "@").rsplit("@", 1)[1]
        first.setdefault(domain, _time(event))
    never = _time(journeys[-1]) + 365 * DAY  # an account nobody engages with: at the end
    due = sorted((first.get(a["domain"], never) + DAY, n) for n, a in enumerate(firmographics))
    out, index = [], 0
    for event in journeys:
        while index < len(due) and due[index][0] <= _time(event):
            out.append(firmographics[due[index][1]])
            index += 1
        out.append(event)
    out.extend(firmographics[n] for _, n in due[index:])
    return out


def with_hostile(
    records: list[Record], ordered: list[Event], topics: Topics, count: int, seed: int
) -> tuple[list[Record], int]:
    """The records with hostile ones among them, and some valid ones made messy: sent twice,
    keyed by another contact, or with invisible characters in the address."""
    rng = random.Random(seed)
    messy: list[Record] = []
    for record, event in zip(records, ordered, strict=True):
        roll = rng.random()
        if event["type"] == "account" or roll > 0.06:
            messy.append(record)
        elif roll < 0.02:
            messy += [record, record]  # the producer retried
        elif roll < 0.04:
            messy.append((record[0], b"someone-else", record[2]))  # keyed by another profile
        else:
            messy.append((record[0], record[1], json.dumps(invisible_email(event)).encode()))
    bad, expected = hostile_records(ordered, count, seed)
    inputs = [t for t in topics.inputs() if t != topics.accounts]
    by_position: dict[int, list[Record]] = {}
    for position, _kind, value, key in bad:
        by_position.setdefault(position, []).append((rng.choice(inputs), key.encode(), value))
    out: list[Record] = []
    for n, record in enumerate(messy):
        out.append(record)
        out.extend(by_position.get(n, ()))
    return out, expected


class Stalls(threading.Thread):
    """Watches the group's committed offsets: the longest time nothing moved while records waited,
    for the whole group and for any one partition."""

    def __init__(self, settings: Settings, total: int) -> None:
        super().__init__(daemon=True)
        self._settings = settings
        self._total = total
        self._halt = threading.Event()
        self.group_s = 0.0
        self.partition_s = 0.0
        self.progress = 0.0  # share of the records committed

    def run(self) -> None:
        consumer = Consumer(
            {**kafka_client_config(self._settings), "group.id": self._settings.consumer_group}
        )
        partitions: list[TopicPartition] = []
        group_since: float | None = None
        moved: dict[tuple[str, int], tuple[int, float]] = {}
        last_total = -1
        while not self._halt.wait(0.5):
            now = time.monotonic()
            try:
                if not partitions:
                    for topic in self._settings.topics.inputs():
                        meta = consumer.list_topics(topic, timeout=5).topics[topic]
                        partitions += [TopicPartition(topic, p) for p in meta.partitions]
                committed = consumer.committed(partitions, timeout=5)
                highs = [consumer.get_watermark_offsets(tp, timeout=5)[1] for tp in partitions]
            except KafkaException:
                continue  # the broker is down: nothing moves, the stall goes on
            total = sum(max(tp.offset, 0) for tp in committed)
            waiting = sum(h - max(tp.offset, 0) for tp, h in zip(committed, highs, strict=True))
            self.progress = total / max(1, self._total, sum(highs))
            if waiting > 0 and total == last_total:
                group_since = group_since or now
                self.group_s = max(self.group_s, now - group_since)
            else:
                group_since = None
            last_total = total
            for tp, high in zip(committed, highs, strict=True):
                key, offset = (tp.topic, tp.partition), max(tp.offset, 0)
                held = moved.get(key)
                if held is None or held[0] != offset or offset >= high:
                    moved[key] = (offset, now)
                else:
                    self.partition_s = max(self.partition_s, now - held[1])
        consumer.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def settings_for(stack: FaultStack | ClusterFaultStack, scenario: Scenario) -> Settings:
    run = uuid.uuid4().hex[:8]
    topics = Topics(**{name: f"chaos{run}.{name}" for name in Topics.model_fields})
    return Settings(
        kafka_bootstrap_servers=stack.bootstrap,
        redis_url=stack.redis_url,
        topics=topics,
        consumer_group=f"chaos{run}",
        redis_key_prefix=f"chaos{run}",
        worker_engine=scenario.engine,
        redis_cluster=getattr(stack, "cluster", False),
        topic_replication_factor=3 if getattr(stack, "cluster", False) else 1,
    )


def _produce(settings: Settings, records: list[Record], rate: float | None, failures: list[str]) -> None:
    """Produce ``records`` in order, ``rate`` records per second at most (None: as fast as Kafka
    takes them), retrying through a broker restart."""
    producer = make_producer(settings)
    step = 500
    started = time.monotonic()
    for start in range(0, len(records), step):
        if rate:
            time.sleep(max(0.0, started + start / rate - time.monotonic()))
        for attempt in range(60):
            try:
                produce_all(producer, records[start : start + step])
                break
            except Exception as exc:  # the broker is being restarted: the idempotent producer retries
                if attempt == 59:
                    failures.append(f"producing failed: {exc}")
                    return
                time.sleep(1)


def run_scenario(
    stack: FaultStack | ClusterFaultStack,
    data: Data,
    oracle: Oracle,
    scenario: Scenario,
    logs: Path,
    timeout_s: float,
    rate: float | None = None,
) -> Row:
    settings = settings_for(stack, scenario)
    row = Row(scenario.name, (len(oracle.mql), len(oracle.groups)))
    started = time.monotonic()
    records, row.dead_letters_expected = data.records(settings.topics, scenario)
    if scenario.workers == 0:
        _replay_cli(settings, records, row, oracle, logs)
        row.seconds = time.monotonic() - started
        return row
    ensure_topics(settings)
    workers = [
        WorkerProcess(settings, logs / f"{scenario.name}-worker-{n}.log", {"LEADSTREAM_INSTANCE_ID": f"w{n}"})
        for n in range(scenario.workers)
    ]
    stalls = Stalls(settings, len(records))
    try:
        for worker in workers:
            worker.start()
        stalls.start()
        say(f"{scenario.name}: producing {len(records)} records")
        failures: list[str] = []
        producing = threading.Thread(target=_produce, args=(settings, records, rate, failures), daemon=True)
        producing.start()
        _inject(scenario, stack, workers, stalls, row)
        producing.join()
        row.notes += failures
        _settle(settings, workers, timeout_s, row)
    finally:
        stalls.stop()
        for worker in workers:
            worker.stop()
    row.group_stall_s, row.partition_stall_s = stalls.group_s, stalls.partition_s
    _compare(settings, oracle, row)
    if row.exact:
        _clean(settings)
    else:  # kept for a look: the topics and keys of this scenario
        row.notes.append(f"kept topics and keys under {settings.redis_key_prefix}")
    row.seconds = time.monotonic() - started
    return row


def _inject(
    scenario: Scenario,
    stack: FaultStack | ClusterFaultStack,
    workers: list[WorkerProcess],
    stalls: Stalls,
    row: Row,
) -> None:
    fault = scenario.fault
    if fault is None:
        return
    if fault == "worker-kill":
        kills, victim = 0, 0
        while kills < 6 and stalls.progress < 0.9:
            time.sleep(6 if kills else 3)
            worker = workers[victim % len(workers)]
            worker.kill()
            worker.start(timeout_s=120)
            kills, victim = kills + 1, victim + 1
        row.notes.append(f"{kills} worker kills")
        return
    service, sig = fault.split("-")
    while stalls.progress < 0.35:
        time.sleep(0.5)
    wipe = sig == "LOST"  # SIGKILL, and its data gone
    sig = "KILL" if wipe else sig
    say(f"{scenario.name}: {service} gets SIG{sig} with {stalls.progress:.0%} of the records consumed")
    row.notes.append(
        f"{service} SIG{sig}{' and its data gone' if wipe else ''} at {stalls.progress:.0%} consumed"
    )
    if isinstance(stack, FaultStack):
        stack.restart(service, getattr(signal, f"SIG{sig}"), wipe=wipe)
    else:
        stack.restart(service, getattr(signal, f"SIG{sig}"))


def _settle(settings: Settings, workers: list[WorkerProcess], timeout_s: float, row: Row) -> None:
    from leadstream.kafka.topic_io import consumer_lag

    deadline = time.monotonic() + timeout_s
    lag, waiting = -1, -1
    while time.monotonic() < deadline:
        for worker in workers:
            if not worker.running():
                row.notes.append(f"a worker exited: {worker.log_tail(5)}")
                worker.start(timeout_s=120)
        try:
            lag = consumer_lag(settings, settings.topics.inputs())
            waiting = accounts_waiting(settings)
            if lag == 0 and not waiting:
                return
        except Exception:  # the broker or Redis coming back
            pass
        time.sleep(1)
    row.notes.append(f"not settled after {timeout_s:.0f}s: lag {lag}, accounts waiting {waiting}")


def _compare(settings: Settings, oracle: Oracle, row: Row) -> None:
    handoffs = read_topic(settings, settings.topics.handoffs)
    _count(handoffs, oracle, row)
    row.dead_letters, again = _dead_letters(settings)
    if again:
        row.notes.append(f"{again} dead letters delivered twice (records consumed again after a rebalance)")
    client = redis_blocking(settings)
    compiled = compile_model(MODEL)
    contacts = sorted(oracle.scores)
    for start in range(0, len(contacts), 2000):
        chunk = contacts[start : start + 2000]
        pipe = client.pipeline(transaction=False)
        for contact in chunk:
            pipe.hget(contact_key(settings.redis_key_prefix, contact), "s")
        for contact, raw in zip(chunk, pipe.execute(), strict=True):
            got = engagement(compiled, decode_state(raw), oracle.at)[0] if raw else math.nan
            if not math.isclose(got, oracle.scores[contact], rel_tol=1e-9, abs_tol=1e-6):
                row.score_mismatches += 1
    client.close()


def _dead_letters(settings: Settings) -> tuple[int, int]:
    """How many records were dead-lettered, and how many of those more than once (their values
    are what came in, not JSON: they are told apart by the headers naming their place)."""
    tail = TopicTail(settings, settings.topics.dead_letters, from_beginning=True)
    places: dict[tuple[str | bytes | None, ...], int] = {}
    try:
        while True:
            got = 0
            for message in tail.poll(time.monotonic() + 2.0):
                headers = dict(message.headers() or ())
                place = tuple(headers.get(f"__connect.errors.{h}") for h in ("topic", "partition", "offset"))
                places[place] = places.get(place, 0) + 1
                got += 1
            if not got:
                return len(places), sum(n - 1 for n in places.values())
    finally:
        tail.close()


def _count(handoffs: list[dict[str, Any]], oracle: Oracle, row: Row) -> None:
    mql = [h["handoff_id"] for h in handoffs if h.get("kind") == "mql"]
    groups = [h["handoff_id"] for h in handoffs if h.get("kind") == "buying_group"]
    row.got = (len(set(mql)), len(set(groups)))
    row.missing = len(oracle.mql - set(mql)) + len(oracle.groups - set(groups))
    row.extra = len(set(mql) - oracle.mql) + len(set(groups) - oracle.groups)
    row.duplicates = len(mql) + len(groups) - len(set(mql)) - len(set(groups))
    row.moved = len(
        {
            h["handoff_id"]
            for h in handoffs
            if h.get("handoff_id") in oracle.qualified_at
            and h.get("qualified_at") != oracle.qualified_at[h["handoff_id"]]
        }
    )


def _replay_cli(settings: Settings, records: list[Record], row: Row, oracle: Oracle, logs: Path) -> None:
    """``leadstream replay`` on the file, in production order (not event-time order)."""
    import subprocess

    path, out = logs / "replay-events.jsonl", logs / "replay-handoffs.jsonl"
    with path.open("wb") as handle:
        for _topic, _key, value in records:
            handle.write((value or b"") + b"\n")
    subprocess.run(
        [sys.executable, "-m", "leadstream.cli", "replay", "--quiet", str(path), "--handoffs-out", str(out)],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    _count([json.loads(line) for line in out.read_text().splitlines()], oracle, row)
    row.notes.append("scores: the replay's own (no Redis)")


def _clean(settings: Settings) -> None:
    admin = AdminClient(kafka_client_config(settings))
    for future in admin.delete_topics(list({*settings.topics.model_dump().values()})).values():
        with contextlib.suppress(KafkaException):
            future.result()
    client = redis_blocking(settings)
    for key in client.scan_iter(f"{settings.redis_key_prefix}:*", count=1000):
        client.unlink(key)
    client.close()


def table(rows: list[Row]) -> str:
    head = [
        "scenario",
        "expected MQL / groups",
        "got MQL / groups",
        "missing",
        "extra",
        "at another moment",
        "duplicate deliveries",
        "dead letters (expected)",
        "contacts' scores differing",
        "longest stall: group / partition",
        "time",
        "notes",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r.scenario,
            f"{r.expected[0]} / {r.expected[1]}",
            f"{r.got[0]} / {r.got[1]}",
            str(r.missing),
            str(r.extra),
            str(r.moved),
            str(r.duplicates),
            f"{r.dead_letters} ({r.dead_letters_expected})",
            str(r.score_mismatches),
            f"{r.group_stall_s:.1f} s / {r.partition_stall_s:.1f} s",
            f"{r.seconds:.0f} s",
            "; ".join(r.notes),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None, emit: Callable[[str], None] = print) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=32_000, help="journeys (about 6 events each)")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument(
        "--only", help="comma-separated scenario names: " + ", ".join(s.name for s in SCENARIOS)
    )
    parser.add_argument("--hostile", type=int, default=10_000, help="hostile records in the hostile scenario")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds a scenario may take to settle")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="produce at most this many records per second (default: at once)",
    )
    parser.add_argument(
        "--keep-stack", action="store_true", help="leave the fault suite's Kafka and Redis up"
    )
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only.split(",")]
    if args.hostile != 10_000:
        chosen = [Scenario(**{**s.__dict__, "hostile": args.hostile}) if s.hostile else s for s in chosen]
    logs = ROOT / ".leadstream" / "faults" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stack = FaultStack()
    say(f"starting the fault suite's stack (Kafka {stack.bootstrap}, Redis {stack.redis_url})")
    stack.up()
    cluster = ClusterFaultStack() if any(s.cluster for s in chosen) else None
    rows = []
    try:
        if cluster is not None:
            say(f"starting the cluster stack (Kafka {cluster.bootstrap}, Redis Cluster {cluster.redis_url})")
            cluster.up()
        say(f"generating {args.contacts} journeys and replaying them in event-time order (the oracle)")
        data = Data(args.contacts, args.seed)
        oracle = data.oracle(settings_for(stack, SCENARIOS[0]))
        say(f"{len(data.events)} events: {len(oracle.mql)} MQLs, {len(oracle.groups)} buying groups expected")
        for scenario in chosen:
            say(f"{scenario.name}: {scenario.what}")
            on = cluster if scenario.cluster and cluster is not None else stack
            row = run_scenario(on, data, oracle, scenario, logs, args.timeout, args.rate)
            say(f"{scenario.name}: {'exact' if row.exact else 'DIFFERS'} ({row.seconds:.0f} s)")
            rows.append(row)
    finally:
        if not args.keep_stack:
            stack.down()
            if cluster is not None:
                cluster.down()
    emit(f"{len(data.events)} events, {args.contacts} journeys, seed {args.seed}\n")
    emit(table(rows))
    return rows


if __name__ == "__main__":
    sys.exit(0 if all(r.exact for r in main()) else 1)
