"""The batch engine: decode -> score -> store -> emit, for one batch of records.

Used by the Kafka worker and by ``leadstream replay`` alike, so both decide identically.
Per batch: the contact stage (one pipelined load, pure scoring, one pipelined compare-and-set
commit), then the account stage (the same for accounts), then every handoff and dead letter is
produced and awaited, then the delivered outbox entries are acknowledged.

Idempotent under replay: each contact stores the last applied offset per source partition
(records at or below it are skipped) and its recent event ids (a producer's duplicates are
skipped); accounts hold a version per member. Nothing decided is lost: handoffs and account
updates wait in the outbox of the record that decided them until delivered. After a crash the
unacknowledged records are consumed again, which loads exactly the records whose outbox may
still hold something, and delivers it again (handoff ids are deterministic).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from config.model import ScoringModel
from config.settings import Topics
from streams.account_stage import AccountResult, AccountStage
from streams.clock import StreamClock
from streams.contact_stage import ContactResult, ContactStage, PendingEvent
from streams.dead_letters import dead_letter
from streams.decode import contact_key_of, decode_event, decode_firmographics
from streams.delivery import plan
from streams.errors import InvalidEvent
from streams.records import OutputRecord, SourceRecord
from streams.scoring import compile_model
from streams.sinks import Sink
from streams.state.port import StateStore, TimerIndex

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Counters:
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    handoffs: int = 0
    account_handoffs: int = 0
    lifecycle: int = 0
    firmographics: int = 0
    tombstones: int = 0
    links: int = 0
    identity_conflicts: int = 0
    conflicts: int = 0
    rules: dict[str, int] = field(default_factory=dict)


class ScoringPipeline:
    def __init__(
        self,
        store: StateStore,
        sink: Sink,
        model: ScoringModel,
        topics: Topics,
        key_prefix: str = "ls",
        timers: TimerIndex | None = None,
        cache_size: int = 50_000,
        compress_state: bool = False,
    ) -> None:
        timers = timers if timers is not None else cast(TimerIndex, store)
        self.clock = StreamClock()
        self._store = store
        self._timers = timers
        self._prefix = key_prefix
        self._sink = sink
        self._model = model
        compiled = compile_model(model)
        self._contacts = ContactStage(store, compiled, key_prefix, cache_size, compress_state)
        self._accounts = (
            AccountStage(store, compiled, key_prefix, cache_size) if model.accounts is not None else None
        )
        self._topics = topics
        self.counters = Counters()
        self.handoff_observers: list[Callable[[dict[str, Any]], None]] = []

    async def process(self, batch: Sequence[SourceRecord]) -> None:
        """Process one batch completely: state committed and outputs acknowledged."""
        self.counters.records += len(batch)
        outputs: list[OutputRecord] = []
        events: list[PendingEvent] = []
        firmographics: dict[str, tuple[dict[str, Any], float]] = {}
        for record in batch:
            try:
                if record.topic == self._topics.accounts:
                    self._take_firmographics(record, firmographics)
                else:
                    event = decode_event(record, self._model.event_policy)
                    at = event.occurred_at.timestamp()
                    events.append(PendingEvent(record, event, contact_key_of(event), at))
                    self.clock.observe(at)
            except InvalidEvent as exc:
                outputs.append(dead_letter(record, exc, self._topics.dead_letters, "decode"))
                self.counters.dead_letters += 1

        contacts = ContactResult()
        await self._contacts.run(events, contacts, firmographics)
        accounts = AccountResult()
        if self._accounts is not None:
            snapshots = [(p.domain, p.snapshot) for p in contacts.snapshots]
            await self._accounts.run(snapshots, firmographics, contacts.accounts, accounts)

        deliveries = plan(contacts.entries + accounts.handoffs, self._topics, self._prefix)
        outputs.extend(deliveries.records)
        await self._sink.send_all(outputs)
        await self._timers.schedule(deliveries.timers)
        await self._store.ack(
            deliveries.acks + [p.outbox for p in contacts.snapshots if p.outbox is not None]
        )
        self._count(contacts, accounts)

    def _take_firmographics(
        self, record: SourceRecord, into: dict[str, tuple[dict[str, Any], float]]
    ) -> None:
        account = decode_firmographics(record, self._model.event_policy)
        if account is None:
            self.counters.tombstones += 1  # a deleted account: its state ages out by TTL
            return
        values = account.model_dump(mode="json", exclude_none=True, exclude={"type", "updated_at"})
        at = account.updated_at.timestamp()
        held = into.get(account.domain)
        if held is None or at >= held[1]:
            into[account.domain] = (values, at)
        self.counters.firmographics += 1

    def _count(self, contacts: ContactResult, accounts: AccountResult) -> None:
        counters = self.counters
        counters.applied += contacts.applied
        counters.duplicates += contacts.duplicates
        counters.links += contacts.links
        counters.identity_conflicts += contacts.identity_conflicts
        counters.conflicts += contacts.conflicts + accounts.conflicts
        counters.handoffs += len(contacts.new_handoffs)
        counters.lifecycle += len(contacts.lifecycle)
        counters.account_handoffs += len(accounts.new_handoffs)
        for rule in contacts.rules:
            counters.rules[rule] = counters.rules.get(rule, 0) + 1
        for handoff in contacts.new_handoffs + accounts.new_handoffs:
            for observer in self.handoff_observers:
                observer(handoff)
