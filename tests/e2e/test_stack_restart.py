"""The local stack as `scripts/stack up` runs it by default: a broker or Redis killed (SIGKILL) and
started again by `up` comes back on its data, so the offsets a worker committed still agree with
the state it wrote; `down` clears both for a clean slate."""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from confluent_kafka import Producer

from bench.faultstack import FaultStack
from leadstream.config.settings import Settings
from leadstream.kafka.topic_io import read_topic

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[FaultStack]:
    # Ports of its own, next to the fault suite's; the default (non-persistent) mode.
    local = FaultStack(tmp_path / "stack", 9392, 9393, 6590, persist=False)
    local.up()
    yield local
    local.down()


def test_a_killed_broker_and_redis_come_back_on_their_data_and_down_clears_it(stack: FaultStack):
    topic = f"restart-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": stack.bootstrap, "acks": "all"})
    sent = [{"n": i} for i in range(5)]
    for value in sent:
        producer.produce(topic, json.dumps(value).encode())
    assert producer.flush(30) == 0
    client = redis.Redis.from_url(stack.redis_url)
    client.hset("ls:{c:someone}", mapping={"s": b"state", "v": 3})

    stack.kill("kafka", signal.SIGKILL)
    stack.kill("redis", signal.SIGKILL)
    stack.up()

    # The broker answers again before every partition has its leader back: read until all are there.
    read: list[dict] = []
    for _ in range(10):
        read = read_topic(Settings(kafka_bootstrap_servers=stack.bootstrap), topic)
        if len(read) >= len(sent):
            break
    assert sorted(read, key=lambda v: v["n"]) == sent
    client = redis.Redis.from_url(stack.redis_url)
    assert client.hgetall("ls:{c:someone}") == {b"s": b"state", b"v": b"3"}

    stack.down()
    assert not (stack.directory / "kafka-data").exists()
    assert not (stack.directory / "redis-data").exists()
