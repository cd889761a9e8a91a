"""Two workers in one group, one leaving mid-stream: nothing lost, nothing counted twice."""

from __future__ import annotations

import asyncio
import json
import math
import time

import pytest

from leadstream.bootstrap import build_embedded
from leadstream.config.loader import load_model
from leadstream.engine.records import SourceRecord
from leadstream.kafka.clients import make_consumer, make_producer
from leadstream.kafka.confluent_loop import ASSIGNMENT_STRATEGY, consumer_config
from leadstream.kafka.topic_io import produce_all
from leadstream.scoring import compile_model
from leadstream.scoring.engagement import engagement
from leadstream.state.keys import contact_key
from leadstream.state.port import decode_state
from leadstream.tools.generator import JourneyGenerator, default_start, to_records
from tests.integration.helpers import handoffs, wait_caught_up

pytestmark = pytest.mark.integration
MODEL = load_model()


@pytest.mark.parametrize("engine", ["faust", "confluent"])
def test_rebalance_mid_stream_loses_and_duplicates_nothing(settings, redis_client, start_worker, engine):
    settings = settings.model_copy(update={"worker_engine": engine, "timer_interval_s": 60})
    events, firmographics, journeys = generated(settings, seed=41, contacts=400)
    leaving = start_worker(settings)
    start_worker(settings)
    producer = make_producer(settings)
    produce_all(producer, firmographics)
    produce_all(producer, journeys[: len(journeys) // 2])
    time.sleep(1.0)
    leaving.stop()  # leaves the group mid-stream: its partitions move to the other worker
    produce_all(producer, journeys[len(journeys) // 2 :])
    wait_caught_up(settings, timeout_s=180)

    pipeline, sink, store = build_embedded(settings, MODEL)
    live = {h["handoff_id"] for h in handoffs(settings) if h["kind"] == "mql"}
    assert live == embedded_mql_ids(pipeline, sink, settings, events)  # none lost, none extra

    compiled = compile_model(MODEL)
    loaded = asyncio.run(store.load(store.keys(f"{settings.redis_key_prefix}:{{c:")))
    later = max(decode_state(s.value).clock for s in loaded.values() if s.value) + 86_400
    for stored in loaded.values():
        if stored.value is None or stored.alias is not None:
            continue
        contact = decode_state(stored.value).contact_id  # keys name pseudonyms only
        raw = redis_client.hget(contact_key(settings.redis_key_prefix, contact), "s")
        assert raw is not None, contact
        assert math.isclose(
            engagement(compiled, decode_state(raw), later)[0],
            engagement(compiled, decode_state(stored.value), later)[0],
            abs_tol=1e-9,
        ), contact


def test_two_confluent_workers_each_read_the_same_partitions_of_every_input_topic(settings):
    """A contact's events are keyed alike on every topic, so they land on partition N of each:
    one worker must read all of them to score them in event-time order (kafka/in_step.py).
    cooperative-sticky gave one worker the forms and the other the webinars."""
    from leadstream.kafka.topics import ensure_topics

    ensure_topics(settings)
    topics = list(settings.topics.inputs())
    consumers = [
        make_consumer(settings, settings.consumer_group, **consumer_config(settings)) for _ in range(2)
    ]
    every = len(topics) * settings.topic_partitions

    def owned() -> list[set[tuple[str, int]]]:
        return [{(tp.topic, tp.partition) for tp in c.assignment()} for c in consumers]

    try:
        # The first worker owns everything, then a second joins (a scale-out).
        consumers[0].subscribe(topics)
        deadline = time.monotonic() + 60
        while len(owned()[0]) < every and time.monotonic() < deadline:
            consumers[0].poll(0.1)
        consumers[1].subscribe(topics)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for consumer in consumers:
                consumer.poll(0.1)
            mine = owned()
            if all(mine) and sum(map(len, mine)) == every:
                break
        owned_now = owned()
        assert all(owned_now), f"both consumers should own partitions: {owned_now}"
        assert sum(map(len, owned_now)) == every
        for mine in owned_now:
            numbers = {topic: {n for t, n in mine if t == topic} for topic in topics}
            assert len({frozenset(n) for n in numbers.values()}) == 1, numbers
    finally:
        for consumer in consumers:
            consumer.close()


@pytest.mark.parametrize("engine", ["faust", "confluent"])
def test_a_fenced_static_worker_joins_again_and_loses_nothing(settings, start_worker, engine):
    """A static member fenced by another consumer with its group.instance.id (what a coordinator
    failover can do to it) must take its place back and neither lose nor double what was in
    flight. librdkafka reports the fence as a _FATAL event: the confluent worker must join again
    with a new consumer rather than poll the dead one. aiokafka (faust) hears "unknown member"
    on its next commit or heartbeat and joins again by itself."""
    settings = settings.model_copy(
        update={"worker_engine": engine, "instance_id": "fenced-0", "timer_interval_s": 60}
    )
    events, firmographics, journeys = generated(settings, seed=43, contacts=300)
    worker = start_worker(settings)
    producer = make_producer(settings)
    produce_all(producer, firmographics)
    produce_all(producer, journeys[: len(journeys) // 2])
    wait_caught_up(settings, timeout_s=120)

    # An intruder with the worker's identity takes its place in the group, then goes away
    # without leaving (a static member's close does not leave), as a fenced one would find it.
    if engine == "confluent":
        intruder = make_consumer(
            settings,
            settings.consumer_group,
            **{"group.instance.id": "fenced-0", "partition.assignment.strategy": ASSIGNMENT_STRATEGY},
        )
        intruder.subscribe(list(settings.topics.inputs()))
        deadline = time.monotonic() + 60
        while not intruder.assignment() and time.monotonic() < deadline:
            intruder.poll(0.2)
        assert intruder.assignment(), "the intruder never took the worker's place"
        intruder.close()
    else:  # a faust group speaks faust's assignment protocol: the intruder is a worker too
        intruder = start_worker(settings)
        deadline = time.monotonic() + 60
        while "partitions assigned" not in intruder.log_tail(400) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "partitions assigned" in intruder.log_tail(400), intruder.log_tail()
        intruder.stop()

    if engine == "confluent":
        deadline = time.monotonic() + 90
        while "joining the group again" not in worker.log_tail(400) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "joining the group again" in worker.log_tail(400), worker.log_tail()
    produce_all(producer, journeys[len(journeys) // 2 :])
    wait_caught_up(settings, timeout_s=180)
    assert worker.running(), worker.log_tail()

    pipeline, sink, _ = build_embedded(settings, MODEL)
    live = [h["handoff_id"] for h in handoffs(settings) if h["kind"] == "mql"]
    assert set(live) == embedded_mql_ids(pipeline, sink, settings, events)


def generated(settings, seed: int, contacts: int) -> tuple[list[dict], list, list]:
    """Generated journeys (their events, the accounts' records, the rest), on topics made."""
    from leadstream.kafka.topics import ensure_topics

    ensure_topics(settings)
    events = JourneyGenerator(seed=seed, contacts=contacts, start=default_start()).events()
    records = to_records(events, settings.topics)
    firmographics = [r for r in records if r[0] == settings.topics.accounts]
    return events, firmographics, [r for r in records if r[0] != settings.topics.accounts]


def embedded_mql_ids(pipeline, sink, settings, events: list[dict]) -> set[str]:
    """The MQL handoff ids the embedded engine gives the same events in file order."""
    ordered = [
        SourceRecord(settings.topics.accounts, 0, i, json.dumps(e).encode())
        for i, e in enumerate(e for e in events if e["type"] == "account")
    ]
    ordered += [
        SourceRecord("file", 0, i, json.dumps(e).encode())
        for i, e in enumerate(events)
        if e["type"] != "account"
    ]
    asyncio.run(pipeline.process(ordered))
    expected = {
        json.loads(r.value)["handoff_id"]
        for r in sink.on_topic(settings.topics.handoffs)
        if json.loads(r.value)["kind"] == "mql"
    }
    return expected  # a handoff published again has the same id: a set compares them


def test_two_confluent_workers_sharing_an_instance_id_stop_saying_so(settings, start_worker):
    """A misconfiguration, not a fault to ride out: each fences the other every few seconds, so
    the rejoin budget runs out and a worker stops with an error that names the cause."""
    settings = settings.model_copy(update={"worker_engine": "confluent", "instance_id": "twin-0"})
    from leadstream.kafka.topics import ensure_topics

    ensure_topics(settings)
    first = start_worker(settings)
    second = start_worker(settings)
    deadline = time.monotonic() + 240
    while first.running() and second.running() and time.monotonic() < deadline:
        time.sleep(1.0)
    stopped = [w for w in (first, second) if not w.running()]
    assert stopped, "both workers still running after 240 s of fencing each other"
    log = stopped[0].log_tail(400)
    assert "fenced by other consumer with same group.instance.id" in log, log
    assert "same LEADSTREAM_INSTANCE_ID" in log, log  # each time it joined again
    assert "LEADSTREAM_INSTANCE_ID=twin-0: give each its own" in log.splitlines()[-1], log
    assert stopped[0].process is not None and stopped[0].process.returncode != 0
