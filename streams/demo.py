"""``leadstream demo``: the whole pipeline on the local stack, printed as it happens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from config.settings import Settings
from streams.kafka_io import TopicTail, make_producer, produce_all
from streams.topics import ensure_topics


def run_demo(settings: Settings, events: int, timeout_s: float) -> int:
    ensure_topics(settings)
    tail = TopicTail(settings, settings.topics.handoffs)
    print(f"starting a worker against {settings.kafka_bootstrap_servers} and {settings.redis_url}")
    worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=os.environ.copy())
    try:
        run = str(int(time.time()))
        records = [
            (
                settings.topics.page_views,
                f"demo-{run}-{i % 5}".encode(),
                json.dumps({"contact_id": f"demo-{run}-{i % 5}", "url": "/pricing"}).encode(),
            )
            for i in range(events)
        ]
        produce_all(make_producer(settings), records)
        print(f"sent {events} events to {settings.topics.page_views}; waiting for handoffs")
        seen = 0
        for message in tail.poll(time.monotonic() + timeout_s):
            print(f"handoff  key={message.key().decode()}  {message.value().decode()}")
            seen += 1
            if seen >= events:
                break
        print(f"summary: {events} events sent, {seen} handoffs received")
        return 0 if seen >= events else 1
    finally:
        tail.close()
        worker.terminate()
        worker.wait(30)
