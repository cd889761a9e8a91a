"""``leadstream forget``: erase a person (GDPR art. 17, CCPA) and keep them erased.

In this order, so that nothing of them is written again behind the erasure:

1. a suppression entry per profile of the person (a keyed hash only, state/pseudonyms.py): the
   workers dead-letter every later event naming one of them as ``suppressed``;
2. their contact record and every stitched profile's record (state, journal, outbox, aliases);
   their timers; their member entries on their account (through the same compare-and-set commit
   as the workers', so the account's next decision counts without them); the router's
   assignments of their handoffs;
3. an erasure event on the erasures topic, for downstream consumers (CRM sync, warehouses) to
   delete theirs: it names the person in clear, since they must find them;
4. the deletion again a moment later: a worker's batch that read the person just before step 1
   may have committed them once more.

Idempotent (run again, it finds less to delete and publishes the same erasure id), safe while
workers run, and logged for audit. ``--undo`` removes the suppression entries (what was deleted
stays deleted); the person's next events start a fresh profile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from leadstream.bootstrap import redis_client
from leadstream.config.settings import Settings
from leadstream.engine.outbox import JOURNAL_TIMER
from leadstream.schemas.events import normalise_email
from leadstream.scoring import ContactState
from leadstream.state.aliases import resolve_aliases
from leadstream.state.codec import Codec, compress_value
from leadstream.state.keys import (
    SHADOW_SPACE,
    account_key,
    contact_key,
    contact_keys_start,
    contact_token,
    router_key,
    suppression_changes_key,
    suppression_key,
    timer_key,
    timer_member,
    timer_shard,
)
from leadstream.state.port import (
    MEMBER_PART,
    PENDING_PART,
    RecordWrite,
    StoredRecord,
    decode_account,
    decode_state,
    encode_state,
)
from leadstream.state.pseudonyms import pseudonym, pseudonym_secret
from leadstream.state.redis_store import RedisStateStore

__all__ = ["ERASURE_NAMESPACE", "Erasure", "forget", "mark_suppressions_changed", "run_forget"]

logger = logging.getLogger(__name__)
ERASURE_NAMESPACE = uuid.UUID("0b7c52a4-5d0e-4c7e-9a0e-3f7d8e61c2aa")
TIMER_KINDS = ("decay", "sla", JOURNAL_TIMER)
SECOND_PASS_AFTER_S = 2.0


@dataclass(slots=True)
class Erasure:
    """What one erasure did (also the audit log's line and the erasure event's body)."""

    subject: str  # the person's pseudonym (of the profile asked for, until it is resolved)
    contact_id: str | None = None
    profiles: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    deleted_keys: int = 0
    account_entries: int = 0
    timers: int = 0
    assignments: int = 0

    def event(self, undo: bool) -> dict[str, Any]:
        return {
            "type": "erasure_undone" if undo else "erasure",
            "erasure_id": str(uuid.uuid5(ERASURE_NAMESPACE, f"{self.subject}|{undo}")),
            "subject": self.subject,
            "contact_id": self.contact_id,
            "profiles": self.profiles,
            "emails": self.emails,
            "at": datetime.now(tz=UTC).isoformat(),
        }


def _profile(contact: str | None, email: str | None) -> str:
    if contact:
        return contact
    if not email:
        raise ValueError("say whom to forget: --contact ID or --email ADDRESS")
    return f"email:{normalise_email(email)}"


async def forget(
    settings: Settings,
    contact: str | None,
    email: str | None,
    undo: bool = False,
    second_pass_s: float = SECOND_PASS_AFTER_S,
) -> Erasure:
    """Erase one person (see the module's docstring); with ``undo``, only lift the suppression."""
    prefix, secret = settings.redis_key_prefix, pseudonym_secret(settings)
    asked = _profile(contact, email)
    erasure = Erasure(pseudonym(secret, asked))
    client = redis_client(settings)
    store = RedisStateStore(client, settings.state_ttl_days * 86_400)
    try:
        suppressions = suppression_key(prefix)
        entries = {
            (t.decode() if isinstance(t, bytes) else t): json.loads(v)
            for t, v in (await client.hgetall(suppressions)).items()
        }
        if undo:
            # Every profile erased together with the one named, whichever of them it is.
            held = entries.get(erasure.subject)
            group = [t for t, v in entries.items() if held is not None and v.get("group") == held["group"]]
            if group:
                await client.hdel(suppressions, *group)
                await mark_suppressions_changed(client, suppressions)
            erasure.profiles = group
            return erasure
        await store.ensure_functions()
        records: dict[str, StoredRecord] = {}
        routes = await resolve_aliases(store, prefix, [asked], records)
        person = routes[asked]
        stored = records[contact_key(prefix, person)]
        states = [decode_state(stored.value)] if stored.value else []
        if not states and asked.startswith("email:"):
            # Contacts keep no alias per email (only email-only profiles have a record): find
            # those whose state holds the address.
            states = await _contacts_with_email(client, store, prefix, asked[len("email:") :])
        profiles = {asked, person}
        for state in states:
            profiles.update({state.contact_id, *state.linked})
            if state.email:
                profiles.add(f"email:{state.email}")
        tokens = [pseudonym(secret, p) for p in profiles]
        # The person's pseudonym names the erasure: the same whichever identifier was asked, and
        # the same when asked again after the first erasure deleted the links between them.
        main = states[0].contact_id if states else person
        known = [entries[t]["group"] for t in tokens if t in entries]
        erasure.subject = known[0] if known else pseudonym(secret, main)
        erasure.contact_id = main
        erasure.profiles = sorted(profiles)
        erasure.emails = sorted(p[len("email:") :] for p in profiles if p.startswith("email:"))
        await _suppress(client, suppressions, tokens, erasure.subject)
        for attempt in range(2 if second_pass_s > 0 else 1):
            if attempt:
                await asyncio.sleep(second_pass_s)
            await _erase(client, store, settings, profiles, states, erasure)
        return erasure
    finally:
        await client.aclose()


async def _suppress(client: Any, key: str, tokens: list[str], group: str) -> None:
    entry = json.dumps({"at": time.time(), "group": group})
    await client.hset(key, mapping={t: entry for t in tokens})
    await mark_suppressions_changed(client, key)


async def mark_suppressions_changed(client: Any, key: str) -> None:
    """Workers read the suppression list again when this mark (or the hash's length) moves: the
    length alone misses an undo and an erasure between two of their batches. A new random mark,
    not a counter, so a Redis that lost its data and counted again from zero still shows it."""
    await client.set(suppression_changes_key(key), uuid.uuid4().hex)


async def _contacts_with_email(
    client: Any, store: RedisStateStore, prefix: str, email: str
) -> list[ContactState]:
    """A SCAN of every contact's state (batches of 1000, progress every 100k): slow on a large
    keyspace, and only for an address that no event ever named alone."""
    found: list[ContactState] = []
    batch: list[str] = []
    seen = 0

    async def check(keys: list[str]) -> None:
        for version_value in (await store.values(keys)).values():
            value = version_value[1]
            if value is not None and (state := decode_state(value)).email == email:
                found.append(state)

    async for raw in client.scan_iter(match=contact_keys_start(prefix) + "*", count=1000):
        batch.append(raw.decode() if isinstance(raw, bytes) else raw)
        if len(batch) >= 1000:
            await check(batch)
            seen += len(batch)
            batch = []
            if seen % 100_000 == 0:
                logger.info("forget: %d contacts searched for the address", seen)
    await check(batch)
    return found


async def _erase(
    client: Any,
    store: RedisStateStore,
    settings: Settings,
    profiles: set[str],
    states: list[ContactState],
    erasure: Erasure,
) -> None:
    prefix, secret, codec = settings.redis_key_prefix, pseudonym_secret(settings), settings.state_compression
    # Contact records, aliases and stitched profiles: one key each, and their copies in shadow
    # models' key spaces.
    for profile in profiles:
        erasure.deleted_keys += await client.delete(contact_key(prefix, profile))
        shadows = f"{prefix}{SHADOW_SPACE}*{{c:{contact_token(profile)}}}"
        async for raw in client.scan_iter(match=shadows, count=1000):
            erasure.deleted_keys += await client.delete(raw)
        token = contact_token(profile)
        for kind in TIMER_KINDS:
            erasure.timers += await client.zrem(
                timer_key(prefix, timer_shard(token)), timer_member(token, kind)
            )
    # The account's member entries, through the workers' commit: its version moves, so a worker
    # holding it decoded reads it again, and its next decision counts without them.
    domains = {d for s in states for d in (s.company_domain, (s.email or "").rpartition("@")[2]) if d}
    for domain in domains:
        erasure.account_entries += await _leave_account(store, prefix, domain, profiles, secret, codec)
    handoffs = [s.last_handoff_id for s in states if s.last_handoff_id]
    if handoffs:
        erasure.assignments += await client.hdel(router_key(prefix, "assigned"), *handoffs)


async def _leave_account(
    store: RedisStateStore, prefix: str, domain: str, profiles: set[str], secret: bytes, codec: Codec
) -> int:
    key = account_key(prefix, domain)
    for _attempt in range(8):
        stored = (await store.load([key]))[key]
        gone = [
            name
            for name in stored.parts
            if (name.startswith(MEMBER_PART) and name[len(MEMBER_PART) :] in profiles)
            or (name.startswith(PENDING_PART) and name[len(PENDING_PART) :].split("\t")[0] in profiles)
        ]
        value = None
        if stored.value is not None:
            account = decode_account(stored.value)
            point = account.point
            if point is not None and point[4] in profiles:
                # The last applied point's tie-break names its member: a pseudonym orders the same
                # for every later point (they differ before it, in time or event id).
                account.point = (*point[:4], pseudonym(secret, point[4]), point[5])
                value = compress_value(encode_state(account), codec)
        if not gone and value is None:
            return 0
        write = RecordWrite(key, stored.version, value, {}, parts=dict.fromkeys(gone))
        if not await store.commit([write]):
            return len(gone)
    raise RuntimeError(
        f"account {domain} kept changing while its member entries were removed: run forget again"
    )


def run_forget(
    settings: Settings, contact: str | None, email: str | None, undo: bool, say: Callable[[str], None]
) -> int:
    """The command: erase (or undo), publish the erasure event, log for audit, report."""
    from leadstream.kafka.clients import make_producer
    from leadstream.kafka.topics import ensure_topics

    ensure_topics(settings)
    erasure = asyncio.run(forget(settings, contact, email, undo))
    event = erasure.event(undo)
    producer = make_producer(settings)
    producer.produce(settings.topics.erasures, key=erasure.subject.encode(), value=json.dumps(event).encode())
    if producer.flush(30) != 0:
        say("the erasure event could not be delivered to Kafka: run forget again (it is idempotent)")
        return 1
    # The audit line names the person by pseudonym only; the topic holds the event itself.
    logger.info(
        "forget%s %s: %d records, %d account entries, %d timers, %d assignments deleted; event %s",
        " --undo" if undo else "",
        erasure.subject,
        erasure.deleted_keys,
        erasure.account_entries,
        erasure.timers,
        erasure.assignments,
        event["erasure_id"],
    )
    if undo:
        say(
            f"suppression lifted for {len(erasure.profiles)} profiles of {erasure.subject}; "
            "their next events score again"
        )
    else:
        say(
            f"forgot {erasure.contact_id} ({len(erasure.profiles)} profiles): {erasure.deleted_keys} "
            f"records, {erasure.account_entries} account entries, {erasure.timers} timers, "
            f"{erasure.assignments} assignments deleted; later events for them are dead-lettered as "
            f"suppressed; erasure event {event['erasure_id']} on {settings.topics.erasures}"
        )
    return 0
