"""The batch engine: decode -> score -> store -> emit, for one batch of records.

Used by the Kafka worker and by ``leadstream replay`` alike, so both decide identically.
Per batch: one pipelined load of every contact in it, pure scoring in memory, one pipelined
compare-and-set commit, then the handoffs and dead letters are produced and awaited, then the
outbox entries are acknowledged. Idempotent under replay: each contact stores the last applied
offset per source partition (records at or below it are skipped) and its recent event ids
(producer-side duplicates are skipped). A handoff decided but not yet published stays in the
contact's outbox and is published again the next time the contact is loaded: after a crash the
uncommitted records are consumed again, which loads exactly the contacts that may hold one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from config.model import ScoringModel
from config.settings import Topics
from streams.dead_letters import dead_letter
from streams.decode import contact_key_of, decode_event
from streams.errors import InvalidEvent, StateUnavailable
from streams.records import OutputRecord, SourceRecord
from streams.scoring import ContactState, apply, compile_model
from streams.sinks import Sink
from streams.state.port import ContactStore, ContactWrite, StoredContact

logger = logging.getLogger(__name__)
MAX_COMMIT_ATTEMPTS = 8


@dataclass(slots=True)
class Counters:
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    handoffs: int = 0
    republished: int = 0
    conflicts: int = 0
    rules: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Pending:
    record: SourceRecord
    event: Any


@dataclass(slots=True)
class _Outcome:
    """One contact's result in one attempt; counted only once its commit succeeded."""

    write: ContactWrite | None = None
    handoffs: list[dict[str, Any]] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0
    rules: list[str] = field(default_factory=list)


class ScoringPipeline:
    def __init__(self, store: ContactStore, sink: Sink, model: ScoringModel, topics: Topics) -> None:
        self._store = store
        self._sink = sink
        self._model = model
        self._compiled = compile_model(model)
        self._topics = topics
        self.counters = Counters()
        self.handoff_observers: list[Any] = []

    async def process(self, batch: Sequence[SourceRecord]) -> None:
        """Process one batch completely: state committed and outputs acknowledged."""
        self.counters.records += len(batch)
        outputs: list[OutputRecord] = []
        by_contact: dict[str, list[_Pending]] = {}
        for record in batch:
            try:
                event = decode_event(record, self._model.event_policy)
            except InvalidEvent as exc:
                outputs.append(dead_letter(record, exc, self._topics.dead_letters, "decode"))
                self.counters.dead_letters += 1
                continue
            by_contact.setdefault(contact_key_of(event), []).append(_Pending(record, event))
        for pending in by_contact.values():
            # Event time order within the batch: crossings are evaluated in the order things happened.
            pending.sort(key=lambda p: (p.event.occurred_at, p.event.event_id))

        delivered = await self._score_and_commit(by_contact, outputs)
        await self._sink.send_all(outputs)
        await self._store.ack_outbox(delivered)

    async def _score_and_commit(
        self, by_contact: dict[str, list[_Pending]], outputs: list[OutputRecord]
    ) -> list[tuple[str, str]]:
        remaining = list(by_contact)
        delivered: list[tuple[str, str]] = []
        for _attempt in range(MAX_COMMIT_ATTEMPTS):
            if not remaining:
                return delivered
            stored = await self._store.load(remaining)
            outcomes = {c: self._apply(c, stored[c], by_contact[c]) for c in remaining}
            conflicts = await self._store.commit([o.write for o in outcomes.values() if o.write])
            self.counters.conflicts += len(conflicts)
            for contact_id, outcome in outcomes.items():
                if contact_id in conflicts:
                    continue
                self._count(outcome)
                outbox = dict(stored[contact_id].outbox)
                self.counters.republished += len(outbox)
                if outcome.write is not None:
                    outbox.update(outcome.write.new_outbox)
                for handoff_id, payload in outbox.items():
                    outputs.append(OutputRecord(self._topics.handoffs, contact_id.encode(), payload))
                    delivered.append((contact_id, handoff_id))
            remaining = [c for c in remaining if c in conflicts]
        raise StateUnavailable(
            f"{len(remaining)} contacts kept changing under this worker ({MAX_COMMIT_ATTEMPTS} "
            "attempts): another worker is writing the same contacts; check that all workers share "
            "one consumer group"
        )

    def _count(self, outcome: _Outcome) -> None:
        counters = self.counters
        counters.applied += outcome.applied
        counters.duplicates += outcome.duplicates
        counters.handoffs += len(outcome.handoffs)
        for rule in outcome.rules:
            counters.rules[rule] = counters.rules.get(rule, 0) + 1
        for handoff in outcome.handoffs:
            for observer in self.handoff_observers:
                observer(handoff)

    def _apply(self, contact_id: str, stored: StoredContact, pending: list[_Pending]) -> _Outcome:
        state = stored.state or ContactState(contact_id)
        outcome = _Outcome()
        changed = False
        for item in pending:
            record = item.record
            source = f"{record.topic}:{record.partition}"
            if record.offset <= state.applied.get(source, -1):
                outcome.duplicates += 1  # consumed again after a restart or rebalance
                continue
            state.applied[source] = record.offset
            changed = True
            now = max(state.clock, item.event.occurred_at.timestamp())
            decision = apply(state, item.event, self._compiled, now)
            if decision.duplicate:
                outcome.duplicates += 1  # the producer sent the same event twice
                continue
            outcome.applied += 1
            outcome.rules.extend(decision.counted)
            if decision.handoff is not None:
                outcome.handoffs.append(decision.handoff)
        if changed:
            new_outbox = {h["handoff_id"]: orjson.dumps(h) for h in outcome.handoffs}
            outcome.write = ContactWrite(contact_id, stored.version, state, new_outbox)
        return outcome
