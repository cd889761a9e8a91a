"""Every Redis key leadstream writes is named here.

Keys that must change together share a hash tag (the part in braces), so they live in one slot
and the code runs unchanged on Redis Cluster. A contact and its account are deliberately in
different slots: the account is updated after the contact, through the contact's outbox.
"""

from __future__ import annotations

import zlib


def contact_key(prefix: str, contact_id: str) -> str:
    """The hash holding one contact (or anonymous / email-only profile): version, state, outbox."""
    return f"{prefix}:{{c:{contact_id}}}"


TIMER_SHARDS = 16


def timer_key(prefix: str, shard: int) -> str:
    """A sorted set of due times (score) of contacts' timers (member ``<contact>|<kind>``).

    Sharded so that no single slot holds every timer on Redis Cluster.
    """
    return f"{prefix}:{{timers:{shard}}}"


def timer_shard(contact_id: str) -> int:
    return zlib.crc32(contact_id.encode()) % TIMER_SHARDS


def router_key(prefix: str, name: str) -> str:
    """The router's state; all of it in one slot (the ``{route}`` tag) so assignment is atomic."""
    return f"{prefix}:{{route}}:{name}"


def account_key(prefix: str, domain: str) -> str:
    """The hash holding one account: version, firmographics, member snapshots, outbox."""
    return f"{prefix}:{{a:{domain}}}"


ACCOUNT_SHARDS = 16


def account_queue_key(prefix: str, shard: int) -> str:
    """A sorted set of accounts (member: domain) with points waiting for the stream to reach
    them, scored by the event time they wait for; sharded like the timers."""
    return f"{prefix}:{{accounts:{shard}}}"


def watermark_key(prefix: str, group: str) -> str:
    """A hash of every input partition's progress in one consumer group ("topic:partition" -> see
    watermarks.py): two groups reading the same topics are two streams."""
    return f"{prefix}:{{watermarks:{group}}}"
