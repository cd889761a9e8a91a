"""``leadstream simulate-sales``: a simulated sales team answering handoffs, for demos and reports.

Deterministic per handoff id: about 30% accepted within hours (some become opportunities, half of
those are won), 45% rejected with a reason, the rest ignored (their SLA breaches). Outcomes happen
in event time after the handoff; outcomes that would lie in the future are not sent (yet).
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime, timedelta
from typing import Any

from leadstream.config.settings import Settings
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import TopicTail, produce_all

__all__ = ["REASONS", "outcomes_for", "simulate_sales"]

REASONS = [
    "no budget this year",
    "wrong persona",
    "student project",
    "already a customer",
    "no response to calls",
]


def outcomes_for(handoff: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    if handoff.get("kind") != "mql":
        return []
    rng = random.Random(handoff["handoff_id"])
    qualified = datetime.fromisoformat(handoff["qualified_at"])
    roll = rng.random()
    steps: list[tuple[str, timedelta, str | None]] = []
    if roll < 0.30:
        accepted = timedelta(hours=rng.uniform(1, 20))
        steps.append(("accepted", accepted, None))
        if rng.random() < 0.45:
            opportunity = accepted + timedelta(days=rng.uniform(2, 10))
            steps.append(("opportunity_created", opportunity, None))
            closed = opportunity + timedelta(days=rng.uniform(10, 40))
            steps.append(("closed_won" if rng.random() < 0.5 else "closed_lost", closed, None))
    elif roll < 0.75:
        steps.append(("rejected", timedelta(hours=rng.uniform(1, 30)), rng.choice(REASONS)))
    out = []
    for n, (outcome, delay, reason) in enumerate(steps):
        when = qualified + delay
        if when > now:
            break  # has not happened yet
        event: dict[str, Any] = {
            "event_id": f"sim-{handoff['handoff_id']}-{n}",
            "type": "sales_outcome",
            "occurred_at": when.isoformat(),
            "contact_id": handoff["contact_id"],
            "outcome": outcome,
            "handoff_id": handoff["handoff_id"],
            "rep": "sim",
        }
        if reason:
            event["reason"] = reason
        out.append(event)
    return out


def simulate_sales(settings: Settings, idle_exit_s: float, now: datetime) -> int:
    """Answer every handoff on the topic so far; return how many outcomes were sent."""
    tail = TopicTail(settings, settings.topics.handoffs, from_beginning=True)
    producer = make_producer(settings)
    sent = 0
    try:
        while True:
            batch = list(tail.poll(time.monotonic() + idle_exit_s))
            if not batch:
                return sent
            records = []
            for message in batch:
                for event in outcomes_for(json.loads(message.value() or b"{}"), now):
                    records.append(
                        (settings.topics.feedback, event["contact_id"].encode(), json.dumps(event).encode())
                    )
            sent += produce_all(producer, records)
    finally:
        tail.close()
