"""Redis Cluster clients for the engine (asyncio) and the tools (blocking).

Every key that changes together shares a hash tag (keys.py), so each commit function call touches
one slot and runs on one master; a pipeline of calls is split by redis-py per node. One thing is
ours: redis-py finds the slot of an FCALL by asking the server which arguments are keys (COMMAND
GETKEYS, a round trip per call, because FCALL's keys are "movable"); our calls always pass their
key count first, so the slot is computed here, as redis-py does for EVAL.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio.cluster as async_cluster
import redis.cluster as sync_cluster

__all__ = ["AsyncCluster", "BlockingCluster"]

_FCALLS = ("FCALL", "FCALL_RO")


def _fcall_slot(nodes: Any, args: tuple[Any, ...]) -> int | None:
    """The slot of ``FCALL name numkeys key ...``; None for anything else (redis-py decides)."""
    command = args[0]
    name = command.decode() if isinstance(command, bytes) else str(command)
    if name.upper() not in _FCALLS or len(args) < 4 or int(args[2]) < 1:
        return None
    return int(nodes.keyslot(args[3]))


class AsyncCluster(async_cluster.RedisCluster):
    async def _determine_slot(self, command: str, *args: Any) -> int:
        slot = _fcall_slot(self, (command, *args))
        return slot if slot is not None else await super()._determine_slot(command, *args)


class BlockingCluster(sync_cluster.RedisCluster):
    def determine_slot(self, *args: Any) -> int | None:
        slot = _fcall_slot(self, args)
        return slot if slot is not None else super().determine_slot(*args)
