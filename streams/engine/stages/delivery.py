"""Outbox entries and where they go once the record that decided them is committed.

    h:<handoff id>     a handoff            -> the handoff topic
    e:<event id>       a lifecycle event    -> the lifecycle topic
    t:<timer kind>     a timer's due time   -> the timer index (a sorted set)
    a:<domain>|<id>|<version>   the member snapshots of one commit -> the account (account_stage.py)

An entry is acknowledged (removed) only after it was delivered, and only if unchanged since.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from leadstream.config.settings import Topics
from leadstream.engine.records import OutputRecord
from leadstream.scoring.state import MemberSnapshot
from leadstream.state.keys import timer_key, timer_shard


@dataclass(slots=True)
class Deliveries:
    records: list[OutputRecord] = field(default_factory=list)
    timers: list[tuple[str, str, float]] = field(default_factory=list)
    acks: list[tuple[str, str, bytes]] = field(default_factory=list)


def lifecycle_entries(events: Sequence[dict[str, Any]]) -> dict[str, bytes]:
    return {f"e:{e.get('transition_id') or e['breach_id']}": orjson.dumps(e) for e in events}


def snapshot_entry(
    domain: str, contact: str, version: int, snapshots: Sequence[MemberSnapshot]
) -> dict[str, bytes]:
    """The snapshots one contact commit took for one account, in the contact's outbox until the
    account has them (a crash in between loses nothing: the next load delivers them again)."""
    return {f"a:{domain}|{contact}|{version}": orjson.dumps([s.to_dict() for s in snapshots])}


def timer_entries(before: dict[str, float], after: dict[str, float]) -> dict[str, bytes]:
    """An entry for every timer set or moved (a cancelled timer fires stale and does nothing)."""
    return {f"t:{kind}": repr(due).encode() for kind, due in after.items() if before.get(kind) != due}


def record_id(state_key: str) -> str:
    """The contact id or account domain inside a record key's hash tag."""
    return state_key[state_key.index("{") + 3 : state_key.rindex("}")]


def plan(entries: Sequence[tuple[str, str, bytes]], topics: Topics, prefix: str) -> Deliveries:
    out = Deliveries()
    for key, entry, value in entries:
        kind, _, name = entry.partition(":")
        if kind == "h":
            out.records.append(OutputRecord(topics.handoffs, record_id(key).encode(), value))
        elif kind == "e":
            out.records.append(OutputRecord(topics.lifecycle, record_id(key).encode(), value))
        elif kind == "t":
            contact = record_id(key)
            out.timers.append((timer_key(prefix, timer_shard(contact)), f"{contact}|{name}", float(value)))
        else:
            continue  # account snapshots are delivered by the account stage
        out.acks.append((key, entry, value))
    return out
