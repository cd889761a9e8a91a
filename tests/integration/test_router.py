"""The SDR router on real Kafka and Redis: sticky per account, balanced in a queue, idempotent."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from leadstream.bootstrap import redis_blocking
from leadstream.config.routing import load_routing
from leadstream.config.settings import settings_to_env
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import produce_all, read_topic
from leadstream.kafka.topics import ensure_topics
from leadstream.router.service import Router
from leadstream.state.keys import router_key

pytestmark = pytest.mark.integration


def handoff(n: int, account: str, region: str = "emea", day: str = "2026-03-02") -> dict:
    return {
        "kind": "mql",
        "handoff_id": f"h-{n}",
        "contact_id": f"c-{n}",
        "account_domain": account,
        "qualified_at": f"{day}T10:00:{n % 60:02d}Z",
        "follow_up_due_at": f"{day}T23:00:00Z",
        "firmographics": {"region": region, "employees": 300},
    }


def test_sticky_balanced_and_idempotent(settings, redis_url):
    ensure_topics(settings)
    first = [handoff(n, f"acct-{n}") for n in range(10)]  # ten accounts, one contact each
    colleagues = [handoff(100 + n, "acct-3") for n in range(3)]  # more people at acct-3
    us = [handoff(200, "acct-us", region="north_america")]
    records = [
        (settings.topics.handoffs, h["contact_id"].encode(), json.dumps(h).encode())
        for h in first + colleagues + us
    ]
    produce_all(make_producer(settings), records + records[:2])  # the first two delivered twice
    client = redis_blocking(settings)
    router = Router(settings, load_routing(), client)
    assert router.run(idle_exit_s=3) == len(records)

    assignments = read_topic(settings, settings.topics.assignments)
    by_handoff = {}
    for a in assignments:
        by_handoff.setdefault(a["handoff_id"], []).append((a["assignment_id"], a["rep"]))
    assert len(assignments) == len(records), "exactly one assignment record per handoff"
    assert all(len(v) == 1 for v in by_handoff.values())

    # The same handoffs delivered once more, to a router started again: nothing new is published.
    produce_all(make_producer(settings), records[:5])
    assert Router(settings, load_routing(), client).run(idle_exit_s=3) == 0
    assert len(read_topic(settings, settings.topics.assignments)) == len(records)
    assert client.hlen(router_key(settings.redis_key_prefix, "assigned")) == len(records)
    rep_of = {h: v[0][1] for h, v in by_handoff.items()}
    # Round-robin within the emea queue: ten accounts split five and five.
    assert Counter(rep_of[f"h-{n}"] for n in range(10)) == Counter({"amelie": 5, "bruno": 5})
    # Account stickiness: acct-3's colleagues go to acct-3's rep.
    assert {rep_of[f"h-{100 + n}"] for n in range(3)} == {rep_of["h-3"]}
    assert rep_of["h-200"] in {"carla", "dan"}


def test_route_command_as_a_user_runs_it(settings):
    ensure_topics(settings)
    h = handoff(1, "acct-cli")
    produce_all(make_producer(settings), [(settings.topics.handoffs, b"c-1", json.dumps(h).encode())])
    out = subprocess.run(
        [sys.executable, "-m", "leadstream.cli", "route", "--idle-exit", "3"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={**__import__("os").environ, **settings_to_env(settings)},
    )
    assert "c-1" in out.stdout and "emea/" in out.stdout
    assert "assigned 1 handoffs" in out.stderr


def test_a_record_consumed_again_publishes_again_a_duplicate_record_does_not(settings, redis_url):
    """After a crash the same record comes again: its assignment may not have been published, so
    it is (in a new transaction); another record of the same handoff publishes nothing."""
    router = Router(settings, load_routing(), redis_blocking(settings))
    h = handoff(7, "acct-7")
    [(first, status)] = router.assign([(h, "handoffs:0:41")])
    assert status == "new"
    [(again, status)] = router.assign([(h, "handoffs:0:41")])
    assert status == "retry" and again == first
    [(other, status)] = router.assign([(h, "handoffs:3:9")])
    assert status == "duplicate" and other["assignment_id"] == first["assignment_id"]
