"""Latency from an event's produce time to its arrival downstream, under load.

Background load: generated journeys produced at a fixed rate. Probes: buyer journeys whose last
event (a demo request) qualifies the contact; for the worker the latency is the time from
producing that event to receiving the handoff it triggered (matched by ``triggering_event_id``).
For the raw passthrough (the ceiling) it is the time until the same event, forwarded unchanged,
arrives on the passthrough's output topic (matched by ``event_id``).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from leadstream.config.settings import Settings
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import TopicTail
from leadstream.tools.generator import TOPIC_OF_TYPE

PROBE_EVERY_S = 0.05


def _probe(n: int, now: datetime) -> list[dict[str, Any]]:
    contact = f"probe-{uuid.uuid4().hex[:8]}-{n}"
    base = {"contact_id": contact, "email": f"{contact}@probe-labs.com"}

    def at(seconds: float) -> str:
        return (now - timedelta(seconds=seconds)).isoformat()

    return [
        {
            **base,
            "event_id": f"{contact}-0",
            "type": "identify",
            "occurred_at": at(5),
            "traits": {"job_title": "VP Sales", "industry": "software", "employees": 300, "region": "emea"},
        },
        {
            **base,
            "event_id": f"{contact}-1",
            "type": "page_view",
            "occurred_at": at(4),
            "url": "https://x.io/pricing",
        },
        {
            **base,
            "event_id": f"{contact}-2",
            "type": "page_view",
            "occurred_at": at(3),
            "url": "https://x.io/pricing",
        },
        {
            **base,
            "event_id": f"{contact}-3",
            "type": "form_submission",
            "occurred_at": at(2),
            "form_id": "f",
            "form_type": "demo_request",
        },
    ]


def measure(
    settings: Settings,
    background: list[tuple[str, bytes, bytes]],
    rate: float,
    seconds: float,
    watch: str | None = None,
) -> dict[str, float]:
    """Offer ``rate`` events/s for ``seconds`` with a probe every ~0.05 s (about 400 in 20 s, so
    p99 is not just the slowest one); return percentiles in ms.

    ``watch``: the topic where probes arrive (default: the handoff topic)."""
    producer = make_producer(settings, **{"linger.ms": 1})
    tail = TopicTail(settings, watch or settings.topics.handoffs)
    sent: dict[str, float] = {}
    arrived: dict[str, float] = {}
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            for message in tail.poll(time.monotonic() + 0.2, wait_s=0.002):
                received = json.loads(message.value() or b"{}")
                probe = received.get("triggering_event_id") or received.get("event_id", "")
                arrived.setdefault(probe, time.perf_counter())

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    started, produced, probes = time.perf_counter(), 0, 0
    while time.perf_counter() - started < seconds:
        elapsed = time.perf_counter() - started
        while produced < min(len(background), int(elapsed * rate)):
            topic, key, value = background[produced]
            producer.produce(topic, value, key)
            produced += 1
        if elapsed > probes * PROBE_EVERY_S:
            events = _probe(probes, datetime.now(UTC))
            for event in events[:-1]:
                producer.produce(
                    getattr(settings.topics, TOPIC_OF_TYPE[event["type"]]),
                    json.dumps(event).encode(),
                    event["contact_id"].encode(),
                )
            producer.flush(5)
            last = events[-1]
            producer.produce(settings.topics.forms, json.dumps(last).encode(), last["contact_id"].encode())
            sent[last["event_id"]] = time.perf_counter()
            probes += 1
        producer.poll(0)
        time.sleep(0.001)
    producer.flush(10)
    time.sleep(3)
    stop.set()
    listener.join(5)
    tail.close()
    latencies = sorted((arrived[e] - t) * 1000 for e, t in sent.items() if e in arrived)
    if not latencies:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan"), "probes": 0}
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return {
        "p50_ms": q[49],
        "p95_ms": q[94],
        "p99_ms": q[98],
        "probes": len(latencies),
        "offered_per_s": rate,
    }
