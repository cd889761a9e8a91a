"""Whether Redis still holds the state the consumer group's committed offsets stand for.

A Redis run without persistence (``--save '' --appendonly no``) and restarted, or flushed, comes
back empty while Kafka still holds the group's committed offsets: a worker going on from them
would score every contact from zero, and miss the MQLs of every journey that began before. One
hash per consumer group (``progress_key``) tells:

- ``incarnation``: a random id, written once when a worker finds the hash missing. Every new
  connection of the state store reads it first (``IncarnationCheck``); a Redis restarted empty
  (every connection breaks) or rebuilt since by another worker raises StateLost before anything
  is written, and the worker starts over (see worker.py).
- ``<topic>:<partition>``: the offset up to which the partition's records' effects are in Redis
  (``mark``), written after each batch's commits and before its offsets are committed to Kafka.
  A partition starts at the lower of its committed offset and its mark (kafka/confluent_loop.py).

At start (``StateProgress.open``) a missing hash is one of three things (``classify``): a new
deployment (no offsets committed), a deployment from before this hash (contact keys exist), or
lost state (offsets committed, no contact key left). For lost state every input partition's mark
is 0: each is read again from its first offset. Replaying is exact (event time, idempotent
commits), so the state and the handoffs come back as they were; a handoff published before the
loss is published again with the same id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from leadstream.errors import StateLost
from leadstream.state.redis_store import function_library

__all__ = [
    "INCARNATION",
    "OPEN_FUNCTION",
    "IncarnationCheck",
    "Opening",
    "StateProgress",
    "classify",
    "field_of",
]

INCARNATION = "incarnation"
Opening = Literal["known", "fresh", "upgrade", "lost"]

OPEN_FUNCTION = "ls_open_progress_v1"  # in the function library (lua/leadstream.lua)


def classify(found: bool, committed: bool, contacts: bool) -> Opening:
    """What a worker opens: ``found`` the hash, ``committed`` any offset of the group on the
    input topics, ``contacts`` any contact key under the prefix."""
    if found:
        return "known"
    if not committed:
        return "fresh"
    return "upgrade" if contacts else "lost"


def field_of(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


class IncarnationCheck:
    """A Redis ``redis_connect_func``: after the handshake, the connection reads the incarnation,
    and the marks this worker wrote last, and refuses to serve a Redis whose state is not the one
    this worker opened (another incarnation, or none) or is an older copy of it (a mark below
    what this worker wrote: Redis restarted from an earlier snapshot). Until ``token`` is set (at
    start, before the state is opened) it checks nothing."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.token: str | None = None
        # Field -> the mark this worker wrote last, for the partitions it owns (only their owner
        # writes them: a lower one in Redis is an older copy, not another worker's).
        self.written: dict[str, int] = {}

    def _command(self) -> tuple[dict[str, int], tuple[Any, ...]]:
        written = dict(self.written)  # one copy (a C-level copy: no other thread interleaves)
        return written, ("HMGET", self.key, INCARNATION, *written)

    def _verify(self, written: dict[str, int], found: list[bytes | None]) -> None:
        if self.token is None:
            return
        incarnation, marks = found[0], found[1:]
        if incarnation is None or incarnation.decode() != self.token:
            raise StateLost(
                f"Redis no longer holds the state this worker opened ({self.key} "
                f"{'is gone' if incarnation is None else 'names another incarnation'}): it "
                "restarted without persistence or was flushed. The worker starts over and reads "
                "its partitions again from where the state is; run Redis with appendonly yes to "
                "keep state across restarts"
            )
        behind = [
            f"{name} at {int(mark) if mark is not None else 'none'}, written {written[name]}"
            for (name, mine), mark in zip(written.items(), marks, strict=True)
            if mark is None or int(mark) < mine
        ]
        if behind:
            raise StateLost(
                f"Redis holds an older copy of the state this worker opened ({self.key}: "
                f"{'; '.join(behind)}): it restarted from an earlier snapshot. The worker starts "
                "over and reads its partitions again from where that copy stands; run Redis with "
                "appendonly yes to keep every acknowledged write across restarts"
            )

    def __call__(self, connection: Any) -> None:  # redis.Connection
        connection.on_connect()
        written, command = self._command()
        connection.send_command(*command)
        self._verify(written, connection.read_response())

    async def on_connect_async(self, connection: Any) -> None:  # redis.asyncio.Connection
        await connection.on_connect()
        written, command = self._command()
        await connection.send_command(*command)
        self._verify(written, await connection.read_response())


class StateProgress:
    """The hash, over a blocking client (the consumer's rebalance callbacks run in a thread);
    what it writes, ``check`` verifies on every new connection."""

    def __init__(self, client: Any, check: IncarnationCheck, token: str) -> None:
        self._client = client
        self._check = check
        self.key = check.key
        self.token = token

    @classmethod
    def open(
        cls,
        client: Any,
        check: IncarnationCheck,
        contact_pattern: str,
        committed: bool,
        partitions: Iterable[tuple[str, int]],
    ) -> tuple[StateProgress, Opening]:
        """Open the state: ``committed`` whether the group has committed offsets on the inputs,
        ``partitions`` every input partition (marked 0 when the state was lost). ``check``
        holds every later connection to this state."""
        key = check.key
        found: bytes | None = client.hget(key, INCARNATION)
        opening: Opening = "known"
        if found is not None:
            token = found.decode()
        else:
            contacts = committed and _any_key(client, contact_pattern)
            opening = classify(False, committed, contacts)
            mine = uuid.uuid4().hex
            fields: list[Any] = [INCARNATION, mine]
            if opening == "lost":
                for topic, partition in partitions:
                    fields += [field_of(topic, partition), 0]
            # Created only if no worker did meanwhile (workers start together after a loss).
            client.function_load(function_library(), replace=True)
            created = client.fcall(OPEN_FUNCTION, 1, key, *fields)
            token = created.decode() if isinstance(created, bytes) else str(created)
            if token != mine:
                opening = "known"  # another worker opened it first
        check.token = token
        return cls(client, check, token), opening

    def marks(self) -> dict[tuple[str, int], int]:
        """Every partition's mark."""
        out = {}
        for name, value in self._client.hgetall(self.key).items():
            text = name.decode()
            if text == INCARNATION:
                continue
            topic, _, partition = text.rpartition(":")
            out[(topic, int(partition))] = int(value)
        return out

    def record(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """The partitions' next offsets, once their records' effects are committed to Redis."""
        if offsets:
            fields = {field_of(t, p): o for (t, p), o in offsets.items()}
            self._client.hset(self.key, mapping=fields)
            self._check.written.update(fields)

    def release(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Partitions no longer this worker's: their next owner writes their marks."""
        for topic, partition in partitions:
            self._check.written.pop(field_of(topic, partition), None)


def _any_key(client: Any, pattern: str) -> bool:
    """Whether any key matches ``pattern`` (SCAN, on every node of a cluster)."""
    return next(iter(client.scan_iter(match=pattern, count=1000)), None) is not None
