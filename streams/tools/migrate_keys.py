"""``leadstream migrate-keys``: rename contact keys written before keys were pseudonymous.

Keys named ``{prefix}:{c:<contact id>}`` (and timer members ``<contact id>|<kind>``) from earlier
releases move to their pseudonymous names (state/keys.py): each record is copied whole (DUMP and
RESTORE, its TTL kept) and the old key deleted; a timer moves to its new member and shard. Run it
once with the workers stopped (they would write the new names meanwhile); it is idempotent, and a
record already present under its new name is kept (the old one is then only deleted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from leadstream.bootstrap import redis_client
from leadstream.config.settings import Settings
from leadstream.state.keys import (
    TIMER_SHARDS,
    contact_key,
    contact_keys_start,
    contact_token,
    is_token,
    parse_timer_member,
    record_id,
    timer_key,
    timer_member,
    timer_shard,
)

__all__ = ["Migration", "migrate_keys", "run_migrate_keys"]

PROGRESS_EVERY = 10_000


@dataclass(slots=True)
class Migration:
    keys: int = 0  # contact records moved to their pseudonymous key
    kept: int = 0  # old keys dropped because the new one already existed
    timers: int = 0  # timer members moved


async def migrate_keys(settings: Settings, say: Callable[[str], None]) -> Migration:
    client = redis_client(settings)
    prefix = settings.redis_key_prefix
    done = Migration()
    try:
        async for raw in client.scan_iter(match=contact_keys_start(prefix) + "*", count=1000):
            key = raw.decode() if isinstance(raw, bytes) else raw
            inner = record_id(key)
            if is_token(inner):
                continue
            await _move(client, key, contact_key(prefix, inner), done)
            if (done.keys + done.kept) % PROGRESS_EVERY == 0:
                say(f"migrate-keys: {done.keys + done.kept:,} contact keys so far")
        for shard in range(TIMER_SHARDS):
            index = timer_key(prefix, shard)
            for member, due in await client.zrange(index, 0, -1, withscores=True):
                text = member.decode() if isinstance(member, bytes) else member
                contact, kind = parse_timer_member(text)
                if is_token(contact):
                    continue
                token = contact_token(contact)
                await client.zadd(timer_key(prefix, timer_shard(token)), {timer_member(token, kind): due})
                await client.zrem(index, member)
                done.timers += 1
        return done
    finally:
        await client.aclose()


async def _move(client: Any, old: str, new: str, done: Migration) -> None:
    payload = await client.dump(old)
    if payload is None:
        return  # expired or deleted meanwhile
    if await client.exists(new):
        done.kept += 1
    else:
        ttl = await client.pttl(old)
        await client.restore(new, max(ttl, 0), payload)  # 0: no expiry, as the old key had
        done.keys += 1
    await client.delete(old)


def run_migrate_keys(settings: Settings, say: Callable[[str], None]) -> int:
    done = asyncio.run(migrate_keys(settings, say))
    say(
        f"migrate-keys: {done.keys} contact keys renamed to their pseudonyms, {done.kept} old keys dropped "
        f"(already migrated), {done.timers} timers moved"
    )
    return 0
