"""The batch engine: decode -> contacts -> accounts -> emit, for one batch of records.

Used by the Kafka worker and by ``leadstream replay`` alike, so both decide identically.
Per batch: the contact stage (one pipelined load, each contact's timeline applied, one pipelined
compare-and-set commit), then the account stage (member snapshots queued and applied in event-time
order as far as the watermarks allow), contacts that must decide again with firmographics the
batch brought, then every handoff and dead letter is produced and awaited, then the delivered
outbox entries are acknowledged.

Idempotent under replay: each contact stores the last applied offset per source partition
(records at or below it are skipped) and its recent event ids (a producer's duplicates are
skipped); an account keeps one snapshot per member point, replaced only by a newer one. Nothing
decided is lost: handoffs, lifecycle events and member snapshots wait in the outbox of the record
that decided them until delivered. After a crash the unacknowledged records are consumed again,
which loads exactly the records whose outbox may still hold something, and delivers it again
(handoff ids are deterministic).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

from leadstream.config.model import ScoringModel
from leadstream.config.settings import KeyMismatch, Topics
from leadstream.engine.eventtime.clock import StreamClock
from leadstream.engine.eventtime.watermarks import BatchIsEverything, Watermarks
from leadstream.engine.input.dead_letters import dead_letter, redacted, suppressed_letter
from leadstream.engine.input.decode import (
    REKEYED_HEADER,
    EventLimits,
    contact_key_of,
    decode_event,
    decode_firmographics,
    key_mismatch,
)
from leadstream.engine.input.suppressions import Suppressions
from leadstream.engine.outbox import plan
from leadstream.engine.policy import Action, ErrorPolicy, default_policy
from leadstream.engine.ports import Sink
from leadstream.engine.records import OutputRecord, SourceRecord
from leadstream.engine.stages.account import AccountResult, AccountStage, Limits
from leadstream.engine.stages.contact import COMMIT_CHUNK, ContactResult, ContactStage, Incoming, PendingEvent
from leadstream.errors import InvalidEvent, StreamStopped
from leadstream.scoring import compile_model
from leadstream.scoring.epoch import epoch
from leadstream.scoring.timeline import Bounds
from leadstream.state.codec import Codec
from leadstream.state.keys import ACCOUNT_SHARDS, account_queue_key, suppression_key
from leadstream.state.port import StateStore, TimerIndex
from leadstream.state.pseudonyms import DEFAULT_SECRET

__all__ = ["REPORT_EVERY_S", "ROUNDS", "SWEEP_EVERY_S", "Counters", "ScoringPipeline"]

logger = logging.getLogger(__name__)
ROUNDS: Final = 3  # contact stage, accounts, contacts that a new firmographics version concerns, accounts
SWEEP_EVERY_S: Final = 1.0
REPORT_EVERY_S: Final = 30.0


@dataclass(slots=True)
class Counters:
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    skipped: int = 0
    handoffs: int = 0
    account_handoffs: int = 0
    lifecycle: int = 0
    firmographics: int = 0
    tombstones: int = 0
    links: int = 0
    identity_conflicts: int = 0
    conflicts: int = 0
    replays: int = 0
    late_snapshots: int = 0
    mis_keyed: int = 0  # records keyed by another profile than their body names
    rules: dict[str, int] = field(default_factory=dict)
    by_topic: dict[str, int] = field(default_factory=dict)  # records consumed per input topic
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    batches: int = 0


class ScoringPipeline:
    def __init__(
        self,
        store: StateStore,
        sink: Sink,
        model: ScoringModel,
        topics: Topics,
        key_prefix: str = "ls",
        timers: TimerIndex | None = None,
        cache_size: int = 10_000,
        cache_bytes: int | None = None,
        codec: Codec = "none",
        watermarks: Watermarks | None = None,
        bounds: Bounds | None = None,
        limits: Limits | None = None,
        key_mismatch: KeyMismatch = "score",
        on_error: ErrorPolicy = default_policy,
        pseudonym_secret: bytes = DEFAULT_SECRET,
        redact_dead_letters: bool = False,
    ) -> None:
        self._secret = pseudonym_secret
        self._redact = redact_dead_letters
        timers = timers if timers is not None else cast(TimerIndex, store)
        self.clock = StreamClock()
        self._store = store
        self._timers = timers
        self._prefix = key_prefix
        self._suppressions = Suppressions(store, suppression_key(key_prefix), pseudonym_secret)
        self._sink = sink
        self._model = model
        self.watermarks: Watermarks = watermarks or BatchIsEverything()
        self._stage_options = (cache_size, cache_bytes, codec, bounds, limits)
        self.use_model(model)
        self._topics = topics
        self._key_mismatch = key_mismatch
        self._on_error = on_error
        self.counters = Counters()
        # A batch and a tick never interleave: progress is published only for records whose
        # account snapshots are committed.
        self._busy = asyncio.Lock()
        self._swept_to, self._swept_at = float("-inf"), 0.0
        # At most this many accounts per sweep (None: every due one), or as many as the last
        # batch had records if more (each event makes about one account point: the sweeps keep
        # pace with the input), the earliest due first; the rest wait for the next sweep, which
        # ``sweep_pending`` asks to run soon. A worker loop that can run it right after its next
        # batch sets this, so no sweep holds a batch (and its MQLs) up for long.
        self.sweep_chunk: int | None = None
        self.sweep_pending = False
        # Contacts decided between two sends of their commits: Redis commits one chunk while the
        # next is decided (bench.overlap measures it against one send a batch).
        self.commit_chunk = COMMIT_CHUNK
        self._last_batch = 0
        self._reported_at = time.monotonic()
        self.handoff_observers: list[Callable[[dict[str, Any]], None]] = []
        # Told (records, seconds) after each batch: the metrics' batch duration histogram.
        self.batch_observers: list[Callable[[int, float], None]] = []
        # How a record becomes an event; a backtest shares one memo across its models.
        self.decode: Callable[[SourceRecord, Any], Any] = decode_event

    @property
    def model(self) -> ScoringModel:
        return self._model

    def use_model(self, model: ScoringModel) -> None:
        """Score with ``model`` from the next batch on (a promotion or a rollback: called between
        batches, under :attr:`busy`). State is the model's to read as it is: contacts keep their
        history, and each handoff carries the version that decided it."""
        cache_size, cache_bytes, codec, bounds, limits = self._stage_options
        compiled = compile_model(model)
        self._model = model
        self._event_limits = EventLimits.of(model.event_policy)  # not the stages' limits above
        self._accounts = (
            AccountStage(
                self._store, self._timers, compiled, self._prefix, cache_size, limits, codec, cache_bytes
            )
            if model.accounts is not None
            else None
        )
        self._contacts = ContactStage(
            self._store,
            compiled,
            self._prefix,
            cache_size,
            codec,
            bounds,
            self._accounts.decoded if self._accounts is not None else None,
            cache_bytes,
        )

    async def process(self, batch: Sequence[SourceRecord]) -> None:
        """Process one batch completely: state committed and outputs acknowledged."""
        async with self._busy:
            started = time.perf_counter()
            # No cyclic collection while a batch is scored: the engine makes next to no cyclic
            # garbage (10 objects in 125k events) but a batch allocates and frees millions of
            # containers, and every young collection walked those still alive. Paused, the next
            # one walks only what outlives the batch: on bench.floor's 125k events, 35-36
            # collections taking 1.8-1.9 s became 3-4 taking 0.3 s (engine 107-115 -> 97-100 µs
            # an event, alternating runs in one process).
            collecting = gc.isenabled()
            gc.disable()
            try:
                await self._process(batch)
            except BaseException:
                self.watermarks.discard()
                raise
            finally:
                if collecting:
                    gc.enable()
            elapsed = time.perf_counter() - started
            for observer in self.batch_observers:
                observer(len(batch), elapsed)

    @property
    def busy(self) -> asyncio.Lock:
        """Held while a batch is processed: other work on the same state (the timer service)
        takes it too, so an outbox entry is never delivered by two tasks at once."""
        return self._busy

    async def tick(self) -> int:
        """Between batches: publish this process's progress (an idle partition must not hold the
        other workers' accounts back) and apply the accounts the stream has reached."""
        async with self._busy:
            await self.watermarks.publish()
            return await self.release_accounts()

    async def _process(self, batch: Sequence[SourceRecord]) -> None:
        counters = self.counters
        counters.records += len(batch)
        self._last_batch = len(batch)
        counters.batches += 1
        by_topic = counters.by_topic
        for record in batch:
            by_topic[record.topic] = by_topic.get(record.topic, 0) + 1
        outputs: list[OutputRecord] = []
        events: list[PendingEvent] = []
        incoming: Incoming = {}
        event_times: dict[str, float] = {}
        offsets: dict[str, int] = {}
        # Read once a batch: settings are a pydantic object (a read is a generic attribute lookup).
        accounts_topic = self._topics.accounts
        limits = self._event_limits
        for record in batch:
            partition = f"{record.topic}:{record.partition}"
            offsets[partition] = max(record.offset + 1, offsets.get(partition, 0))
            try:
                if record.topic == accounts_topic:
                    at = self._take_firmographics(record, incoming, limits)
                else:
                    event = self.decode(record, limits)
                    expected = key_mismatch(record, event)
                    if expected is not None:
                        rekeyed = self._mis_keyed(record, expected)
                        if rekeyed is not None:
                            outputs.append(rekeyed)
                            continue  # scored when it comes back, on its contact's partition
                    at = epoch(event.occurred_at)
                    events.append(PendingEvent(record, event, contact_key_of(event), at))
            except InvalidEvent as exc:
                self._invalid(record, exc, outputs)
                continue
            if at is not None:
                event_times[partition] = max(at, event_times.get(partition, at))
                self.clock.observe(at)

        events = await self._without_suppressed(events, outputs)
        self._contacts.commit_chunk = self.commit_chunk
        contacts = ContactResult()
        await self._contacts.run(events, contacts, incoming)
        self.watermarks.observe(event_times, offsets)
        bound = await self.watermarks.bound()
        self._contacts.read_through = bound.upper  # for the next batch's journals
        results, accounts = [contacts], AccountResult()
        if self._accounts is not None:
            stream_time = max(self.clock.stream_time, bound.stream_time)
            await self._accounts.run(contacts.snapshots, incoming, bound, stream_time, accounts)
            requests = accounts.requests
            for _round in range(ROUNDS - 1):
                if not requests:
                    break
                # Members of accounts that got a firmographics version decide again with it.
                again, more = ContactResult(), AccountResult()
                await self._contacts.run([], again, incoming, requests)
                await self._accounts.run(again.snapshots, {}, bound, stream_time, more)
                results.append(again)
                _merge(accounts, more)
                requests = more.requests - requests
        self.watermarks.settle()
        await self.watermarks.publish()
        await self._deliver(results, accounts, outputs)
        self._report()

    async def _without_suppressed(
        self, events: list[PendingEvent], outputs: list[OutputRecord]
    ) -> list[PendingEvent]:
        """Events of people erased by `leadstream forget` are dropped to the dead letters (reason
        ``suppressed``, nothing of the event copied); the list is checked once per batch."""
        if not events:
            return events
        suppressions = self._suppressions
        await suppressions.refresh()
        if not suppressions:
            return events
        kept = []
        for pending in events:
            e = pending.event
            names = suppressions.erased_names(e.contact_id, e.email, e.anonymous_id)
            if names is None:
                kept.append(pending)
                continue
            outputs.append(suppressed_letter(pending.record, self._topics.dead_letters, names[0]))
            self.counters.dead_letters += 1
            reasons = self.counters.dead_letter_reasons
            reasons["suppressed"] = reasons.get("suppressed", 0) + 1
        return kept

    def _report(self) -> None:
        """Now and then, what the pipeline did: an operator's first look at a running worker."""
        now = time.monotonic()
        if now - self._reported_at < REPORT_EVERY_S:
            return
        self._reported_at = now
        c = self.counters
        logger.info(
            "so far: %d records, %d applied, %d duplicates skipped, %d dead letters, "
            "%d keyed by another profile, %d MQL and %d buying-group handoffs, "
            "%d contacts applied again for late inputs, %d account snapshots late, "
            "%d compare-and-set conflicts",
            c.records,
            c.applied,
            c.duplicates,
            c.dead_letters,
            c.mis_keyed,
            c.handoffs,
            c.account_handoffs,
            c.replays,
            c.late_snapshots,
            c.conflicts,
        )

    async def timer_time(self, wall: float) -> float:
        """Up to when timers may fire: stream time (the wall clock on a quiet stream), and no
        later than every input partition that still holds unread records has been read."""
        bound = await self.watermarks.bound()
        return min(self.clock.now(wall), bound.upper)

    async def release_accounts(self) -> int:
        """Apply the waiting points of accounts the stream has now reached (this process's shards
        of the waiting index); return the buying-group handoffs that decided."""
        if self._accounts is None:
            return 0
        bound = await self.watermarks.bound()
        # The stream's time as every worker saw it: one restarted a moment ago has seen nothing yet.
        stream_time = max(self.clock.stream_time, bound.stream_time)
        limit = min(bound.upper, stream_time)
        now = time.monotonic()
        if limit <= self._swept_to and now - self._swept_at < SWEEP_EVERY_S:
            # The batches apply their own accounts' points; only a watermark that moved (or, now
            # and then, the passing of the grace time) can release more.
            return 0
        self._swept_to, self._swept_at = limit, now
        swept: dict[str, float] = {}
        owned = [
            account_queue_key(self._prefix, shard)
            for shard in range(ACCOUNT_SHARDS)
            if self.watermarks.owns_shard(shard, ACCOUNT_SHARDS)
        ]
        for due in (await self._timers.due_in(owned, limit, 500)).values():
            swept.update(due)
        swept = self._accounts.worth_sweeping(swept, bound)
        chunk = max(self.sweep_chunk, self._last_batch) if self.sweep_chunk is not None else len(swept)
        self.sweep_pending = len(swept) > chunk
        if self.sweep_pending:
            swept = dict(sorted(swept.items(), key=lambda item: item[1])[:chunk])
            self._swept_to = float("-inf")  # the next call sweeps on, whether the bound moved or not
        if not swept:
            return 0
        accounts = AccountResult()
        await self._accounts.run([], {}, bound, stream_time, accounts, swept)
        await self._deliver([], accounts, [])
        await self._accounts.reindex(accounts)
        return len(accounts.new_handoffs)

    async def _deliver(
        self, contacts: list[ContactResult], accounts: AccountResult, outputs: list[OutputRecord]
    ) -> None:
        # A contact or account loaded again in a later round of the batch still holds the entries
        # an earlier round committed: each is delivered once.
        entries = {(k, e): v for result in contacts for k, e, v in result.entries}
        entries.update({(k, e): v for k, e, v in accounts.handoffs})
        deliveries = plan([(k, e, v) for (k, e), v in entries.items()], self._topics, self._prefix)
        outputs.extend(deliveries.records)
        await self._sink.send_all(outputs)
        await self._timers.schedule(deliveries.timers)
        await self._store.ack(deliveries.acks + accounts.acks)
        for result in contacts:
            self._count(result)
        self.counters.account_handoffs += len(accounts.new_handoffs)
        self.counters.late_snapshots += accounts.late
        self.counters.conflicts += accounts.conflicts
        for handoff in [h for result in contacts for h in result.new_handoffs] + accounts.new_handoffs:
            for observer in self.handoff_observers:
                observer(handoff)

    def _invalid(self, record: SourceRecord, exc: InvalidEvent, outputs: list[OutputRecord]) -> None:
        """An event that cannot be decoded or validated: as the error policy says."""
        action = self._on_error(exc, record)
        if action is Action.DEAD_LETTER:
            outputs.append(self._private(dead_letter(record, exc, self._topics.dead_letters, "decode")))
            self.counters.dead_letters += 1
            reasons = self.counters.dead_letter_reasons
            reasons[exc.reason] = reasons.get(exc.reason, 0) + 1
        elif action is Action.SKIP:
            self.counters.skipped += 1
        elif action is Action.RETRY:
            raise exc  # the batch-level policy decides how the batch is tried again
        else:
            raise StreamStopped(
                f"stopped on an invalid event at {record.topic}:{record.partition}@{record.offset}: {exc}"
            ) from exc

    async def dead_letter_batch(self, batch: Sequence[SourceRecord], exc: BaseException) -> None:
        """Every record of a batch to the dead letters (the error policy's choice for a batch that
        cannot be processed), acknowledged by the topic before the batch is."""
        error = InvalidEvent("processing", f"{type(exc).__name__}: {exc}")
        await self._sink.send_all(
            [self._private(dead_letter(r, error, self._topics.dead_letters, "process")) for r in batch]
        )
        self.counters.dead_letters += len(batch)

    def _private(self, letter: OutputRecord) -> OutputRecord:
        return redacted(letter, self._secret) if self._redact else letter

    def _mis_keyed(self, record: SourceRecord, expected: str) -> OutputRecord | None:
        """A record keyed by another profile than its body names, by ``LEADSTREAM_KEY_MISMATCH``:
        scored where it lands (None), produced again, unchanged, under the right key (the record
        to send), or dead-lettered (raises). Scored where it lands, it is out of order with its
        contact's other events (the contact's journal takes it in) but in order on its partition,
        so the watermarks wait for it; produced again, it is read after every partition moved
        past it, and reaches its account late."""
        key = (record.key or b"").decode("utf-8", "replace")
        mode = self._key_mismatch
        if mode == "dead_letter" or (mode == "rekey" and any(n == REKEYED_HEADER for n, _ in record.headers)):
            raise InvalidEvent(
                "key",
                f"the record's key {key!r} names another profile than its body ({expected!r}): key "
                "records by the contact id, else email:<address>, else anon:<id>, so each contact's "
                "events stay in order on one partition",
            )
        self.counters.mis_keyed += 1
        if self.counters.mis_keyed in (1, 10, 100) or self.counters.mis_keyed % 1000 == 0:
            logger.warning(
                "%d records so far were keyed by another profile than their body names (%s:%s@%s: key "
                "%r, body %r); %s: fix the producer's key",
                self.counters.mis_keyed,
                record.topic,
                record.partition,
                record.offset,
                key,
                expected,
                "scored where they land" if mode == "score" else "produced again under the right key",
            )
        if mode == "score":
            return None
        headers = (*record.headers, (REKEYED_HEADER, record.key or b""))
        return OutputRecord(record.topic, expected.encode(), record.value, headers)

    def _take_firmographics(self, record: SourceRecord, into: Incoming, limits: EventLimits) -> float | None:
        account = decode_firmographics(record, limits)
        if account is None:
            self.counters.tombstones += 1  # a deleted account: its state ages out by TTL
            return None
        values = account.model_dump(mode="json", exclude_none=True, exclude={"type", "updated_at"})
        at = account.updated_at.timestamp()
        record_time = record.timestamp_ms / 1000.0 if record.timestamp_ms is not None else None
        into.setdefault(account.domain, []).append((at, values, record_time))
        self.counters.firmographics += 1
        return at

    def _count(self, contacts: ContactResult) -> None:
        counters = self.counters
        counters.applied += contacts.applied
        counters.duplicates += contacts.duplicates
        counters.links += contacts.links
        counters.identity_conflicts += contacts.identity_conflicts
        counters.conflicts += contacts.conflicts
        counters.replays += contacts.replays
        counters.handoffs += len(contacts.new_handoffs)
        counters.lifecycle += len(contacts.lifecycle)
        for rule in contacts.rules:
            counters.rules[rule] = counters.rules.get(rule, 0) + 1


def _merge(into: AccountResult, more: AccountResult) -> None:
    into.handoffs += more.handoffs
    into.new_handoffs += more.new_handoffs
    into.acks += more.acks
    into.conflicts += more.conflicts
    into.applied += more.applied
    into.late += more.late
    into.requests |= more.requests
