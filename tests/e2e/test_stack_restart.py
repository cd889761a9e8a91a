"""The local stack as `scripts/stack up` runs it by default: a broker or Redis killed (SIGKILL) and
started again by `up` comes back on its data, so the offsets a worker committed still agree with
the state it wrote; `down` clears both for a clean slate."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from confluent_kafka import Consumer, Producer

from bench.faultstack import FaultStack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[FaultStack]:
    # Ports of its own, next to the fault suite's; the default (non-persistent) mode.
    local = FaultStack(tmp_path / "stack", 9392, 9393, 6590, persist=False)
    local.up()
    yield local
    local.down()


def _read_all(bootstrap: str, topic: str, expected: int) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"t{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    try:
        for _ in range(60):
            for message in consumer.consume(100, timeout=1.0):
                if message.error() is None:
                    values.append(message.value())
            if len(values) >= expected:
                break
    finally:
        consumer.close()
    return values


def test_a_killed_broker_and_redis_come_back_on_their_data_and_down_clears_it(stack: FaultStack):
    topic = f"restart-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": stack.bootstrap, "acks": "all"})
    sent = [f"event {i}".encode() for i in range(5)]
    for value in sent:
        producer.produce(topic, value)
    assert producer.flush(30) == 0
    client = redis.Redis.from_url(stack.redis_url)
    client.hset("ls:{c:someone}", mapping={"s": b"state", "v": 3})

    stack.kill("kafka", signal.SIGKILL)
    stack.kill("redis", signal.SIGKILL)
    stack.up()

    assert sorted(_read_all(stack.bootstrap, topic, len(sent))) == sorted(sent)
    client = redis.Redis.from_url(stack.redis_url)
    assert client.hgetall("ls:{c:someone}") == {b"s": b"state", b"v": b"3"}

    stack.down()
    assert not (stack.directory / "kafka-data").exists()
    assert not (stack.directory / "redis-data").exists()
