"""Waiting on real Kafka in integration tests (no sleeps standing in for readiness)."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

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


@contextlib.contextmanager
def single_redis(data_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A redis-server of the test's own on a free port (not the stack's, which may be a cluster),
    with the port it listens on; stopped (and resumed first, if the test stopped it) at the end."""
    import signal

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout != b"PONG\n":
            assert time.monotonic() < deadline, "the test's redis-server did not start"
            time.sleep(0.05)
        yield server, port
    finally:
        server.send_signal(signal.SIGCONT)
        server.terminate()
        server.wait(10)
