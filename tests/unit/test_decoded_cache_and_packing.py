"""The decoded-state cache never serves stale state; hiredis packing sends redis-py's bytes."""

from __future__ import annotations

import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st

from leadstream.state.decoded_cache import DecodedCache
from leadstream.state.packing import use_hiredis_packing


def decode(value: bytes) -> list[bytes]:
    return [value]  # a fresh object per decode, so hits and misses can be told apart


def test_hit_only_for_the_same_version_and_bytes():
    cache: DecodedCache[list[bytes]] = DecodedCache(10)
    state = decode(b"v1")
    cache.put("k", 1, b"v1", state)
    assert cache.take("k", 1, b"v1", decode) is state
    # Taken out while a batch mutates it: a second take decodes afresh.
    assert cache.take("k", 1, b"v1", decode) is not state
    cache.put("k", 1, b"v1", state)
    assert cache.take("k", 2, b"v1", decode) is not state  # another writer moved the version on
    cache.put("k", 1, b"v1", state)
    assert cache.take("k", 1, b"other", decode) is not state  # same version, other bytes (data loss)
    assert (cache.hits, cache.misses) == (1, 3)


def test_peek_reads_only_the_same_version_and_bytes_and_leaves_it_cached():
    cache: DecodedCache[list[bytes]] = DecodedCache(10)
    state = decode(b"v1")
    assert cache.peek("k", 1, b"v1") is None
    cache.put("k", 1, b"v1", state)
    assert cache.peek("k", 1, b"v1") is state
    assert cache.peek("k", 2, b"v1") is None  # another writer moved the version on
    assert cache.peek("k", 1, b"other") is None
    assert cache.take("k", 1, b"v1", decode) is state  # still there for its owner
    assert cache.peek("k", 1, b"v1") is None  # taken: being changed by a batch


def test_capacity_evicts_the_least_recently_put_and_zero_disables():
    cache: DecodedCache[list[bytes]] = DecodedCache(2)
    kept = {k: decode(k.encode()) for k in "abc"}
    for k, state in kept.items():
        cache.put(k, 1, k.encode(), state)
    assert cache.take("a", 1, b"a", decode) is not kept["a"]
    assert cache.take("c", 1, b"c", decode) is kept["c"]
    off: DecodedCache[list[bytes]] = DecodedCache(0)
    off.put("k", 1, b"v", kept["a"])
    assert off.take("k", 1, b"v", decode) is not kept["a"]


arguments = st.lists(
    st.one_of(st.binary(max_size=300), st.text(max_size=50), st.integers(), st.floats(allow_nan=False)),
    max_size=8,
)


@given(st.sampled_from(["FCALL", "HGETALL", "FUNCTION LOAD", b"CLIENT SETNAME"]), arguments)
def test_hiredis_packing_sends_the_same_bytes_as_redis_py(command, args):
    plain = aioredis.Redis()
    packed = use_hiredis_packing(aioredis.Redis())
    python = plain.connection_pool.connection_class(**plain.connection_pool.connection_kwargs)
    fast = packed.connection_pool.connection_class(**packed.connection_pool.connection_kwargs)
    assert b"".join(fast.pack_command(command, *args)) == b"".join(python.pack_command(command, *args))
    commands = [(command, *args), ("PING",)]
    assert b"".join(fast.pack_commands(commands)) == b"".join(python.pack_commands(commands))


def test_contact_state_reads_back_from_every_stored_form():
    from leadstream.scoring.state import ContactState, RuleState
    from leadstream.state.port import decode_state, encode_contact

    state = ContactState(
        "c1", email="a@acme.io", traits={"job_title": "CEO"}, rules={"demo": RuleState(1.0, 30.0, 1, 1.0)}
    )
    plain = encode_contact(state, "none")
    zlibbed, zstd = encode_contact(state, "zlib"), encode_contact(state, "zstd")
    assert plain.startswith(b"{") and not zlibbed.startswith(b"{") and not zstd.startswith(b"{")
    # The shipped dictionary knows the vocabulary of a state: far fewer bytes than zlib's.
    assert len(zstd) < len(zlibbed) < len(plain)
    assert decode_state(plain) == decode_state(zlibbed) == decode_state(zstd) == state


def test_memory_budget_evicts_the_least_recently_put_until_the_rest_fits():
    cache: DecodedCache[list[bytes]] = DecodedCache(100, budget_bytes=10, weigh=lambda s: len(s[0]))
    kept = {k: decode(k.encode() * 4) for k in "abc"}  # 4 "bytes" each
    for k, state in kept.items():
        cache.put(k, 1, k.encode(), state)
    assert (len(cache), cache.weight) == (2, 8)  # a, b, c weigh 12: the first put left
    assert cache.take("a", 1, b"a", decode) is not kept["a"]
    assert cache.take("b", 1, b"b", decode) is kept["b"]
    assert cache.weight == 4  # taken out: no longer held
    cache.put("b", 2, b"b2", decode(b"bbbbbb"))  # grew while its batch changed it
    assert cache.weight == 10
    assert cache.peek("c", 1, b"c") is kept["c"]
    cache.put("d", 1, b"d", decode(b"dddddddddddd"))  # heavier than the whole budget: not kept
    assert cache.peek("d", 1, b"d") is None
    assert cache.weight == 10


@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 30), st.booleans()), max_size=60))
def test_the_held_weight_is_the_sum_of_what_is_held_and_stays_within_the_budget(steps):
    cache: DecodedCache[list[bytes]] = DecodedCache(5, budget_bytes=40, weigh=lambda s: len(s[0]))
    for key, size, taking in steps:
        if taking:
            cache.take(key, 1, key.encode(), decode)
        else:
            cache.put(key, 1, key.encode(), decode(b"x" * size))
        held = [cache.peek(k, 1, k.encode()) for k in "abcdefgh"]
        assert cache.weight == sum(len(s[0]) for s in held if s is not None) <= 40
        assert len(cache) == sum(s is not None for s in held) <= 5


def test_an_accounts_weight_grows_with_its_members():
    from leadstream.scoring.state import AccountState, ContactState, MemberSnapshot, state_weight

    account = AccountState("acme.io")
    empty = state_weight(account)
    account.members = {f"c{i}": MemberSnapshot(f"c{i}", 1) for i in range(10)}
    assert state_weight(account) > empty
    assert state_weight(ContactState("c1")) > 0
