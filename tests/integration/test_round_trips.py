"""Round trips framed and parsed by hiredis on redis-py's connections (state/round_trips.py), on a
real Redis of the test's own (a single node whatever the tier: the cluster client takes redis-py
pipelines, which the cluster tier's store tests cover)."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from leadstream.state.round_trips import RoundTrips, as_mapping, as_scored
from tests.integration.helpers import single_redis

pytestmark = pytest.mark.integration

COMMANDS = [
    ("HSET", "h", "v", "3", "s", b"\x00\xff state"),
    ("HGETALL", "h"),
    ("HMGET", "h", "v", "s", "missing"),
    ("ZADD", "z", "2.5", "a", "1.25", "b"),
    ("ZADD", "z", "LT", "0.5", "a", "9", "b"),
    ("ZRANGEBYSCORE", "z", "-inf", "inf", "WITHSCORES", "LIMIT", 0, 10),
    ("GET", "nothing"),
]


@pytest.fixture
def port(tmp_path):
    with single_redis(tmp_path) as (_server, port):
        yield port


def client_on(port: int, protocol: int = 3) -> aioredis.Redis:
    return aioredis.from_url(f"redis://127.0.0.1:{port}/0", protocol=protocol, decode_responses=False)


def normalised(replies):
    hset, hgetall, hmget, zadd, zadd_lt, zrange, get = replies
    return hset, as_mapping(hgetall), hmget, zadd, zadd_lt, as_scored(zrange), get


@pytest.mark.parametrize("protocol", [2, 3])
def test_the_same_replies_as_a_redis_py_pipeline_in_either_protocol(port, protocol):
    async def scenario():
        client = client_on(port, protocol)
        trips = RoundTrips(client)
        lean = await trips.run(COMMANDS)
        assert trips.lean is True  # this redis-py reads with hiredis: the lean path ran
        await client.flushdb()
        reference = await trips._pipelined(COMMANDS)
        await client.aclose()
        return normalised(lean), normalised(reference)

    lean, reference = asyncio.run(scenario())
    assert lean == reference
    assert lean == (
        2,
        {b"v": b"3", b"s": b"\x00\xff state"},
        [b"3", b"\x00\xff state", None],
        2,
        0,
        [(b"a", 0.5), (b"b", 1.25)],
        None,
    )


def test_an_error_reply_comes_back_in_place_and_the_rest_still_arrive(port):
    async def scenario():
        client = client_on(port)
        replies = await RoundTrips(client).run([("SET", "s", "x"), ("HGETALL", "s"), ("GET", "s")])
        await client.aclose()
        return replies

    ok, wrong_type, value = asyncio.run(scenario())
    assert isinstance(wrong_type, ResponseError) and "WRONGTYPE" in str(wrong_type)
    assert value == b"x" and ok in (b"OK", "OK", True)


def test_a_cancelled_round_trip_leaves_no_reply_for_the_next_one(port):
    """A round trip ended by its deadline still has a reply coming: the connection is dropped,
    so the next round trip reads its own replies, not that one."""

    async def scenario():
        client = client_on(port)
        trips = RoundTrips(client)
        await trips.run([("SET", "k", "v")])
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await trips.run([("BLPOP", "empty", 1)])  # answers nil after a second
        await asyncio.sleep(1.2)
        replies = await trips.run([("GET", "k")])
        await client.aclose()
        return replies

    assert asyncio.run(scenario()) == [b"v"]


def test_a_connection_redis_closed_is_replaced_without_an_error(port):
    async def scenario():
        client = client_on(port)
        trips = RoundTrips(client)
        await trips.run([("SET", "k", "v")])
        killed = redis.Redis(port=port).client_kill_filter(_type="normal", skipme=True)
        replies = await trips.run([("GET", "k")])
        await client.aclose()
        return killed, replies

    killed, replies = asyncio.run(scenario())
    assert killed >= 1 and replies == [b"v"]
