"""Waiting on real Kafka in integration tests (no sleeps standing in for readiness)."""

from __future__ import annotations

import json
import time

import redis

from config.settings import Settings
from streams.kafka_io import TopicTail, consumer_lag
from streams.state.keys import ACCOUNT_SHARDS, account_queue_key, watermark_key
from streams.watermarks import PartitionProgress


def wait_caught_up(settings: Settings, timeout_s: float = 120.0, group: str | None = None) -> None:
    """Until the worker's group has committed every record on the input topics, and applied every
    account point the stream has reached (they wait for the watermarks: a second or so)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if consumer_lag(settings, settings.topics.inputs(), group) == 0:
            break
        time.sleep(0.5)
    else:
        raise TimeoutError(f"group {group or settings.consumer_group} still lagging after {timeout_s}s")
    while time.monotonic() < deadline:
        if not accounts_waiting(settings):
            return
        time.sleep(0.2)
    raise TimeoutError(f"accounts still waiting for the watermarks after {timeout_s}s")


def accounts_waiting(settings: Settings) -> int:
    """Accounts with points the stream has reached but not applied yet (those waiting for their
    firmographics, up to the late-data horizon, do not count)."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        table = client.hgetall(watermark_key(settings.redis_key_prefix, settings.consumer_group))
        times = [PartitionProgress.decode(k.decode(), v).max_event_time for k, v in table.items()]
        stream_time = max(times, default=float("-inf"))
        return sum(
            client.zcount(account_queue_key(settings.redis_key_prefix, shard), "-inf", stream_time)
            for shard in range(ACCOUNT_SHARDS)
        )
    finally:
        client.close()


def read_all(settings: Settings, topic: str, settle_s: float = 1.0) -> list:
    """Every record on ``topic`` from the beginning (stops after ``settle_s`` with nothing new)."""
    tail = TopicTail(settings, topic, from_beginning=True)
    out = []
    try:
        while True:
            batch = list(tail.poll(time.monotonic() + settle_s))
            if not batch:
                return out
            out.extend(batch)
    finally:
        tail.close()


def handoffs(settings: Settings) -> list[dict]:
    return [json.loads(m.value()) for m in read_all(settings, settings.topics.handoffs)]
