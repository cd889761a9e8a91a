"""The Redis StateStore: pipelined loads, Redis Functions for commits and acknowledgements."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from importlib import resources
from types import TracebackType
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from leadstream.errors import StateUnavailable
from leadstream.state.keys import suppression_changes_key
from leadstream.state.port import Delivered, RecordWrite, StoredRecord
from leadstream.state.redis_failures import redis_failed
from leadstream.state.round_trips import Command, RoundTrips, as_mapping, as_scored

__all__ = [
    "ACK_FUNCTION",
    "COMMIT_FUNCTION",
    "RESCHEDULE_FUNCTION",
    "SCHEDULE_EARLIEST_FUNCTION",
    "UNSCHEDULE_FUNCTION",
    "RedisStateStore",
    "commit_args",
    "function_library",
]

logger = logging.getLogger(__name__)
COMMIT_FUNCTION = "ls_commit_record_v3"
ACK_FUNCTION = "ls_ack_entry_v2"
OUTBOX_FIELD = "o:"  # the hash field of an outbox entry, as the functions write it
_OUTBOX_PREFIX = OUTBOX_FIELD.encode()
UNSCHEDULE_FUNCTION = "ls_unschedule_timer_v2"
RESCHEDULE_FUNCTION = "ls_reschedule_v1"
SCHEDULE_EARLIEST_FUNCTION = "ls_schedule_earliest_v1"


def function_library() -> str:
    return resources.files("leadstream.state").joinpath("lua/leadstream.lua").read_text(encoding="utf-8")


class _Deadline:
    """One round trip to Redis within ``seconds``, or StateUnavailable (the batch is tried again).
    Used with a client that has no timeout per reply (bootstrap.redis_store): a hung Redis is
    detected once per pipeline instead of arming a timer for every reply of it."""

    def __init__(self, seconds: float | None, action: str) -> None:
        self._timeout = asyncio.timeout(seconds)
        self._seconds = seconds
        self._action = action

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._timeout.__aexit__(kind, exc, tb)  # never swallows: returns None
        except TimeoutError as timed_out:
            raise StateUnavailable(
                f"Redis did not answer within {self._seconds}s while {self._action}. Check that Redis "
                "is up and not blocked (SLOWLOG, a long script); the worker retries the batch and "
                "loses nothing. LEADSTREAM_REDIS_TIMEOUT_S sets the bound."
            ) from timed_out


class RedisStateStore:
    def __init__(self, client: aioredis.Redis, ttl_seconds: int, timeout_s: float | None = None) -> None:
        """``timeout_s``: the deadline of each round trip (a pipeline), for a client made without a
        timeout per reply; None leaves timeouts to the client."""
        self._redis = client
        self._trips = RoundTrips(client)
        self._ttl = str(ttl_seconds)
        self._loaded = False
        self._timeout_s = timeout_s

    def _deadline(self, action: str) -> _Deadline:
        return _Deadline(self._timeout_s, action)

    async def ensure_functions(self) -> None:
        """Load (or replace) the function library: once per start, and again if Redis lost it."""
        try:
            async with self._deadline("loading the leadstream function library"):
                await self._redis.function_load(function_library(), replace=True)
        except RedisError as exc:
            raise redis_failed("loading the leadstream function library", exc) from exc
        self._loaded = True

    async def load(self, keys: Sequence[str]) -> dict[str, StoredRecord]:
        if not keys:
            return {}
        rows = await self._round_trip([("HGETALL", key) for key in keys], f"loading {len(keys)} records")
        return {key: _record(as_mapping(row)) for key, row in zip(keys, rows, strict=True)}

    async def suppression_marks(self, key: str) -> tuple[str, int]:
        changes, length = await self._round_trip(
            [("GET", suppression_changes_key(key)), ("HLEN", key)], "reading the suppression list"
        )
        return (changes.decode() if isinstance(changes, bytes) else str(changes or "")), int(length)

    async def suppressed_tokens(self, key: str) -> set[str]:
        (tokens,) = await self._round_trip([("HKEYS", key)], "reading the suppression list")
        return {t.decode() if isinstance(t, bytes) else t for t in tokens}

    async def values(self, keys: Sequence[str]) -> dict[str, tuple[int, bytes | None]]:
        """Only the version and the value of each record: no parts, no outbox."""
        if not keys:
            return {}
        rows = await self._round_trip(
            [("HMGET", key, "v", "s") for key in keys], f"loading {len(keys)} values"
        )
        return {key: (int(v or b"0"), value) for key, (v, value) in zip(keys, rows, strict=True)}

    async def commit(self, writes: Sequence[RecordWrite]) -> set[str]:
        if not writes:
            return set()
        results = await self._call_functions(
            [(COMMIT_FUNCTION, w.key, commit_args(w, self._ttl)) for w in writes],
            f"committing {len(writes)} records",
        )
        return {w.key for w, (ok, _) in zip(writes, results, strict=True) if not ok}

    async def ack(self, delivered: Sequence[Delivered]) -> None:
        if delivered:
            compared: dict[str, list[Any]] = {}
            by_name: dict[str, list[str]] = {}
            for key, entry, value in delivered:
                if value is None:
                    by_name.setdefault(key, []).append(OUTBOX_FIELD + entry)
                else:
                    compared.setdefault(key, []).extend((entry, value))
            # Dropped by name: a plain HDEL, neither the value sent back nor a function run.
            await self._call_functions(
                [(ACK_FUNCTION, key, pairs) for key, pairs in compared.items()],
                "acknowledging delivered outbox entries",
                plain=[("HDEL", key, *fields) for key, fields in by_name.items()],
            )

    async def _call_functions(
        self, calls: list[tuple[str, str, list[Any]]], action: str, plain: Sequence[Command] = ()
    ) -> list[Any]:
        """The functions' replies (``plain`` commands go in the same round trip, after them)."""
        if not self._loaded:
            await self.ensure_functions()
        try:
            return await self._pipeline(calls, action, plain)
        except ResponseError as exc:
            # "ERR Function not found"; not a function's own error ("... on @user_function")
            if "function not found" not in str(exc).lower():
                raise redis_failed(action, exc) from exc
            # Redis restarted without persistence and lost the library: load it and retry once.
            logger.warning("Redis lost the leadstream functions (%s); loading them again", exc)
            await self.ensure_functions()
            try:
                return await self._pipeline(calls, action, plain)
            except RedisError as retry_exc:
                raise redis_failed(action, retry_exc) from retry_exc
        except RedisError as exc:
            raise redis_failed(action, exc) from exc

    async def _pipeline(
        self, calls: list[tuple[str, str, list[Any]]], action: str, plain: Sequence[Command] = ()
    ) -> list[Any]:
        commands: list[Command] = [("FCALL", f, 1, key, *args) for f, key, args in calls]
        async with self._deadline(action):  # what the worker was doing, not "calling 0 functions"
            return _raised(await self._trips.run([*commands, *plain]))[: len(calls)]

    async def _round_trip(self, commands: Sequence[Command], action: str) -> list[Any]:
        """One round trip of plain commands (no functions): any error is StateUnavailable."""
        try:
            async with self._deadline(action):
                return _raised(await self._trips.run(commands))
        except RedisError as exc:
            raise redis_failed(action, exc) from exc

    async def schedule(self, entries: Sequence[tuple[str, str, float]]) -> None:
        if not entries:
            return
        by_key: dict[str, dict[str, float]] = {}
        for key, member, due in entries:
            by_key.setdefault(key, {})[member] = due
        await self._round_trip(  # one ZADD per index shard
            [("ZADD", key, *_scores(members)) for key, members in by_key.items()], "scheduling timers"
        )

    async def due(self, key: str, until: float, limit: int) -> list[tuple[str, float]]:
        return (await self.due_in([key], until, limit))[key]

    async def due_in(
        self, keys: Sequence[str], until: float, limit: int
    ) -> dict[str, list[tuple[str, float]]]:
        # Every shard of an index in one round trip: read one after another, 16 timer shards
        # took a tick ~16 round trips before any timer fired, with the batches waiting.
        found = await self._round_trip(
            [("ZRANGEBYSCORE", key, "-inf", repr(until), "WITHSCORES", "LIMIT", 0, limit) for key in keys],
            "reading due timers",
        )
        return {
            key: [(member.decode(), score) for member, score in as_scored(rows)]
            for key, rows in zip(keys, found, strict=True)
        }

    async def unschedule(self, entries: Sequence[tuple[str, str, float]]) -> None:
        if entries:
            await self._call_functions(
                [(UNSCHEDULE_FUNCTION, key, [member, repr(due)]) for key, member, due in entries],
                "removing fired timers",
            )

    async def schedule_earliest(self, entries: Sequence[tuple[str, str, float]]) -> None:
        if not entries:
            return
        by_key: dict[str, dict[str, float]] = {}
        for key, member, due in entries:
            held = by_key.setdefault(key, {})
            held[member] = min(due, held.get(member, due))
        await self._call_functions(  # one call per index shard
            [
                (SCHEDULE_EARLIEST_FUNCTION, key, [x for m, due in members.items() for x in (m, repr(due))])
                for key, members in by_key.items()
            ],
            "indexing waiting accounts",
        )

    async def reschedule(self, entries: Sequence[tuple[str, str, float, float | None]]) -> None:
        if entries:
            await self._call_functions(
                [
                    (RESCHEDULE_FUNCTION, key, [member, repr(seen), "" if due is None else repr(due)])
                    for key, member, seen, due in entries
                ],
                "re-indexing waiting accounts",
            )

    async def memory_usage(self, key: str) -> int | None:
        """Bytes Redis uses for one record (MEMORY USAGE), for reports and benchmarks."""
        async with self._deadline("reading a record's memory usage"):
            result = await self._redis.memory_usage(key, samples=0)
        return int(result) if result is not None else None


