"""Waiting on real Kafka in integration tests (no sleeps standing in for readiness)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

from leadstream.config.loader import default_model_text, load_model
from leadstream.config.settings import Settings
from leadstream.kafka.topic_io import TopicTail
from leadstream.tools.settled import wait_settled


def renamed_model(name: str) -> str:
    """The default model's text under another version name: same rules, a new version."""
    first = load_model().version
    text = default_model_text()
    assert f'version: "{first}"' in text
    return text.replace(f'version: "{first}"', f'version: "{name}"', 1)


def wait_caught_up(settings: Settings, timeout_s: float = 120.0, group: str | None = None) -> None:
    """Until the worker's group has committed every record on the input topics, and applied every
    account point the stream has reached (they wait for the watermarks: a second or so)."""
    wait_settled(settings, timeout_s, group)


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


TRAITS = {
    "email": "ana@acme-labs.com",
    "title": "VP Marketing",
    "industry": "software",
    "employees": 400,
    "region": "emea",
}


def segment_journey(client, user: str, start: datetime) -> None:
    """identify, pricing twice, a case study, a demo request: what the default model hands off."""
    step = timedelta(minutes=7)
    client.identify(user, TRAITS, timestamp=start)
    client.page(user, properties={"url": "https://www.example.com/pricing"}, timestamp=start + step)
    client.page(user, properties={"url": "https://www.example.com/pricing?x=1"}, timestamp=start + 2 * step)
    client.page(
        user, properties={"url": "https://www.example.com/case-studies/a"}, timestamp=start + 3 * step
    )
    client.track(user, "Demo Requested", {"form_id": "demo"}, timestamp=start + 4 * step)
    client.flush()
