"""Accounts, buying groups and stitching through `leadstream worker` on real Kafka and Redis."""

from __future__ import annotations

import json

import pytest

from leadstream.config.loader import load_model
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.scoring.accounts import buying_group_handoff_id
from leadstream.state.codec import decompress_value
from leadstream.state.keys import account_key, contact_key
from leadstream.state.port import decode_state
from leadstream.tools.generator import TOPIC_OF_TYPE
from tests.factories import account, at, encode, engaged_member, form, identify, page
from tests.integration.helpers import handoffs, wait_caught_up

pytestmark = pytest.mark.integration


def produce(settings, events):
    records = []
    for e in events:
        if "domain" in e and "type" not in e:
            records.append((settings.topics.accounts, e["account_id"].encode(), json.dumps(e).encode()))
        else:
            key = e.get("contact_id") or f"anon:{e.get('anonymous_id')}"
            records.append((getattr(settings.topics, TOPIC_OF_TYPE[e["type"]]), key.encode(), encode(e)))
    produce_all(make_producer(settings), records)


def anonymous(event, visitor):
    event = dict(event, anonymous_id=visitor)
    del event["contact_id"]
    return event


def test_buying_groups_stitching_and_replay(settings, redis_client, start_worker):
    # No wall-clock timers during this test: it compares Redis before and after a replay.
    settings = settings.model_copy(update={"timer_interval_s": 60})
    ensure_topics(settings)
    first = start_worker(settings)
    model_version = load_model().version
    firmographics = [account("bg.io", at(0)), account("one.io", at(0)), account("two.io", at(0))]
    committee = (
        engaged_member("bg-ceo", "bg.io", "CEO", 1)
        + engaged_member("bg-dir", "bg.io", "Director of IT", 2)
        + engaged_member("bg-eng", "bg.io", "Software Engineer", 3)
    )
    apart = engaged_member("one-ceo", "one.io", "CEO", 1) + engaged_member("two-dir", "two.io", "Director", 1)
    gmail = [e for name in ("g1", "g2", "g3") for e in engaged_member(name, "gmail.com", "CEO", 1)]
    visitor = [
        anonymous(page("v", "/pricing", at(0)), "visitor-1"),
        anonymous(page("v", "/pricing", at(1)), "visitor-1"),
    ]
    link = identify(
        "known", at(6), "known@solo.io", job_title="VP Marketing", industry="software", employees=400
    )
    link["anonymous_id"] = "visitor-1"
    produce(settings, firmographics)
    produce(settings, committee + apart + gmail + visitor)
    wait_caught_up(settings)
    produce(settings, [link, form("known", "demo_request", at(6.5))])
    wait_caught_up(settings)

    received = handoffs(settings)
    groups = [h for h in received if h["kind"] == "buying_group"]
    assert [(g["domain"], g["handoff_id"]) for g in groups] == [
        ("bg.io", buying_group_handoff_id("bg.io", model_version, 1))
    ]
    assert {m["contact_id"] for m in groups[0]["members"]} == {"bg-ceo", "bg-dir", "bg-eng"}
    assert groups[0]["roles_missing"] == ["influencer"]
    # The rep gets each member's address; the account's hash holds none (read from the contacts).
    assert {m["email"] for m in groups[0]["members"]} == {f"bg-{r}@bg.io" for r in ("ceo", "dir", "eng")}
    bg_hash = redis_client.hgetall(account_key(settings.redis_key_prefix, "bg.io"))
    assert not any(b"@bg.io" in decompress_value(v) for f, v in bg_hash.items() if f.startswith(b"p:m:"))
    gmail = redis_client.hgetall(account_key(settings.redis_key_prefix, "gmail.com"))
    assert not any(field.startswith(b"p:m:") for field in gmail)  # no member stored for gmail.com

    # The visitor's two pricing views count once, on the contact, from when they happened.
    known = decode_state(redis_client.hget(contact_key(settings.redis_key_prefix, "known"), "s"))
    assert known.rules["pricing_page_repeat"].count == 2
    assert "anon:visitor-1" in known.linked
    assert [h["contact_id"] for h in received if h["kind"] == "mql"] == ["known"]

    # Consuming everything again from offset 0 with a fresh group changes nothing.
    def everything():
        out = {}
        for key in redis_client.scan_iter(f"{settings.redis_key_prefix}:*"):
            if any(part in key for part in (b"{watermarks:", b"{progress:", b"{models:running}")):
                continue  # each consumer group's reading progress, which worker runs what: not state
            kind = redis_client.type(key)
            out[key] = (
                redis_client.hgetall(key)
                if kind == b"hash"
                else redis_client.zrange(key, 0, -1, withscores=True)
            )
        return out

    # The first worker stops first: its wall-clock timer tick must not land between the two looks.
    first.stop()
    snapshot = everything()
    again = settings.model_copy(update={"consumer_group": settings.consumer_group + "-again"})
    start_worker(again)
    wait_caught_up(again)
    assert everything() == snapshot
    assert len(handoffs(settings)) == len(received)
