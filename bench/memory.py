"""Redis memory per contact and per account at a million contacts.

Replaying a million contacts' journeys through the worker would take longer than the whole
bench may, so the states are real but reused: a few thousand generated journeys are scored to
their end by the embedded engine, and their final contact and account records are written again
and again under new keys through the production commit function, until there are ``contacts``
of them (and accounts in the generated proportion). ``used_memory`` before and after, divided by
the count, is what each costs: key, hash, state, TTL and all.

Contacts are measured twice: as they are right after their last event (with their late-data
journal) and once quiet (the worker's timer service closed the journal a horizon after the last
event: what most of a million contacts are, most of the time).

It runs in a Redis database of its own (default 15), which must be empty, and is flushed after.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import orjson
import redis

from leadstream.bootstrap import build_embedded, timers_of
from leadstream.config.loader import load_model
from leadstream.config.settings import Settings
from leadstream.engine.records import SourceRecord
from leadstream.state.keys import account_key, contact_key
from leadstream.state.port import RecordWrite, StoredRecord, decode_state
from leadstream.state.redis_store import COMMIT_FUNCTION, commit_args, function_library
from leadstream.tools.generator import JourneyGenerator, default_start

PIPELINE_DEPTH = 1000


def final_records(
    settings: Settings, contacts: int, seed: int = 11
) -> tuple[list[StoredRecord], list[StoredRecord], list[StoredRecord]]:
    """(contact records, account records, contact records once quiet) after every generated event
    was scored; quiet: after the timer service ran a horizon past the last event."""
    events = JourneyGenerator(seed, contacts, start=default_start()).events()
    model = load_model(settings.model_path)
    pipeline, sink, store = build_embedded(settings, model)
    timers = timers_of(settings, store, sink, model)
    records = [
        SourceRecord(
            settings.topics.accounts if e["type"] == "account" else "file", 0, i, json.dumps(e).encode()
        )
        for i, e in enumerate(events)
    ]
    prefix = settings.redis_key_prefix

    async def people() -> list[StoredRecord]:
        loaded = await store.load(store.keys(f"{prefix}:{{c:"))
        return [r for r in loaded.values() if r.value is not None and r.alias is None]

    async def run() -> tuple[list[StoredRecord], list[StoredRecord], list[StoredRecord]]:
        for start in range(0, len(records), 1000):
            await pipeline.process(records[start : start + 1000])
        active = await people()
        accounts = await store.load(store.keys(f"{prefix}:{{a:"))
        quiet_from = pipeline.clock.stream_time + settings.late_data_horizon_days * 86_400 + 86_400
        for _ in range(20):  # SLA steps fire one per tick; the journals close at the first
            closed, fired = timers.journals_closed, timers.fired_total
            await timers.tick(quiet_from)
            if (timers.journals_closed, timers.fired_total) == (closed, fired):
                break
        return active, [r for r in accounts.values() if r.value is not None], await people()

    return asyncio.run(run())


def measure_memory(
    settings: Settings,
    contacts: int,
    db: int = 15,
    templates: int = 3000,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    base = redis.Redis.from_url(settings.redis_url)
    client = redis.Redis(
        connection_pool=redis.ConnectionPool(**{**base.connection_pool.connection_kwargs, "db": db})
    )
    if client.dbsize():
        raise RuntimeError(
            f"Redis database {db} is not empty; the memory bench writes {contacts:,} records there and "
            "flushes it after. Point it at an empty database with --memory-db N."
        )
    client.function_load(function_library(), replace=True)
    people, accounts, quiet = final_records(settings, templates)
    n_accounts = max(1, round(contacts * len(accounts) / max(1, len(people))))
    log(f"memory: {len(people)} scored contacts and {len(accounts)} accounts as templates")
    try:
        before = client.info("memory")["used_memory"]
        ttl = str(settings.state_ttl_days * 86_400)
        _write(client, contacts, lambda i: contact_key("mem", f"c{i}"), people, ttl, "contacts", log)
        middle = client.info("memory")["used_memory"]
        _write(client, contacts, lambda i: contact_key("mem", f"q{i}"), quiet, ttl, "quiet contacts", log)
        quiet_end = client.info("memory")["used_memory"]
        _write(
            client, n_accounts, lambda i: account_key("mem", f"acct{i}.com"), accounts, ttl, "accounts", log
        )
        after = client.info("memory")["used_memory"]
    finally:
        client.flushdb(asynchronous=True)
    return {
        "memory_contacts": contacts,
        "memory_accounts": n_accounts,
        "redis_bytes_per_contact": (middle - before) / contacts,
        "redis_bytes_per_quiet_contact": (quiet_end - middle) / contacts,
        "redis_bytes_per_account": (after - quiet_end) / n_accounts,
        "redis_state_bytes_per_contact": sum(len(r.value or b"") for r in people) / len(people),
        "json_state_bytes_per_contact": sum(len(_json(r.value or b"{}")) for r in people) / len(people),
        "state_compressed": float(settings.state_compression != "none"),
    }


def _write(
    client: redis.Redis,
    count: int,
    key_of: Callable[[int], str],
    templates: list[StoredRecord],
    ttl: str,
    what: str,
    log: Callable[[str], None],
) -> None:
    started = time.perf_counter()
    for start in range(0, count, PIPELINE_DEPTH):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(count, start + PIPELINE_DEPTH)):
            template = templates[i % len(templates)]
            key = key_of(i)
            write = RecordWrite(key, 0, template.value, dict(template.outbox), parts=dict(template.parts))
            pipe.fcall(COMMIT_FUNCTION, 1, key, *commit_args(write, ttl))
        pipe.execute()
        if (start // PIPELINE_DEPTH) % 200 == 199:
            rate = (start + PIPELINE_DEPTH) / (time.perf_counter() - started)
            log(f"memory: {start + PIPELINE_DEPTH:,} of {count:,} {what} written ({rate:,.0f}/s)")


def _json(value: bytes) -> bytes:
    """The state as plain JSON, whichever form it is stored in."""
    return orjson.dumps(decode_state(value).to_dict())
