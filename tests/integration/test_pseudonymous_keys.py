"""No Redis key or Kafka key leadstream writes names a person (real worker, Kafka and Redis), and
keys of earlier releases migrate to their pseudonyms (`leadstream migrate-keys`)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from leadstream.bootstrap import redis_client as async_redis
from leadstream.config.settings import Settings, settings_to_env
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.scoring import ContactState
from leadstream.state.keys import contact_key, timer_key, timer_member, timer_shard, token_key
from leadstream.state.port import RecordWrite, decode_state, encode_contact
from leadstream.state.redis_store import RedisStateStore
from tests.factories import buyer_journey, encode, page
from tests.integration.helpers import read_all, wait_caught_up
from tests.integration.test_accounts_worker import produce

pytestmark = pytest.mark.integration


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSTREAM_")}
    env.update(settings_to_env(settings))
    return subprocess.run(
        [sys.executable, "-m", "leadstream.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_no_key_names_a_person(settings, start_worker, redis_client):
    ensure_topics(settings)
    start_worker(settings)
    visitor = page("x", "/pricing", "2026-03-01T09:00:00Z")
    del visitor["contact_id"]
    visitor["anonymous_id"] = "anon-visitor-7"
    email_only = page("x", "/pricing", "2026-03-01T09:05:00Z")
    del email_only["contact_id"]
    email_only["email"] = "solo@acme-labs.com"
    produce(settings, [*buyer_journey("crm-0042"), visitor])
    email_key = b"email:solo@acme-labs.com"
    produce_all(make_producer(settings), [(settings.topics.page_views, email_key, encode(email_only))])
    wait_caught_up(settings)

    client = redis_client  # a cluster client on the cluster stack
    names = [k.decode() for k in client.scan_iter(match=f"{settings.redis_key_prefix}:*")]
    members = [m.decode() for k in names if client.type(k) == b"zset" for m in client.zrange(k, 0, -1)]
    assert len([n for n in names if ":{c:" in n]) == 3  # the contact, the visitor, the email-only profile
    for person in ("crm-0042", "anon-visitor-7", "solo@acme-labs.com", "ana@acme-labs.com"):
        assert not any(person in n for n in names), (person, names)
        assert not any(person in m for m in members), (person, members)
    handoff_keys = [m.key() for m in read_all(settings, settings.topics.handoffs)]
    assert handoff_keys and all(b"crm-0042" not in k and k.startswith(b"p") for k in handoff_keys)


def test_migrate_keys_renames_earlier_keys_and_their_timers(settings, redis_client):
    prefix = settings.redis_key_prefix
    old = token_key(prefix, "crm-old-1")  # as earlier releases named a contact's key
    state = ContactState("crm-old-1", email="old@acme-labs.com", timers={"decay": 1000.0})

    async def write_old() -> None:
        store = RedisStateStore(async_redis(settings), 86_400)
        await store.ensure_functions()
        assert not await store.commit([RecordWrite(old, 0, encode_contact(state, "zstd"), {})])

    asyncio.run(write_old())
    client = redis_client  # a cluster client on the cluster stack
    client.zadd(timer_key(prefix, timer_shard("crm-old-1")), {timer_member("crm-old-1", "decay"): 1000.0})

    done = _cli(settings, "migrate-keys")
    assert done.returncode == 0, done.stderr
    assert "1 contact keys renamed" in done.stdout and "1 timers moved" in done.stdout
    new = contact_key(prefix, "crm-old-1")
    assert not client.exists(old) and client.exists(new)
    assert decode_state(client.hget(new, "s")) == state
    assert 0 < client.ttl(new) <= 86_400  # the TTL moved with it
    token = new[new.index("{c:") + 3 : -1]
    assert client.zscore(timer_key(prefix, timer_shard(token)), timer_member(token, "decay")) == 1000.0
    assert (
        client.zscore(timer_key(prefix, timer_shard("crm-old-1")), timer_member("crm-old-1", "decay")) is None
    )

    again = _cli(settings, "migrate-keys")
    assert (
        again.returncode == 0
        and "0 contact keys renamed" in again.stdout
        and "0 timers moved" in again.stdout
    )
