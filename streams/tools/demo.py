"""``leadstream demo``: the whole pipeline on the local stack, printed as it happens.

Starts a worker, streams generated journeys into the input topics, prints each handoff as it
arrives on the handoff topic, and ends with a summary once the worker has caught up.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from leadstream.config.settings import Settings
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import TopicTail, consumer_lag, produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.tools.generator import JourneyGenerator, default_start, to_records
from leadstream.tools.replay import format_handoff
from leadstream.tools.worker_process import WorkerProcess

__all__ = ["QUIET_S", "run_demo"]

QUIET_S = 3.0


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(settings: Settings, contacts: int, seed: int | None, timeout_s: float) -> int:
    ensure_topics(settings)
    seed = seed if seed is not None else int(time.time()) % 1_000_000
    handoffs = TopicTail(settings, settings.topics.handoffs)
    dead = TopicTail(settings, settings.topics.dead_letters)
    log_path = Path(".leadstream") / "demo-worker.log"
    log_path.parent.mkdir(exist_ok=True)
    print(f"worker: starting on {settings.kafka_bootstrap_servers} and {settings.redis_url} (log {log_path})")
    worker = WorkerProcess(settings, log_path)
    # SIGTERM ends the demo like Ctrl-C: through the finally below, which stops the worker.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        worker.start(timeout_s=120)
        events = JourneyGenerator(seed, contacts, start=default_start()).events()
        print(f"generator: seed {seed}, {contacts} contacts, {len(events)} events -> input topics")
        produce_all(make_producer(settings), to_records(events, settings.topics))
        print("generator: all events acknowledged by Kafka; handoffs as they arrive:\n")
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        last_change = time.monotonic()
        while time.monotonic() < deadline:
            for message in handoffs.poll(time.monotonic() + 1.0):
                handoff = json.loads(message.value() or b"{}")
                seen.append(handoff)
                print("  " + format_handoff(handoff))
                last_change = time.monotonic()
            if not worker.running():
                print(f"worker exited: see {log_path}", file=sys.stderr)
                return 1
            if (
                time.monotonic() - last_change > QUIET_S
                and consumer_lag(settings, settings.topics.inputs()) == 0
            ):
                break
        else:
            print(
                f"timed out after {timeout_s:.0f}s waiting for the worker to catch up; see {log_path}",
                file=sys.stderr,
            )
            return 1
        dead_count = len(list(dead.poll(time.monotonic() + 1.0)))
        mqls = [h for h in seen if h["kind"] == "mql"]
        groups = [h for h in seen if h["kind"] == "buying_group"]
        rules = Counter(s["rule"] for h in mqls for s in h["engagement"]["signals"])
        people = len({r for e in events if e["type"] != "account" for r in [e.get("contact_id")] if r})
        print(
            f"\nsummary: {len(events)} events ({people} known contacts) -> {len(mqls)} MQL handoffs "
            f"({len({h['contact_id'] for h in mqls}) / max(people, 1):.1%} of contacts), "
            f"{len(groups)} buying-group handoffs, {dead_count} dead letters; "
            f"signals behind the MQLs: {', '.join(f'{r} x{n}' for r, n in rules.most_common(5))}"
        )
        command = os.path.relpath(Path(sys.executable).with_name("leadstream"))
        if mqls:
            print(f"why did a contact qualify? try: {command} explain {mqls[0]['contact_id']}")
        if groups:
            print(f"and an account: {command} explain --account {groups[0]['domain']}")
        return 0
    finally:
        handoffs.close()
        dead.close()
        worker.stop()
