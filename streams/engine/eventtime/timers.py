"""The timer service: fires due timers (SLA breaches, decayed MQLs) between events.

Every worker runs it every ``LEADSTREAM_TIMER_INTERVAL_S``. It reads each shard of the timer
index for members due by the wall clock, loads those contacts, fires their due timers with the
pure core (the transition is stamped with the timer's due time, not the wall clock, so its
content is the same as if the contact's next event had fired it), commits by compare-and-set,
publishes, and only then removes the fired entries. Several workers may pick up the same timer:
the compare-and-set and the deterministic event ids make that harmless.
"""

from __future__ import annotations

import logging
from typing import Any

from leadstream.config.settings import Topics
from leadstream.engine.outbox import EntryKind, is_kind, lifecycle_entries, plan, timer_entries
from leadstream.engine.ports import Sink
from leadstream.scoring.engine import fire_due
from leadstream.scoring.signals import CompiledModel
from leadstream.scoring.timeline import fired_key
from leadstream.state.codec import Codec
from leadstream.state.keys import (
    TIMER_SHARDS,
    contact_key,
    is_token,
    parse_timer_member,
    timer_key,
    token_key,
)
from leadstream.state.port import (
    CHECKPOINT_PART,
    JOURNAL_PART,
    RecordWrite,
    StateStore,
    TimerIndex,
    decode_state,
    encode_contact,
)

__all__ = ["BATCH", "TimerService"]

logger = logging.getLogger(__name__)
BATCH = 500


class TimerService:
    def __init__(
        self,
        store: StateStore,
        timers: TimerIndex,
        sink: Sink,
        compiled: CompiledModel,
        topics: Topics,
        prefix: str,
        codec: Codec = "none",
    ) -> None:
        self._store = store
        self._codec = codec
        self._timers = timers
        self._sink = sink
        self._compiled = compiled
        self._topics = topics
        self._prefix = prefix
        self.fired: list[dict[str, Any]] = []
        # For the metrics: timers found due (stale ones included) and the events they produced.
        self.due_total = 0
        self.fired_total = 0

    def use_model(self, compiled: CompiledModel) -> None:
        self._compiled = compiled

    async def tick(self, now: float) -> int:
        """Fire every timer due by ``now``; return how many lifecycle events that produced."""
        produced = 0
        for shard in range(TIMER_SHARDS):
            index = timer_key(self._prefix, shard)
            due = await self._timers.due(index, now, BATCH)
            if due:
                self.due_total += len(due)
                fired = await self._fire(index, due)
                self.fired_total += fired
                produced += fired
        return produced

    async def _fire(self, index: str, due: list[tuple[str, float]]) -> int:
        latest: dict[str, float] = {}
        for member, when in due:
            contact, _ = parse_timer_member(member)
            latest[contact] = max(when, latest.get(contact, when))
        keys = {contact: _timer_contact_key(self._prefix, contact) for contact in latest}
        records = await self._store.load(list(keys.values()))
        writes, events = [], {}
        for contact, until in latest.items():
            stored = records[keys[contact]]
            if stored.value is None:
                continue
            state = decode_state(stored.value)
            before = dict(state.timers)
            fired = fire_due(self._compiled, state, until)
            entries = {**lifecycle_entries(fired), **timer_entries(before, state.timers)}
            if fired or state.timers != before:
                parts: dict[str, bytes | None] = {}
                if fired:
                    # Published: a late input applied again later must not decide these anew
                    # (the decision checkpoint of scoring/timeline.py).
                    last = state.last_key[0] if state.last_key else until
                    state.published_key = fired_key(max(until, last))
                value = encode_contact(state, self._codec)
                if fired and any(name.startswith(JOURNAL_PART) for name in stored.parts):
                    parts[CHECKPOINT_PART] = value
                writes.append(RecordWrite(keys[contact], stored.version, value, entries, parts=parts))
                events[keys[contact]] = fired
        conflicts = await self._store.commit(writes)
        # What these commits decided, and whatever an earlier attempt left undelivered in the same
        # contacts' outboxes (a tick that failed after its commit): each entry once.
        delivered: dict[tuple[str, str], bytes] = {}
        for key in keys.values():
            if key not in conflicts:
                delivered.update(
                    {
                        (key, e): v
                        for e, v in records[key].outbox.items()
                        if not is_kind(e, EntryKind.SNAPSHOTS)
                    }
                )
        for w in writes:
            if w.key not in conflicts:
                delivered.update({(w.key, e): v for e, v in w.new_outbox.items()})
        deliveries = plan([(k, e, v) for (k, e), v in delivered.items()], self._topics, self._prefix)
        await self._sink.send_all(deliveries.records)
        await self._timers.schedule(deliveries.timers)
        await self._store.ack(deliveries.acks)
        # A conflicted contact changed under us (an event arrived): its timers fire on the next tick
        # or with that event. Everything else that was due is done.
        done = [
            (index, m, w)
            for m, w in due
            if _timer_contact_key(self._prefix, parse_timer_member(m)[0]) not in conflicts
        ]
        await self._timers.unschedule(done)
        fired_events = [e for key, batch in events.items() if key not in conflicts for e in batch]
        self.fired.extend(fired_events)
        if fired_events:
            logger.info("timers fired %d lifecycle events for %d contacts", len(fired_events), len(events))
        return len(fired_events)


def _timer_contact_key(prefix: str, member_id: str) -> str:
    """The contact a timer member names: by its pseudonym, or (members scheduled before keys were
    pseudonymous, until `leadstream migrate-keys`) by its contact id."""
    return token_key(prefix, member_id) if is_token(member_id) else contact_key(prefix, member_id)
