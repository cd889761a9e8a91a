"""Pack Redis commands with hiredis's C packer in the asyncio client.

redis-py's synchronous client packs commands with hiredis when it is installed; its asyncio
client still packs them in Python, which cost a tenth of a busy worker's CPU (py-spy, issue 6).
The wire format is the same RESP, so this is a drop-in: arguments are encoded by redis-py's own
encoder first (same bytes for str, int and float as before), then framed by hiredis.
"""

from __future__ import annotations

from typing import Any

import hiredis
import redis.asyncio as aioredis

__all__ = ["use_hiredis_packing"]


class _HiredisPacking:
    encoder: Any

    def pack_command(self, *args: Any) -> list[bytes]:
        head = args[0]
        # Multi-word command names ("FUNCTION LOAD") go to the server as separate arguments.
        if isinstance(head, str):
            args = tuple(head.encode().split()) + args[1:]
        elif b" " in head:
            args = tuple(head.split()) + args[1:]
        encode = self.encoder.encode
        return [hiredis.pack_command(tuple(encode(a) for a in args))]

    def pack_commands(self, commands: Any) -> list[bytes]:
        return [b"".join(self.pack_command(*command)[0] for command in commands)]


def use_hiredis_packing(client: aioredis.Redis) -> aioredis.Redis:
    """Make ``client``'s future connections pack with hiredis (TCP, TLS and unix sockets alike).
    A cluster client (a pool per node, made as nodes are discovered) is returned unchanged."""
    if not isinstance(client, aioredis.Redis):
        return client
    pool = client.connection_pool
    base = pool.connection_class
    if not issubclass(base, _HiredisPacking):
        pool.connection_class = type(f"HiredisPacking{base.__name__}", (_HiredisPacking, base), {})
    return client
