"""Erasure end to end (`leadstream forget`), on a real Kafka broker, a real Redis and a running
worker: afterwards no Redis key, field or value holds the person's id or email, their account
counts without them, an erasure event is published, and their later events are suppressed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis

from leadstream.config.settings import Settings, settings_to_env
from leadstream.kafka.topics import ensure_topics
from leadstream.scoring import mql_handoff_id
from leadstream.state.codec import decompress_value
from leadstream.state.keys import account_key, contact_key, suppression_key
from tests.factories import GOOD_FIT, account, at, buyer_journey, identify, page
from tests.integration.helpers import handoffs, read_all, wait_caught_up
from tests.integration.test_accounts_worker import produce
from tests.integration.test_scoring_worker import MODEL

pytestmark = pytest.mark.integration

PERSON, EMAIL, ANON = "forget-me", "ana@acme-labs.com", "anon-fm-1"


def _anonymous_visit() -> dict[str, Any]:
    visit = page(PERSON, "/pricing", at(-1))
    del visit["contact_id"]
    visit["anonymous_id"] = ANON
    return visit


def _forget(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSTREAM_")}
    env.update(settings_to_env(settings))
    return subprocess.run(
        [sys.executable, "-m", "leadstream.cli", "forget", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _everything_under(client: redis.Redis, prefix: str) -> list[tuple[str, bytes]]:
    """(key, text) for every key name, hash field, hash value (decompressed) and set member."""
    out = []
    for raw_key in client.scan_iter(match=f"{prefix}:*", count=1000):
        key = raw_key.decode()
        out.append((key, raw_key))
        kind = client.type(raw_key).decode()
        if kind == "hash":
            for name, value in client.hgetall(raw_key).items():
                out.append((key, name))
                out.append((key, _readable(value)))
        elif kind == "zset":
            out.extend((key, member) for member in client.zrange(raw_key, 0, -1))
    return out


def _readable(value: bytes) -> bytes:
    """A stored value as text: decompressed when it is compressed, the journal's header skipped."""
    try:
        return decompress_value(value)
    except Exception:
        pass
    head, newline, rest = value.partition(b"\n")  # a journal entry: "<record time>[\t<codec>]\n"
    if newline and b"\t" in head:
        return head + newline + decompress_value(rest)
    return value


def test_forget_erases_everything_and_suppresses_later_events(settings, start_worker, redis_client):
    ensure_topics(settings)
    start_worker(settings)
    colleague = [
        identify("colleague", at(0), "bo@acme-labs.com", **GOOD_FIT),
        page("colleague", "/pricing", at(1)),
    ]
    journey = [_anonymous_visit(), *buyer_journey(PERSON, spread_days=1)]
    journey[1]["anonymous_id"] = ANON  # the identify stitches the anonymous visitor in
    produce(settings, [account("acme-labs.com", at(-2)), *journey, *colleague])
    wait_caught_up(settings)
    assert mql_handoff_id(PERSON, MODEL.version, 1) in {h["handoff_id"] for h in handoffs(settings)}
    client = redis_client  # a cluster client on the cluster stack
    prefix = settings.redis_key_prefix
    acme = account_key(prefix, "acme-labs.com")
    assert client.hexists(acme, f"p:m:{PERSON}") and client.hexists(acme, "p:m:colleague")
    version_before = int(client.hget(acme, "v"))
    assert any(
        PERSON.encode() in text or EMAIL.encode() in text for _k, text in _everything_under(client, prefix)
    )

    done = _forget(settings, "--email", "Ana@ACME-labs.com")  # as typed by whoever asked
    assert done.returncode == 0, done.stderr
    assert f"forgot {PERSON}" in done.stdout

    # Nothing of them is left: no key, field or value names their id, email or anonymous id.
    leftovers = [
        (key, text[:120])
        for key, text in _everything_under(client, prefix)
        if any(s.encode() in text.lower() for s in (PERSON, EMAIL, ANON))
    ]
    assert leftovers == []
    # Their colleague stays a member; the account's version moved (workers reload it).
    assert client.hexists(acme, "p:m:colleague") and not client.hexists(acme, f"p:m:{PERSON}")
    assert int(client.hget(acme, "v")) > version_before
    # The suppression list holds keyed hashes only (checked by the scan above) for each profile.
    assert client.hlen(suppression_key(prefix)) == 3  # contact id, email, anonymous id
    erasures = [json.loads(m.value()) for m in read_all(settings, settings.topics.erasures)]
    schema = json.loads(
        (Path(__file__).resolve().parents[2] / "schemas/json/erasure.schema.json").read_text()
    )
    for event in erasures:
        jsonschema.validate(event, schema)
    assert [(e["type"], e["contact_id"], e["emails"]) for e in erasures] == [("erasure", PERSON, [EMAIL])]

    # A later event of theirs (by any of their identities) is dead-lettered as suppressed.
    later = [page(PERSON, "/pricing", at(3)), {**_anonymous_visit(), "occurred_at": at(3)}]
    produce(settings, later)
    wait_caught_up(settings)
    reasons = [
        dict(m.headers() or [])["__connect.errors.exception.class.name"]
        for m in read_all(settings, settings.topics.dead_letters)
    ]
    assert reasons == [b"InvalidEvent.suppressed"] * 2
    # Nothing of the events is copied; the key is a pseudonym.
    assert all(
        m.value() is None and m.key().startswith(b"p") and PERSON.encode() not in m.key()
        for m in read_all(settings, settings.topics.dead_letters)
    )
    assert not client.exists(contact_key(prefix, PERSON))

    # Idempotent: again, nothing more to delete, the same erasure id.
    again = _forget(settings, "--contact", PERSON)
    assert again.returncode == 0, again.stderr
    ids = {
        e["erasure_id"] for e in (json.loads(m.value()) for m in read_all(settings, settings.topics.erasures))
    }
    assert len(ids) == 1

    # Undone: their next event scores again (a fresh profile).
    undone = _forget(settings, "--email", EMAIL, "--undo")
    assert undone.returncode == 0, undone.stderr
    assert client.hlen(suppression_key(prefix)) == 0
    produce(settings, [page(PERSON, "/pricing", at(4))])
    wait_caught_up(settings)
    assert client.exists(contact_key(prefix, PERSON))
