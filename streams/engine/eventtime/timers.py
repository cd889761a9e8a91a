"""The timer service: fires due timers (SLA breaches, decayed MQLs) between events.

Every worker runs it every ``LEADSTREAM_TIMER_INTERVAL_S``. It reads every shard of the timer
index for members due by the wall clock, loads those contacts, fires their due timers with the
pure core (the transition is stamped with the timer's due time, not the wall clock, so its
content is the same as if the contact's next event had fired it), commits by compare-and-set,
publishes, and only then removes the fired entries. Several workers may pick up the same timer:
the compare-and-set and the deterministic event ids make that harmless.

It also closes quiet contacts' journals (engine/stages/journal.py): a ``journal`` timer is due a
horizon after a contact's latest entry; if the stream is past that moment too (``may_close``) the
journal, base and checkpoint go in the same compare-and-set, else the timer is looked at again
at the journal's close time (``jt``: later visits move that, not the timer), or ``CLOSE_RETRY_S``
later if that has come.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Final

from leadstream.config.settings import Topics
from leadstream.engine.eventtime.watermarks import Everything
from leadstream.engine.outbox import (
    JOURNAL_TIMER,
    EntryKind,
    is_kind,
    lifecycle_entries,
    plan,
    timer_entries,
)
from leadstream.engine.ports import Sink
from leadstream.engine.stages.journal import Journal, closing_writes, may_close
from leadstream.scoring.accounts import Release
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

__all__ = ["BATCH", "CLOSE_RETRY_S", "TimerService"]

logger = logging.getLogger(__name__)
BATCH: Final = 500
# A journal the stream does not let close yet (a partition behind) is looked at again this much
# later in stream time (or a quarter of the horizon, if shorter); its timer must not stay due, or
# it would hold the shard's other timers.
CLOSE_RETRY_S: Final = 3600.0
DAY_S: Final = 86_400.0


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
        horizon_s: float = 7 * DAY_S,
    ) -> None:
        self._store = store
        self._horizon_s = horizon_s
        self._retry_s = max(1.0, min(CLOSE_RETRY_S, horizon_s / 4))
        self._codec = codec
        self._timers = timers
        self._sink = sink
        self._compiled = compiled
        self._topics = topics
        self._prefix = prefix
        # For the metrics: timers found due (stale ones included) and the events they produced.
        self.due_total = 0
        self.fired_total = 0
        self.journals_closed = 0

    def use_model(self, compiled: CompiledModel) -> None:
        self._compiled = compiled

    async def tick(self, now: float, release: Release | None = None) -> int:
        """Fire every timer due by ``now``; return how many lifecycle events that produced.
        ``release``: how far the stream is, for closing journals (None: all of it is read)."""
        release = release if release is not None else Everything()
        # Every shard's due timers fire together: one load, one commit, one publish for all
        # (shard by shard, a tick took ~8 round trips a shard while the batches waited).
        indexes = [timer_key(self._prefix, shard) for shard in range(TIMER_SHARDS)]
        found = await self._timers.due_in(indexes, now, BATCH)
        due = [(index, member, when) for index, rows in found.items() for member, when in rows]
        if not due:
            return 0
        self.due_total += len(due)
        fired = await self._fire(due, release)
        self.fired_total += fired
        return fired

    async def _fire(self, due: list[tuple[str, str, float]], release: Release) -> int:
        """``due``: (index key, member, due time) entries."""
        latest: dict[str, float] = {}
        journals: dict[str, list[tuple[str, str, float]]] = {}  # contact -> its journal timers
        for index, member, when in due:
            contact, kind = parse_timer_member(member)
            if kind == JOURNAL_TIMER:
                journals.setdefault(contact, []).append((index, member, when))
                latest.setdefault(contact, float("-inf"))
            else:
                latest[contact] = max(when, latest.get(contact, when))
        keys = {contact: _timer_contact_key(self._prefix, contact) for contact in latest}
        records = await self._store.load(list(keys.values()))
        writes: list[RecordWrite] = []
        events: dict[str, list[dict[str, Any]]] = {}
        closing: set[str] = set()
        later: list[tuple[str, str, float, float]] = []  # journals the stream does not let close yet
        for contact, until in latest.items():
            stored = records[keys[contact]]
            if stored.value is None:
                continue
            close = False
            if contact in journals:
                journal = Journal.of(stored)
                close = may_close(journal, self._horizon_s, release)
                if not close and journal.parts:
                    # Not quiet (visits since moved its close time, not its timer: stages/journal.py's
                    # close_moves), or the stream not past it yet: looked at again at its close time.
                    close_at = journal.close_at if journal.close_at is not None else -math.inf
                    later.extend(
                        (index, member, when, max(when + self._retry_s, close_at))
                        for index, member, when in journals[contact]
                    )
            state = decode_state(stored.value)
            before = dict(state.timers)
            fired = fire_due(self._compiled, state, until) if until > float("-inf") else []
            entries = {**lifecycle_entries(fired), **timer_entries(before, state.timers)}
            parts: dict[str, bytes | None] = closing_writes(stored.parts) if close else {}
            value = None
            if fired or state.timers != before:
                if fired:
                    # Published: a late input applied again later must not decide these anew
                    # (the decision checkpoint of scoring/timeline.py).
                    last = state.last_key[0] if state.last_key else until
                    state.published_key = fired_key(max(until, last))
                value = encode_contact(state, self._codec)
                if fired and not close and any(name.startswith(JOURNAL_PART) for name in stored.parts):
                    parts[CHECKPOINT_PART] = value
                events[keys[contact]] = fired
            if value is not None or parts:
                writes.append(RecordWrite(keys[contact], stored.version, value, entries, parts=parts))
                if close:
                    closing.add(keys[contact])
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
        waiting = {(index, member) for index, member, _, _ in later}
        done = [
            (index, m, w)
            for index, m, w in due
            if (index, m) not in waiting
            and _timer_contact_key(self._prefix, parse_timer_member(m)[0]) not in conflicts
        ]
        await self._timers.unschedule(done)
        await self._timers.reschedule(later)  # journals the stream does not let close yet
        closed = len(closing - conflicts)
        self.journals_closed += closed
        if closed:
            logger.debug("closed the journals of %d quiet contacts", closed)
        fired_events = [e for key, batch in events.items() if key not in conflicts for e in batch]
        if fired_events:
            logger.info("timers fired %d lifecycle events for %d contacts", len(fired_events), len(events))
        return len(fired_events)


def _timer_contact_key(prefix: str, member_id: str) -> str:
    """The contact a timer member names: by its pseudonym, or (members scheduled before keys were
    pseudonymous, until `leadstream migrate-keys`) by its contact id."""
    return token_key(prefix, member_id) if is_token(member_id) else contact_key(prefix, member_id)
