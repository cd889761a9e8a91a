"""Whether the workers have anything left to do: for tests, the fault suite and operators' scripts.

Settled means the consumer group has committed every record of the input topics and no account
holds points the stream has already reached (they wait for the watermarks, a second or so; points
waiting for their account's firmographics, up to the late-data horizon, do not count).
"""

from __future__ import annotations

import time
from typing import cast

from leadstream.bootstrap import redis_blocking
from leadstream.config.settings import Settings
from leadstream.engine.eventtime.watermarks import PartitionProgress
from leadstream.kafka.topic_io import consumer_lag
from leadstream.state.keys import ACCOUNT_SHARDS, account_queue_key, watermark_key

__all__ = ["accounts_waiting", "wait_settled"]


def accounts_waiting(settings: Settings) -> int:
    """Accounts with points the stream has reached but not applied yet."""
    client = redis_blocking(settings)
    try:
        table = cast(
            dict[bytes, bytes],
            client.hgetall(watermark_key(settings.redis_key_prefix, settings.consumer_group)),
        )
        times = [PartitionProgress.decode(k.decode(), v).max_event_time for k, v in table.items()]
        stream_time = max(times, default=float("-inf"))
        return sum(
            int(client.zcount(account_queue_key(settings.redis_key_prefix, shard), "-inf", stream_time))
            for shard in range(ACCOUNT_SHARDS)
        )
    finally:
        client.close()


def wait_settled(settings: Settings, timeout_s: float = 120.0, group: str | None = None) -> None:
    """Until the group committed everything and no account waits for the stream; TimeoutError
    saying which of the two did not happen."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if consumer_lag(settings, settings.topics.inputs(), group) == 0:
            break
        time.sleep(0.5)
    else:
        raise TimeoutError(f"group {group or settings.consumer_group} still lagging after {timeout_s:.0f}s")
    while time.monotonic() < deadline:
        if not accounts_waiting(settings):
            return
        time.sleep(0.2)
    raise TimeoutError(f"accounts still waiting for the watermarks after {timeout_s:.0f}s")
