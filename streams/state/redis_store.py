"""The Redis ContactStore: one hash per contact, pipelined loads, a Redis Function for commits."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from streams.errors import StateUnavailable
from streams.state.keys import contact_key
from streams.state.port import ContactWrite, StoredContact, decode_state, encode_state

logger = logging.getLogger(__name__)
COMMIT_FUNCTION = "ls_commit_contact_v1"


def function_library() -> str:
    return resources.files("streams.state").joinpath("lua/leadstream.lua").read_text(encoding="utf-8")


class RedisContactStore:
    def __init__(self, client: aioredis.Redis, prefix: str, ttl_seconds: int) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl = str(ttl_seconds)
        self._loaded = False

    def _unavailable(self, action: str, exc: Exception) -> StateUnavailable:
        return StateUnavailable(
            f"Redis failed while {action}: {exc}. Check that Redis is up and reachable at the "
            "configured LEADSTREAM_REDIS_URL; the worker retries the batch and loses nothing."
        )

    async def ensure_functions(self) -> None:
        """Load (or replace) the function library: once per start, and again if Redis lost it."""
        try:
            await self._redis.function_load(function_library(), replace=True)
        except RedisError as exc:
            raise self._unavailable("loading the leadstream function library", exc) from exc
        self._loaded = True

    async def load(self, contact_ids: Sequence[str]) -> dict[str, StoredContact]:
        try:
            pipe = self._redis.pipeline(transaction=False)
            for contact_id in contact_ids:
                pipe.hgetall(contact_key(self._prefix, contact_id))
            rows = await pipe.execute()
        except RedisError as exc:
            raise self._unavailable(f"loading {len(contact_ids)} contacts", exc) from exc
        return {contact_id: _stored(row) for contact_id, row in zip(contact_ids, rows, strict=True)}

    async def get(self, contact_id: str) -> StoredContact:
        return (await self.load([contact_id]))[contact_id]

    async def commit(self, writes: Sequence[ContactWrite]) -> set[str]:
        if not writes:
            return set()
        if not self._loaded:
            await self.ensure_functions()
        try:
            results = await self._commit(writes)
        except ResponseError as exc:
            if "function" not in str(exc).lower():
                raise self._unavailable("committing contacts", exc) from exc
            # Redis restarted without persistence and lost the library: load it and retry once.
            logger.warning("Redis lost the leadstream functions (%s); loading them again", exc)
            await self.ensure_functions()
            results = await self._commit(writes)
        except RedisError as exc:
            raise self._unavailable(f"committing {len(writes)} contacts", exc) from exc
        return {w.contact_id for w, (ok, _) in zip(writes, results, strict=True) if not ok}

    async def _commit(self, writes: Sequence[ContactWrite]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        for write in writes:
            args: list[Any] = [str(write.expected_version), encode_state(write.state), self._ttl]
            for handoff_id, payload in write.new_outbox.items():
                args.extend((handoff_id, payload))
            pipe.fcall(COMMIT_FUNCTION, 1, contact_key(self._prefix, write.contact_id), *args)
        results = await pipe.execute(raise_on_error=False)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return list(results)

    async def ack_outbox(self, delivered: Sequence[tuple[str, str]]) -> None:
        if not delivered:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for contact_id, handoff_id in delivered:
                pipe.hdel(contact_key(self._prefix, contact_id), f"o:{handoff_id}")
            await pipe.execute()
        except RedisError as exc:
            raise self._unavailable("acknowledging published handoffs", exc) from exc

    async def memory_usage(self, contact_id: str) -> int | None:
        """Bytes Redis uses for one contact (MEMORY USAGE), for reports and benchmarks."""
        result = await self._redis.memory_usage(contact_key(self._prefix, contact_id), samples=0)
        return int(result) if result is not None else None


def _stored(row: dict[bytes, bytes]) -> StoredContact:
    if not row:
        return StoredContact(None)
    outbox = {k[2:].decode(): v for k, v in row.items() if k.startswith(b"o:")}
    raw_state = row.get(b"s")
    return StoredContact(decode_state(raw_state) if raw_state else None, int(row.get(b"v", b"0")), outbox)