def commit_args(write: RecordWrite, ttl: str) -> list[Any]:
    args: list[Any] = [
        str(write.expected_version),
        "1" if write.value is not None else "0",
        write.value if write.value is not None else b"",
        write.alias or "",
        ttl,
        len(write.new_outbox),
    ]
    for entry, value in write.new_outbox.items():
        args.extend((entry, value))
    for name, part in write.parts.items():
        args.extend((name, b"" if part is None else part))
    return args


def _raised(replies: list[Any]) -> list[Any]:
    """The replies, or the first error among them raised."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def _scores(members: dict[str, float]) -> list[str]:
    """ZADD's score-member arguments; scores as repr (exact, as redis-py's encoder wrote them)."""
    out: list[str] = []
    for member, score in members.items():
        out.extend((repr(score), member))
    return out


def _record(row: dict[bytes, bytes]) -> StoredRecord:
    if not row:
        return StoredRecord()
    outbox, parts = {}, {}
    for name, value in row.items():
        if name.startswith(_OUTBOX_PREFIX):
            outbox[name[2:].decode()] = value
        elif name.startswith(b"p:"):
            parts[name[2:].decode()] = value
    alias = row.get(b"a")
    return StoredRecord(
        row.get(b"s"), int(row.get(b"v", b"0")), outbox, alias.decode() if alias else None, parts
    )
