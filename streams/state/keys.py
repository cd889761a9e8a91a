"""Every Redis key leadstream writes is named here, and read back only here.

Keys that must change together share a hash tag (the part in braces), so they live in one slot
and the code runs unchanged on Redis Cluster. A contact and its account are deliberately in
different slots: the account is updated after the contact, through the contact's outbox.

No key names a person: a contact's key holds the pseudonym of its profile id (a keyed hash, see
state/pseudonyms.py) under the process's secret (``use_pseudonym_secret``, set from the settings
by bootstrap.py before any client is made), never the contact id or an email address.
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import Final

from leadstream.state.pseudonyms import DEFAULT_SECRET, pseudonym

__all__ = [
    "ACCOUNT_SHARDS",
    "SHADOW_SPACE",
    "TIMER_SHARDS",
    "account_key",
    "account_keys_start",
    "account_queue_key",
    "contact_key",
    "contact_keys_start",
    "contact_token",
    "is_token",
    "parse_timer_member",
    "progress_key",
    "record_id",
    "router_key",
    "suppression_changes_key",
    "suppression_key",
    "timer_key",
    "timer_member",
    "timer_shard",
    "token_key",
    "use_pseudonym_secret",
    "watermark_key",
]


_secret = [DEFAULT_SECRET]


def use_pseudonym_secret(secret: bytes) -> None:
    """The secret every contact key is named with in this process (see the module docstring)."""
    if secret != _secret[0]:
        _secret[0] = secret
        contact_key.cache_clear()


def contact_token(contact_id: str) -> str:
    """The pseudonym that names a profile's key, timers and handoff records."""
    return pseudonym(_secret[0], contact_id)


@lru_cache(maxsize=16_384)  # named several times per batch (load, plan, commit): one HMAC each
def contact_key(prefix: str, contact_id: str) -> str:
    """The hash holding one contact (or anonymous / email-only profile): version, state, outbox."""
    return token_key(prefix, contact_token(contact_id))


def token_key(prefix: str, token: str) -> str:
    """A contact's key from its pseudonym (what timer members and record_id give back)."""
    return f"{prefix}:{{c:{token}}}"


def is_token(text: str) -> bool:
    """Whether a contact key's inner id is a pseudonym (keys written before pseudonyms are not)."""
    return len(text) == 33 and text[0] == "p" and all(c in "0123456789abcdef" for c in text[1:])


def contact_keys_start(prefix: str) -> str:
    """What every contact key under ``prefix`` starts with (add ``*`` for a SCAN pattern)."""
    return f"{prefix}:{{c:"


def account_keys_start(prefix: str) -> str:
    """What every account key under ``prefix`` starts with (add ``*`` for a SCAN pattern)."""
    return f"{prefix}:{{a:"


def record_id(key: str) -> str:
    """What a contact or account key names inside its hash tag: the contact's pseudonym, the
    account's domain."""
    return key[key.index("{") + 3 : key.rindex("}")]


TIMER_SHARDS: Final = 16


def timer_key(prefix: str, shard: int) -> str:
    """A sorted set of due times (score) of contacts' timers (member ``<contact>|<kind>``).

    Sharded so that no single slot holds every timer on Redis Cluster.
    """
    return f"{prefix}:{{timers:{shard}}}"


def timer_shard(contact_id: str) -> int:
    return zlib.crc32(contact_id.encode()) % TIMER_SHARDS


def timer_member(token: str, kind: str) -> str:
    """A timer's member in its sorted set: the contact's pseudonym and the timer's kind."""
    return f"{token}|{kind}"


def parse_timer_member(member: str) -> tuple[str, str]:
    """(pseudonym, timer kind) of a timer member (older members hold a contact id, which may
    contain ``|``; kinds do not)."""
    contact, _, kind = member.rpartition("|")
    return contact, kind


def router_key(prefix: str, name: str) -> str:
    """The router's state; all of it in one slot (the ``{route}`` tag) so assignment is atomic."""
    return f"{prefix}:{{route}}:{name}"


def account_key(prefix: str, domain: str) -> str:
    """The hash holding one account: version, firmographics, member snapshots, outbox."""
    return f"{prefix}:{{a:{domain}}}"


ACCOUNT_SHARDS: Final = 16


def account_queue_key(prefix: str, shard: int) -> str:
    """A sorted set of accounts (member: domain) with points waiting for the stream to reach
    them, scored by the event time they wait for; sharded like the timers."""
    return f"{prefix}:{{accounts:{shard}}}"


SHADOW_SPACE: Final = ":shadow:"  # a shadow model's key space: {prefix}:shadow:<version> (engine/shadow.py)


def suppression_key(prefix: str) -> str:
    """A hash of erased people: pseudonym (state/pseudonyms.py) -> when; their later events are
    dead-lettered as ``suppressed`` until ``leadstream forget --undo``. One per deployment: a
    shadow model's key space reads its deployment's."""
    return f"{prefix.split(SHADOW_SPACE, 1)[0]}:{{suppressed}}"


def suppression_changes_key(suppressions: str) -> str:
    """A random mark ``leadstream forget`` sets anew each time it changes the suppression hash
    ``suppressions``: workers read the list again only when it (or the hash's length) moved."""
    return f"{suppressions}:changes"


def watermark_key(prefix: str, group: str) -> str:
    """A hash of every input partition's progress in one consumer group ("topic:partition" -> see
    watermarks.py): two groups reading the same topics are two streams."""
    return f"{prefix}:{{watermarks:{group}}}"


def progress_key(prefix: str, group: str) -> str:
    """A hash of the state's incarnation and, per input partition ("topic:partition"), the offset
    up to which its records' effects are in Redis (state/progress.py). One per consumer group."""
    return f"{prefix}:{{progress:{group}}}"
