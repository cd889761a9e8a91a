"""The Redis adapter on a real Redis: atomic compare-and-set, outbox, function reload, TTL."""

from __future__ import annotations

import asyncio
import json

import pytest

from leadstream.bootstrap import redis_client as redis_client_of
from leadstream.config.loader import load_model
from leadstream.config.settings import Settings
from leadstream.engine.input.suppressions import Suppressions
from leadstream.engine.pipeline import ScoringPipeline
from leadstream.engine.ports import MemorySink
from leadstream.engine.records import SourceRecord
from leadstream.kafka.clients import make_producer
from leadstream.kafka.sinks import ConfluentSink
from leadstream.kafka.topics import ensure_topics
from leadstream.state import RecordWrite, RedisStateStore
from leadstream.state.keys import account_queue_key, contact_key, contact_token, suppression_key, timer_key
from leadstream.state.packing import use_hiredis_packing
from leadstream.state.pseudonyms import pseudonym
from leadstream.state.redis_store import function_library
from leadstream.tools.forget import mark_suppressions_changed
from tests.factories import buyer_journey, encode
from tests.integration.helpers import handoffs, single_redis

pytestmark = pytest.mark.integration
MODEL = load_model()


def run(coro_factory, redis_url):
    """Run with a client bound to this event loop."""

    async def main():
        client = redis_client_of(Settings(redis_url=redis_url))
        try:
            return await coro_factory(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def test_compare_and_set_outbox_alias_and_ttl(settings, redis_client):
    key = contact_key(settings.redis_key_prefix, "c1")

    async def scenario(client):
        store = RedisStateStore(client, ttl_seconds=3600)
        first = RecordWrite(key, 0, b"state-1", {"h:1": b'{"x":1}'})
        assert await store.commit([first]) == set()
        assert await store.commit([first]) == {key}  # stale version: conflict, nothing written
        loaded = (await store.load([key]))[key]
        assert (loaded.version, loaded.value, loaded.outbox, loaded.alias) == (
            1,
            b"state-1",
            {"h:1": b'{"x":1}'},
            None,
        )
        # An alias-only write keeps the state.
        assert await store.commit([RecordWrite(key, 1, None, alias="c9")]) == set()
        loaded = (await store.load([key]))[key]
        assert (loaded.value, loaded.alias) == (b"state-1", "c9")
        # An outbox entry is removed only if it still holds what was delivered.
        await store.ack([(key, "h:1", b"something else")])
        assert (await store.load([key]))[key].outbox == {"h:1": b'{"x":1}'}
        await store.ack([(key, "h:1", b'{"x":1}')])
        assert (await store.load([key]))[key].outbox == {}

    run(scenario, settings.redis_url)
    assert 0 < redis_client.ttl(key) <= 3600
    assert key.endswith(f"{{c:{contact_token('c1')}}}") and "c1}" not in key  # a pseudonym, not the id


def test_entries_written_once_are_acknowledged_by_name_beside_compared_ones(settings):
    """A commit's member snapshots (a name written once) are dropped by name, in the same round
    trip as entries dropped only if unchanged; the in-memory store does the same."""
    from leadstream.state import MemoryStateStore

    one, two = contact_key(settings.redis_key_prefix, "n1"), contact_key(settings.redis_key_prefix, "n2")
    outbox = {"a:acme.com|n|1": b"[snapshots]", "h:1": b"handoff", "t:sla": b"5.0"}

    async def scenario(store):
        assert await store.commit([RecordWrite(k, 0, b"s", outbox) for k in (one, two)]) == set()
        await store.ack(
            [
                (one, "a:acme.com|n|1", None),
                (one, "h:1", b"handoff"),
                (one, "t:sla", b"4.0"),  # moved since it was read: stays
                (two, "a:acme.com|n|1", None),
            ]
        )
        loaded = await store.load([one, two])
        return loaded[one].outbox, loaded[two].outbox

    expected = ({"t:sla": b"5.0"}, {"h:1": b"handoff", "t:sla": b"5.0"})
    on_redis = run(lambda client: scenario(RedisStateStore(client, ttl_seconds=60)), settings.redis_url)
    assert on_redis == expected
    assert asyncio.run(scenario(MemoryStateStore())) == expected


def test_parts_are_written_and_removed_one_by_one_with_hiredis_packing(settings):
    """An account's members are parts: a commit sends only the ones that changed. The client
    packs commands with hiredis, as the worker's does."""
    key = contact_key(settings.redis_key_prefix, "acct")

    async def scenario(client):
        store = RedisStateStore(use_hiredis_packing(client), ttl_seconds=60)
        both = {"m:a": b'{"a":1}', "m:b": b"b \r\n binary \x00"}
        assert await store.commit([RecordWrite(key, 0, b"core", {"h:x": b"1"}, parts=both)]) == set()
        loaded = (await store.load([key]))[key]
        assert (loaded.value, loaded.parts, loaded.outbox) == (b"core", both, {"h:x": b"1"})
        change = {"m:a": None, "m:c": b"c"}  # drop a, add c, leave b alone
        assert await store.commit([RecordWrite(key, 1, b"core2", parts=change)]) == set()
        loaded = (await store.load([key]))[key]
        assert (loaded.version, loaded.value) == (2, b"core2")
        assert loaded.parts == {"m:b": both["m:b"], "m:c": b"c"}
        await store.ack([(key, "h:x", b"1")])
        return (await store.load([key]))[key].outbox

    assert run(scenario, settings.redis_url) == {}


def test_a_commit_of_more_fields_than_one_call_takes_writes_and_removes_them_all(settings):
    """The commit function writes its fields in one HSET and removes parts in one HDEL, split into
    calls of 1,000 values (Lua's unpack is bounded): a commit past that loses none."""
    key = contact_key(settings.redis_key_prefix, "wide")
    many = {f"m:{n}": f"member {n}".encode() for n in range(4_500)}  # 9,000 values: past unpack
    outbox = {f"h:{n}": b"h" for n in range(600)}

    async def scenario(client):
        store = RedisStateStore(client, ttl_seconds=60)
        assert await store.commit([RecordWrite(key, 0, b"one", outbox, parts=many)]) == set()
        first = (await store.load([key]))[key]
        change: dict[str, bytes | None] = {f"m:{n}": None for n in range(4_100)}
        change.update({f"m:new{n}": b"new" for n in range(3)})
        assert await store.commit([RecordWrite(key, 1, b"two", parts=change)]) == set()
        return first, (await store.load([key]))[key]

    first, second = run(scenario, settings.redis_url)
    assert (first.value, first.parts, first.outbox) == (b"one", many, outbox)
    kept = {f"m:{n}": many[f"m:{n}"] for n in range(4_100, 4_500)}
    assert (second.version, second.value, second.outbox) == (2, b"two", outbox)
    assert second.parts == {**kept, **{f"m:new{n}": b"new" for n in range(3)}}


def test_previous_commit_function_still_commits_during_a_rolling_upgrade(settings, redis_client):
    """Workers of the previous release call ls_commit_record_v2 (no parts) until replaced."""
    key = contact_key(settings.redis_key_prefix, "v2")
    redis_client.function_load(function_library(), replace=True)
    assert redis_client.fcall("ls_commit_record_v2", 1, key, "0", "1", b"s1", "", "60", "h:1", b"x") == [1, 1]
    assert redis_client.fcall("ls_commit_record_v2", 1, key, "0", "1", b"s2", "", "60") == [0, 1]
    assert redis_client.hgetall(key) == {b"v": b"1", b"s": b"s1", b"o:h:1": b"x"}


def test_functions_are_reloaded_when_redis_lost_them(settings):
    key = contact_key(settings.redis_key_prefix, "c2")

    async def scenario(client):
        store = RedisStateStore(client, ttl_seconds=60)
        await store.commit([RecordWrite(key, 0, b"a")])
        await client.function_flush()  # as after a restart without persistence
        assert await store.commit([RecordWrite(key, 1, b"b")]) == set()
        return (await store.load([key]))[key].version

    assert run(scenario, settings.redis_url) == 2


def test_handoff_survives_a_crash_between_commit_and_publish(settings):
    """The worker commits a contact that qualified, then dies before producing the handoff. The
    records were not acknowledged, so they are consumed again: the handoff is published once."""
    ensure_topics(settings)
    batch = [SourceRecord("in", 0, i, encode(e)) for i, e in enumerate(buyer_journey("crash"))]
    key = contact_key(settings.redis_key_prefix, "crash")

    class DiesBeforePublishing(MemorySink):
        async def send_all(self, records):
            raise SystemExit("killed")

    def pipeline(store, sink):
        return ScoringPipeline(store, sink, MODEL, settings.topics, settings.redis_key_prefix)

    async def crash(client):
        store = RedisStateStore(client, ttl_seconds=600)
        with pytest.raises(SystemExit):
            await pipeline(store, DiesBeforePublishing()).process(batch)
        return (await store.load([key]))[key].outbox

    async def restart(client):
        store = RedisStateStore(client, ttl_seconds=600)
        sink = ConfluentSink(make_producer(settings))
        await pipeline(store, sink).process(batch)
        await pipeline(store, sink).process(batch)  # and once more
        return (await store.load([key]))[key].outbox

    outbox = run(crash, settings.redis_url)
    pending = {entry: value for entry, value in outbox.items() if entry.startswith("h:")}
    assert len(pending) == 1
    assert run(restart, settings.redis_url) == {}
    published = handoffs(settings)
    assert ["h:" + h["handoff_id"] for h in published] == list(pending)
    assert json.loads(next(iter(pending.values())))["contact_id"] == "crash"


def test_waiting_index_moves_only_entries_still_where_they_were_seen(settings, redis_url):
    shards = [account_queue_key(settings.redis_key_prefix, s) for s in (0, 1)]

    async def scenario(client):
        store = RedisStateStore(client, ttl_seconds=3600)
        await store.schedule_earliest(
            [(shards[0], "a.io", 10.0), (shards[0], "b.io", 20.0), (shards[1], "c.io", 30.0)]
        )
        await store.schedule_earliest([(shards[0], "b.io", 5.0)])  # earlier: moved
        assert await store.due(shards[0], 100.0, 10) == [("b.io", 5.0), ("a.io", 10.0)]
        # A sweep saw a.io at 10, b.io at 20 (another worker moved it to 5 since), c.io at 30.
        await store.reschedule(
            [
                (shards[0], "a.io", 10.0, 40.0),
                (shards[0], "b.io", 20.0, None),
                (shards[1], "c.io", 30.0, None),
            ]
        )
        return await store.due(shards[0], 100.0, 10), await store.due(shards[1], 100.0, 10)

    assert run(scenario, redis_url) == ([("b.io", 5.0), ("a.io", 40.0)], [])


def test_the_suppression_list_is_read_again_whenever_it_changes(settings, redis_url):
    key = suppression_key(settings.redis_key_prefix)

    async def scenario(client):
        store = RedisStateStore(client, ttl_seconds=3600)
        held = Suppressions(store, key, b"secret")
        seen = []
        await held.refresh()
        seen.append(bool(held))
        await client.hset(key, mapping={pseudonym(b"secret", "a"): "{}"})  # no mark: the length moved
        await held.refresh()
        seen.append(held.erased_names("a", None, None))
        # One out, one in between two batches: the same length, a new mark.
        await client.hdel(key, pseudonym(b"secret", "a"))
        await client.hset(key, mapping={pseudonym(b"secret", "anon:b"): "{}"})
        await mark_suppressions_changed(client, key)
        await held.refresh()
        seen.append((held.erased_names("a", None, None), held.erased_names("c", None, "b")))
        return seen

    assert run(scenario, redis_url) == [
        False,
        [pseudonym(b"secret", "a")],
        (None, [pseudonym(b"secret", "c"), pseudonym(b"secret", "anon:b")]),
    ]


def test_an_account_indexed_again_after_a_sweep_read_it_is_not_removed_by_that_sweep(settings, redis_url):
    """Worker A's sweep reads x.io at 100 and applies every point it has; meanwhile worker B's
    batch gives x.io a point at 200 and indexes it (never later: it stayed at 100). A's removal
    of the entry it saw must fail, or B's point would wait in the account with nothing to sweep
    it (a buying group the fault suite missed)."""
    shard = account_queue_key(settings.redis_key_prefix, 0)

    async def scenario(client):
        store = RedisStateStore(client, ttl_seconds=3600)
        await store.schedule_earliest([(shard, "x.io", 100.0)])
        seen = await store.due(shard, 1000.0, 10)
        await store.schedule_earliest([(shard, "x.io", 200.0)])  # B, after A read it
        await store.reschedule([(shard, "x.io", seen[0][1], None)])  # A: everything applied
        after_a = await store.due(shard, 1000.0, 10)
        # Never later, and never anywhere a sweep would not find it before 200.
        return seen, after_a

    seen, after_a = run(scenario, redis_url)
    assert seen == [("x.io", 100.0)]
    assert [member for member, _ in after_a] == ["x.io"] and after_a[0][1] <= 100.0


def test_due_timers_of_every_shard_come_back_together_each_with_its_own_limit(settings, redis_url):
    shards = [timer_key(settings.redis_key_prefix, s) for s in range(3)]

    async def scenario(client):
        store = RedisStateStore(client, ttl_seconds=3600)
        await store.schedule(
            [(shards[0], f"c{i}", float(i)) for i in range(5)]
            + [(shards[1], "late", 500.0), (shards[1], "due", 50.0)]
        )
        return await store.due_in(shards, 100.0, 3)

    found = run(scenario, redis_url)
    assert found == {
        shards[0]: [("c0", 0.0), ("c1", 1.0), ("c2", 2.0)],  # earliest first, at most the limit
        shards[1]: [("due", 50.0)],
        shards[2]: [],
    }


def test_a_redis_that_stops_answering_is_one_clear_error_within_the_deadline(tmp_path):
    """A Redis that accepts connections but does not answer (stopped, not dead): the store's round
    trip ends at its deadline with StateUnavailable (the batch is retried), and works again once
    Redis answers."""
    import signal
    import time

    from leadstream.bootstrap import redis_store
    from leadstream.errors import StateUnavailable

    with single_redis(tmp_path) as (server, port):
        # its own single Redis, whatever the environment says (the cluster tier sets LEADSTREAM_REDIS_CLUSTER)
        settings = Settings(redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout_s=0.5, redis_cluster=False)
        store = redis_store(settings)
        key = contact_key("ls", "c1")

        async def scenario():
            assert (await store.commit([RecordWrite(key, 0, b"state")])) == set()
            server.send_signal(signal.SIGSTOP)
            started = time.monotonic()
            with pytest.raises(StateUnavailable, match=r"did not answer within 0\.5s"):
                await store.load([key])
            waited = time.monotonic() - started
            server.send_signal(signal.SIGCONT)
            loaded = await store.load([key])  # a new connection: the timed-out one was dropped
            return waited, loaded[key]

        waited, record = asyncio.run(scenario())
        assert 0.4 < waited < 5
        assert record.value == b"state" and record.version == 1


def test_a_command_the_redis_user_lacks_is_named_as_a_permission_error_not_an_outage(tmp_path):
    """A Redis user without a command leadstream sends (HLEN) or one its functions run (HSET,
    inside the commit function): StateUnavailable that points at the ACL rule, not at Redis being
    down (nor at a lost function library); the same calls work once the user has the rule."""
    import redis

    from leadstream.acls import REDIS_APP_COMMANDS, redis_app_rule
    from leadstream.bootstrap import redis_store
    from leadstream.errors import StateUnavailable

    denied = ("hlen", "hset")
    assert set(denied) <= set(REDIS_APP_COMMANDS)
    with single_redis(tmp_path) as (_server, port):
        admin = redis.Redis(port=port)
        rule = redis_app_rule("ls")
        admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", *rule, *(f"-{c}" for c in denied))
        settings = Settings(redis_url=f"redis://app:pw@127.0.0.1:{port}/0", redis_cluster=False)
        store = redis_store(settings)
        key = contact_key("ls", "c1")
        advice = r"lacks a command or key pattern.*python -m leadstream\.acls redis"

        async def scenario():
            with pytest.raises(StateUnavailable, match=advice) as plain:
                await store.suppression_marks(suppression_key("ls"))
            with pytest.raises(StateUnavailable, match=advice) as scripted:
                await store.commit([RecordWrite(key, 0, b"state")])
            admin.execute_command("ACL", "SETUSER", "app", "reset", "on", ">pw", *rule)
            assert await store.suppression_marks(suppression_key("ls")) == ("", 0)
            assert await store.commit([RecordWrite(key, 0, b"state")]) == set()
            return str(plain.value), str(scripted.value), (await store.load([key]))[key]

        plain, scripted, record = asyncio.run(scenario())
        assert "reachable" not in plain and "reachable" not in scripted
        assert "'hlen'" in plain
        assert record.value == b"state" and record.version == 1
        admin.close()


@pytest.mark.parametrize("denied", ["expire", "hdel"])
def test_a_commit_the_redis_user_cannot_finish_writes_nothing(tmp_path, denied):
    """Redis functions do not roll back: a command refused halfway (the TTL after the writes, a
    member's removal after others were written) would leave a record half written, without its
    TTL. The commit function checks every command it may run before its first write: refused,
    the stored record is the one before, byte for byte; granted, the same commit goes through."""
    import redis

    from leadstream.acls import REDIS_APP_COMMANDS, redis_app_rule
    from leadstream.bootstrap import redis_store
    from leadstream.errors import StateUnavailable

    assert denied in REDIS_APP_COMMANDS
    with single_redis(tmp_path) as (_server, port):
        admin = redis.Redis(port=port)
        rule = redis_app_rule("ls")
        admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", *rule)
        store = redis_store(Settings(redis_url=f"redis://app:pw@127.0.0.1:{port}/0", redis_cluster=False))
        key = contact_key("ls", "c1")
        first = RecordWrite(key, 0, b"state-1", {"h:1": b"one"}, parts={"m1": b"a", "m2": b"b"})
        second = RecordWrite(key, 1, b"state-2", {"h:2": b"two"}, alias="c2", parts={"m1": None, "m3": b"c"})

        async def scenario():
            assert await store.commit([first]) == set()
            before = admin.hgetall(key), admin.ttl(key)
            admin.execute_command("ACL", "SETUSER", "app", f"-{denied}")
            with pytest.raises(StateUnavailable, match="lacks a command"):
                await store.commit([second])
            after = admin.hgetall(key), admin.ttl(key)
            admin.execute_command("ACL", "SETUSER", "app", f"+{denied}")
            assert await store.commit([second]) == set()
            return before, after, (await store.load([key]))[key]

        before, after, record = asyncio.run(scenario())
        assert after[0] == before[0] and before[0][b"v"] == b"1"
        assert 0 < after[1] <= before[1]
        assert (record.version, record.value, record.alias) == (2, b"state-2", "c2")
        assert record.outbox == {"h:1": b"one", "h:2": b"two"}
        assert admin.hgetall(key).keys() >= {b"p:m2", b"p:m3"} and b"p:m1" not in admin.hgetall(key)
        admin.close()


def test_an_assignment_the_redis_user_cannot_finish_writes_nothing(tmp_path):
    """The router's assignment function, like the commit, asks for its later writes (the day's
    load count) before its first: refused, no assignment, stickiness or round-robin step is left
    behind that a retry would take for an assignment made; granted, the handoff is assigned new."""
    import redis

    from leadstream.acls import redis_app_rule
    from leadstream.config.routing import load_routing
    from leadstream.errors import StateUnavailable
    from leadstream.router.service import Router

    handoff = {
        "kind": "mql",
        "handoff_id": "h-1",
        "contact_id": "c-1",
        "account_domain": "acme.example",
        "qualified_at": "2026-03-02T10:00:00Z",
        "follow_up_due_at": "2026-03-02T23:00:00Z",
        "firmographics": {"region": "emea", "employees": 300},
    }
    with single_redis(tmp_path) as (_server, port):
        admin = redis.Redis(port=port)
        admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", *redis_app_rule("ls"), "-hincrby")
        settings = Settings(redis_url=f"redis://app:pw@127.0.0.1:{port}/0", redis_cluster=False)
        router = Router(settings, load_routing(), redis.Redis(port=port, username="app", password="pw"))
        with pytest.raises(StateUnavailable, match=r"'hincrby' command.*lacks a command"):
            router.assign([(handoff, "handoffs:0:7")])
        assert admin.keys("ls:*") == []
        admin.execute_command("ACL", "SETUSER", "app", "+hincrby")
        [(assignment, status)] = router.assign([(handoff, "handoffs:0:7")])
        assert status == "new" and assignment["handoff_id"] == "h-1"
        assert len(admin.keys("ls:*")) == 4  # assigned, sticky, the queue's step, the day's load
        admin.close()
