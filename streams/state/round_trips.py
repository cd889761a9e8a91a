"""Many Redis commands in one round trip, framed and parsed in C, on redis-py's own connections.

redis-py's asyncio pipeline spends 17-22 µs of Python on every command it carries (queueing,
packing, one awaited read and one response callback per reply), and a worker sends about five
commands an event (INFO commandstats over ``bench.worker_throughput``: 2.5 FCALL, 1.7 HGETALL,
0.5 HMGET, 0.3 ZADD): that was ~40% of a worker's main thread (py-spy). Here a round trip's
commands are framed by hiredis into one buffer, written once, and the replies are taken from the
connection's own hiredis reader as they arrive: 3-4 µs a command. The connection, its pool and
its handshake (TLS, AUTH, SELECT, the protocol) stay redis-py's.

Replies come as the connection's protocol gives them (RESP3 maps and pairs, RESP2 flat lists; see
``as_mapping`` and ``as_scored``); a reply that is an error comes back as its exception, in place.
A cluster client, or a redis-py whose connections do not read with hiredis (its internals are not
an API: a release may change them), gets a redis-py pipeline instead, with the same results.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

import hiredis
import redis.asyncio as aioredis
from hiredis import PushNotification
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["Command", "RoundTrips", "as_mapping", "as_scored"]

logger = logging.getLogger(__name__)
Command = Sequence[bytes | str | int]

_HIREDIS_PARSER: Any = None  # the parser redis-py's asyncio connections use with hiredis
NOT_ENOUGH_DATA: Any = object()
try:
    from redis._parsers import hiredis as _parsers

    _HIREDIS_PARSER, NOT_ENOUGH_DATA = _parsers._AsyncHiredisParser, _parsers.NOT_ENOUGH_DATA
except (ImportError, AttributeError):  # pragma: no cover - a redis-py that moved them: pipelines
    pass


def _reads_with_hiredis(connection: Any) -> bool:
    parser = getattr(connection, "_parser", None)
    return (
        _HIREDIS_PARSER is not None
        and isinstance(parser, _HIREDIS_PARSER)
        and hasattr(parser, "_reader")
        and hasattr(parser, "read_from_socket")
        and hasattr(connection, "send_packed_command")
    )


class RoundTrips:
    def __init__(self, client: Any) -> None:
        self._client = client
        # None until the first connection says whether it reads with hiredis.
        self._lean: bool | None = None if isinstance(client, aioredis.Redis) else False

    @property
    def lean(self) -> bool | None:
        """True: hiredis framing and parsing; False: redis-py pipelines; None: not known yet."""
        return self._lean

    async def run(self, commands: Sequence[Command]) -> list[Any]:
        """The replies of ``commands``, sent as one round trip, in order."""
        if not commands:
            return []
        if self._lean is False:
            return await self._pipelined(commands)
        try:
            return await self._lean_round_trip(commands)
        except RedisConnectionError as exc:
            # A pooled connection Redis closed meanwhile (a restart): once more on a new one, as
            # redis-py's own retry does. Commits are compare-and-set, so one that landed before the
            # connection broke is refused the second time, and the batch reloads: nothing doubles.
            logger.info("Redis connection lost (%s); sending the round trip again", exc)
            return await self._lean_round_trip(commands)

    async def _lean_round_trip(self, commands: Sequence[Command]) -> list[Any]:
        pool = self._client.connection_pool
        connection = await pool.get_connection()
        try:
            if self._lean is None:
                self._lean = _reads_with_hiredis(connection)
                if not self._lean:
                    logger.info("redis-py's connections do not read with hiredis: plain pipelines")
            if not self._lean:
                await pool.release(connection)
                connection = None
                return await self._pipelined(commands)
            await connection.send_packed_command(
                b"".join(hiredis.pack_command(cast(Any, tuple(command))) for command in commands),
                check_health=False,
            )
            replies = await _read_replies(connection._parser, len(commands))
        except BaseException:
            # Cancelled (the round trip's deadline) or broken midway: replies may still be on the
            # wire, so the connection must not serve anyone else.
            if connection is not None:
                await connection.disconnect(nowait=True)
                await pool.release(connection)
            raise
        await pool.release(connection)
        return replies

    async def _pipelined(self, commands: Sequence[Command]) -> list[Any]:
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))


async def _read_replies(parser: Any, count: int) -> list[Any]:
    reader = parser._reader
    replies: list[Any] = []
    while len(replies) < count:
        reply = reader.gets()
        if reply is NOT_ENOUGH_DATA:
            try:
                await parser.read_from_socket()
            except OSError as exc:
                raise RedisConnectionError(f"Error while reading from Redis: {exc}") from exc
        elif isinstance(reply, RedisConnectionError):
            raise reply
        elif not isinstance(reply, PushNotification):  # pushed, not a reply (RESP3): not ours
            replies.append(reply)
    return replies


def as_mapping(reply: Any) -> dict[bytes, bytes]:
    """An HGETALL reply as a dict: a RESP3 map, a RESP2 flat list, or redis-py's dict."""
    if isinstance(reply, dict):
        return reply
    return dict(zip(reply[::2], reply[1::2], strict=True))


def as_scored(reply: Any) -> list[tuple[bytes, float]]:
    """A ZRANGE ... WITHSCORES reply as (member, score) pairs: RESP3 pairs, RESP2 flat, redis-py's."""
    if reply and isinstance(reply[0], list | tuple):
        return [(member, float(score)) for member, score in reply]
    return [(member, float(score)) for member, score in zip(reply[::2], reply[1::2], strict=True)]
