"""The scoring worker as a plain confluent-kafka loop: the alternative to the faust agent.

librdkafka fetches and decodes in C threads; the loop hands batches of raw records to the same
pipeline the faust agent uses, commits a batch's offsets only after the pipeline returned (state
committed, outputs acknowledged), and ticks the timer service between batches. Selected with
``LEADSTREAM_WORKER_ENGINE=confluent``.

Partitions are assigned by range: partition N of every input topic goes to the same worker, so
a contact's page views, forms, trials and webinars (keyed alike) are read by one worker, in step
(kafka/in_step.py). cooperative-sticky, which moves fewer partitions on a rebalance, balances
each topic's partitions without regard to the others': with two workers it gave one the forms
and the other the webinars, and an MQL was published at a form while the webinar before it was
still unread on the other worker. With ``LEADSTREAM_INSTANCE_ID`` membership is static: a worker
restarted within the session timeout gets its partitions back with no rebalance at all. Every
assignment, revocation and stall is logged.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from redis.exceptions import RedisError

from leadstream.config.settings import Settings
from leadstream.engine.eventtime.watermarks import PartitionProgress
from leadstream.engine.input.dead_letters import dead_letter, redacted
from leadstream.engine.ports import BatchProcessor, Sink
from leadstream.engine.records import OutputRecord, SourceRecord
from leadstream.errors import BrokerUnavailable, InvalidEvent
from leadstream.kafka.alignment import EventTimeAlignment, keep_in_step
from leadstream.kafka.clients import make_consumer
from leadstream.kafka.feed import KafkaFeed
from leadstream.kafka.in_step import InStep, held_limit
from leadstream.kafka.rebalances import count_rebalance
from leadstream.state.progress import StateProgress
from leadstream.state.pseudonyms import pseudonym_secret

__all__ = [
    "ASSIGNMENT_STRATEGY",
    "STALL_S",
    "RejoinBudget",
    "StallWatch",
    "consumer_config",
    "is_fatal",
    "next_batch",
    "run_loop",
    "source_record",
]

logger = logging.getLogger(__name__)
STALL_S = 10.0
MAX_REJOINS = 5  # consumers replaced within REJOIN_WINDOW_S of each other before the worker gives up
REJOIN_WINDOW_S = 600.0


# Co-partitioned: partition N of every input topic to one worker (see the module doc). Eager: a
# rebalance revokes every partition and assigns them again (the same ones, mostly).
ASSIGNMENT_STRATEGY = "range"


def consumer_config(settings: Settings) -> dict[str, Any]:
    """The worker's consumer, beyond what every client has (kafka/clients.py)."""
    config: dict[str, Any] = {
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": ASSIGNMENT_STRATEGY,
        "session.timeout.ms": int(settings.session_timeout_s * 1000),
        "heartbeat.interval.ms": max(1000, int(settings.session_timeout_s * 250)),
        "fetch.min.bytes": 1,
        "fetch.wait.max.ms": settings.fetch_wait_ms,
        # Prefetched records: 4 MB is about five seconds of a worker's input. librdkafka's
        # defaults (a 64 MB queue, fetches of up to 50 MB, 1 MB a partition) only added to the
        # worker's memory: a consumer at a worker's pace held ~75 MB with them (16 MB queue),
        # ~26 MB with these, and was served as fast.
        "queued.max.messages.kbytes": 4096,
        # ...but every partition shares that queue, and a fetch that overfills it backs each
        # partition off for a second (librdkafka #1854, #2853): with fetches of 8 MB at 256 KB a
        # partition, the same 32 partitions filled every fetch and the rest of a worker's 40 were
        # not read for ten minutes and more of a backlog. Fetches of 32 KB a partition, 2 MB in
        # all, stay under the queue's limit for 64 partitions, and a partition backed off looks
        # again after 50 ms: every partition is read, and kafka/alignment.py keeps them in step.
        "fetch.max.bytes": 2 * 1024 * 1024,
        "max.partition.fetch.bytes": 32 * 1024,
        "fetch.queue.backoff.ms": 50,
    }
    if settings.instance_id:
        config["group.instance.id"] = settings.instance_id
    return config


async def run_loop(
    settings: Settings,
    processor: BatchProcessor,
    ticks: list[tuple[float, Any]],
    watermarks: Any,
    errors: Sink,
    state: StateProgress | None = None,
) -> None:
    """Consume until SIGTERM; between batches run each ``(interval_s, tick)`` when it is due.
    ``state``: where the state in Redis stands (state/progress.py): each partition assigned
    starts at the lower of its committed offset and its mark, and each batch's offsets are
    marked before they are committed. StateLost (Redis came back without the state) ends the
    loop without committing anything more."""
    # The next batch is fetched while this one is scored, so a revocation can arrive mid-batch:
    # it waits until the batch is committed, and the partitions move only then (a handoff decided
    # in this batch is not published again by their next owner).
    # One thing at a time on the consumer: fetch, score, commit. The rebalance callbacks run inside
    # consume(), so a revocation happens between batches, never while one is in flight (its
    # handoffs are not published again by the partitions' next owner); librdkafka keeps fetching
    # into its own queue in the background meanwhile.
    assigned: set[tuple[str, int]] = set()
    # Offsets processed but not committed for certain: a commit during a rebalance fails, and an
    # idle partition would otherwise keep showing lag it does not have. Commits are asynchronous
    # (a synchronous one held every batch for a round trip to the group coordinator, ~6 ms); an
    # entry leaves when the broker confirms it (on_commit, served inside consume()).
    uncommitted: dict[tuple[str, int], int] = {}
    # Records consumed but held back for a later batch (kafka/in_step.py); never committed.
    in_step = InStep(
        settings.in_step_slack_s, held_limit(settings.batch_max), idle_s=settings.in_step_idle_ms / 1000
    )
    paused: set[tuple[str, int]] = set()  # by alignment or while their records wait in in_step

    def on_assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        assigned.update((tp.topic, tp.partition) for tp in partitions)  # all of them (eager)
        # librdkafka keeps a partition's pause across an eager rebalance that gives it back: one
        # paused by alignment or in_step before it (whose state the revocation cleared here)
        # would never be fetched again. Assigned, then resumed, they all start unpaused.
        if state is not None:
            _start_at_marks(consumer, partitions, state)
        consumer.assign(partitions)
        consumer.resume(partitions)
        count_rebalance("assigned")
        logger.info("partitions assigned: %s", _names(partitions))

    def on_commit(error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is not None:
            logger.warning("offset commit failed (%s); committing again after the next batch", error)
            return
        for tp in partitions:
            key = (tp.topic, tp.partition)
            if tp.error is None and uncommitted.get(key) == tp.offset:
                del uncommitted[key]

    def on_revoke(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # What was processed of them is committed before their next owner starts reading.
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        _commit(consumer, {k: o for k, o in uncommitted.items() if k in revoked}, asynchronous=False)
        for key in revoked:
            uncommitted.pop(key, None)
        if state is not None:
            state.release(revoked)
        assigned.difference_update((tp.topic, tp.partition) for tp in partitions)
        in_step.drop((tp.topic, tp.partition) for tp in partitions)
        paused.difference_update((tp.topic, tp.partition) for tp in partitions)  # reassigned unpaused
        count_rebalance("revoked")
        logger.info("partitions revoked: %s", _names(partitions))

    def on_lost(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:  # no longer ours to commit: their next owner reads them again
            uncommitted.pop((tp.topic, tp.partition), None)
        if state is not None:
            state.release((tp.topic, tp.partition) for tp in partitions)
        assigned.difference_update((tp.topic, tp.partition) for tp in partitions)
        in_step.drop((tp.topic, tp.partition) for tp in partitions)
        paused.difference_update((tp.topic, tp.partition) for tp in partitions)  # reassigned unpaused
        count_rebalance("lost")
        logger.warning("partitions lost (session expired): %s", _names(partitions))

    def joined() -> Consumer:
        made = make_consumer(
            settings, settings.consumer_group, **consumer_config(settings), on_commit=on_commit
        )
        made.subscribe(
            list(settings.topics.inputs()), on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost
        )
        return made

    consumer = joined()
    rejoins = RejoinBudget()
    feed = KafkaFeed(settings, lambda: list(assigned))
    watermarks.attach(feed)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    due = [0.0] * len(ticks)
    stall = StallWatch(feed)
    alignment = EventTimeAlignment(settings.partition_alignment_s)
    logger.info(
        "confluent worker consuming %s (group %s%s)",
        ", ".join(settings.topics.inputs()),
        settings.consumer_group,
        f", static member {settings.instance_id}" if settings.instance_id else "",
    )

    try:
        while not stopping.is_set():
            messages = await loop.run_in_executor(
                None, next_batch, consumer, settings.batch_max, settings.batch_within_s
            )
            broken: list[Message] = []
            failed = next((e for m in messages if (e := m.error()) is not None and is_fatal(e)), None)
            if failed is not None:
                # The consumer is done for (a static member fenced after its group coordinator
                # failed over, say): a new one joins with the same identity. Nothing of this
                # batch was scored; what was not committed is read again, and nothing doubles.
                attempt = rejoins.spend(time.monotonic())
                if attempt is None:
                    raise BrokerUnavailable(
                        f"the consumer failed for good {MAX_REJOINS + 1} times within "
                        f"{REJOIN_WINDOW_S:.0f} s of each other, last: {failed.str()}"
                        + _twin_hint(settings.instance_id)
                    )
                logger.error(
                    "the consumer failed for good (%s); closing it and joining the group again "
                    "with a new one (%d of %d within %.0f s; two workers with the same "
                    "LEADSTREAM_INSTANCE_ID fence each other like this)",
                    failed,
                    attempt,
                    MAX_REJOINS,
                    REJOIN_WINDOW_S,
                )
                _close_quietly(consumer)
                if state is not None:
                    state.release(assigned)
                assigned.clear()
                uncommitted.clear()
                in_step.clear()
                paused.clear()
                await asyncio.sleep(min(30.0, 2.0**attempt))
                consumer = joined()
                alignment = EventTimeAlignment(settings.partition_alignment_s)  # it starts unpaused
                continue
            consumed: list[SourceRecord] = []
            for message in messages:
                error = message.error()
                if error is None:
                    consumed.append(source_record(message))
                elif message.topic() is not None and (message.offset() or -1) >= 0:
                    broken.append(message)  # a record the client could not read: dead-letter it
                else:
                    logger.warning("consumer: %s", error)
            await feed.refresh()
            batch = in_step.take(consumed, watermarks.own_progress(), time.monotonic())
            if broken:
                await _dead_letter(broken, settings, errors)
            if batch:
                await processor.process(batch)
            unreadable = [source_record(m) for m in broken]
            done = batch + unreadable
            for record in done:
                key = (record.topic, record.partition)
                uncommitted[key] = max(record.offset + 1, uncommitted.get(key, 0))
            for key, first in in_step.first_held().items():  # not past a record still held
                if key in uncommitted:
                    uncommitted[key] = min(uncommitted[key], first)
            processed = {k: o for k, o in uncommitted.items() if k in assigned}
            if state is not None:  # marked before committed: a partition never starts past its mark
                await _mark(loop, state, processed)
            _commit(consumer, processed)
            stall.observe(consumed + unreadable)
            _align(consumer, alignment, in_step, in_step.reading(watermarks.own_progress()), paused)
            for index, (interval_s, tick) in enumerate(ticks):
                if time.monotonic() >= due[index]:
                    again = await tick(time.time())  # True: more to do, after the next batch
                    due[index] = time.monotonic() + (0.0 if again is True else interval_s)
        # A clean stop: what was processed is committed for certain before the consumer leaves.
        _commit(consumer, {k: o for k, o in uncommitted.items() if k in assigned}, asynchronous=False)
    except KafkaException as exc:
        raise BrokerUnavailable(f"consumer failed: {exc}") from exc
    finally:
        consumer.close()


class RejoinBudget:
    """How many times in a row the worker may replace a consumer that failed for good. Failures
    more than ``window_s`` apart are not "in a row": a fence a day does not add up to a stop,
    while two workers sharing one instance id, fencing each other every few seconds, do."""

    def __init__(self, limit: int = MAX_REJOINS, window_s: float = REJOIN_WINDOW_S) -> None:
        self._limit = limit
        self._window_s = window_s
        self._spent = 0
        self._last: float | None = None

    def spend(self, now: float) -> int | None:
        """The attempt this one is (1 for the first in a row), or None when none is left."""
        if self._last is not None and now - self._last > self._window_s:
            self._spent = 0
        self._last = now
        self._spent += 1
        return self._spent if self._spent <= self._limit else None


def _twin_hint(instance_id: str | None) -> str:
    """What a static member's repeated fences most likely mean (none without static membership)."""
    if not instance_id:
        return ""
    return (
        ". If it was fenced by a consumer with the same group.instance.id, another worker runs "
        f"with LEADSTREAM_INSTANCE_ID={instance_id}: give each its own"
    )


def is_fatal(error: KafkaError) -> bool:
    """Whether a consume error leaves the consumer unusable. librdkafka reports a fatal error as
    an event of code ``_FATAL`` whose own fatal flag is not set (the cause is in its text): one
    check of the flag alone let a fenced worker poll a dead consumer for ever."""
    return bool(error.fatal() or error.code() == KafkaError._FATAL)


def _close_quietly(consumer: Consumer) -> None:
    try:
        consumer.close()
    except (KafkaException, RuntimeError) as exc:
        logger.warning("closing the failed consumer: %s", exc)


def next_batch(consumer: Consumer, limit: int, within_s: float) -> list[Message]:
    """Up to ``limit`` records: whatever is queued, at once; only when nothing is, up to
    ``within_s`` for the first one and whatever came with it. A batch never waits for more
    records once some are here (``consume(limit, within_s)`` would, for the whole ``within_s``,
    at any load short of ``limit`` records: that wait was a third of a handoff's latency at half
    load); under load the previous batch's scoring time is what fills the next one."""
    messages: list[Message] = consumer.consume(limit, 0)
    if messages:
        return messages
    first = consumer.poll(within_s)
    if first is None:
        return []
    return [first, *consumer.consume(limit - 1, 0)] if limit > 1 else [first]


class StallWatch:
    """Says when the worker consumes nothing while its partitions hold unread records, and when
    it moves again (a rebalance waiting for a dead member, an unreachable partition leader)."""

    def __init__(self, feed: KafkaFeed) -> None:
        self._feed = feed
        self._last_progress = time.monotonic()
        self._stalled_since: float | None = None
        self._positions: dict[tuple[str, int], int] = {}

    def observe(self, records: list[SourceRecord]) -> None:
        now = time.monotonic()
        for record in records:
            key = (record.topic, record.partition)
            self._positions[key] = max(record.offset + 1, self._positions.get(key, 0))
        if records:
            if self._stalled_since is not None:
                logger.warning("consuming again after a %.1f s stall", now - self._stalled_since)
                self._stalled_since = None
            self._last_progress = now
            return
        if self._stalled_since is None and now - self._last_progress > STALL_S and self._waiting():
            self._stalled_since = self._last_progress
            logger.warning(
                "no records for %.0f s while %d assigned partitions hold unread records (assigned: %s); "
                "a rebalance may be waiting for a member that died (session timeout), or a partition "
                "leader is unreachable",
                now - self._last_progress,
                self._waiting(),
                ", ".join(f"{t}:{p}" for t, p in self._feed.assigned()) or "none",
            )

    def _waiting(self) -> int:
        feed, count = self._feed, 0
        for topic, partition in feed.assigned():
            high = feed.high_watermark(topic, partition)
            start = feed.starting_offset(topic, partition)
            position = max(self._positions.get((topic, partition), -1), -1 if start is None else start)
            if high is not None and position >= 0 and high[0] > position:
                count += 1
        return count


async def _dead_letter(messages: list[Any], settings: Settings, errors: Sink) -> None:
    secret = pseudonym_secret(settings)
    records = [
        (redacted if settings.dead_letter_redact else _as_is)(
            dead_letter(
                SourceRecord(m.topic(), m.partition(), m.offset(), m.value(), m.key()),
                InvalidEvent(
                    "unreadable",
                    f"the consumer could not read this record ({m.error()}): check the producer's "
                    "compression codec (gzip, snappy, lz4 and zstd are read) and record format",
                ),
                settings.topics.dead_letters,
                "consume",
            ),
            secret,
        )
        for m in messages
    ]
    for message in messages:
        logger.error(
            "unreadable record at %s:%s@%s (%s): dead-lettered",
            message.topic(),
            message.partition(),
            message.offset(),
            message.error(),
        )
    await errors.send_all(records)


def _align(
    consumer: Consumer,
    alignment: EventTimeAlignment,
    in_step: InStep,
    progress: list[PartitionProgress],
    paused: set[tuple[str, int]],
) -> None:
    """Pause the partitions kafka/alignment.py keeps from running ahead and those whose records
    wait in kafka/in_step.py (fetching more of them only adds to the wait: the fetches go to the
    partitions the others wait for); resume the rest. ``paused``: what is paused now, kept up to
    date. A partition revoked meanwhile is not ours to pause; a new assignment starts unpaused."""
    keep_in_step(alignment, progress, lambda _new: None, lambda _freed: None)  # plans, and says so
    wanted = {(t, int(p)) for t, p in (n.rsplit(":", 1) for n in alignment.paused)} | in_step.waiting()
    for apply, changed in ((consumer.pause, wanted - paused), (consumer.resume, paused - wanted)):
        if not changed:
            continue
        partitions = [TopicPartition(t, p) for t, p in sorted(changed)]
        try:
            apply(partitions)
        except KafkaException as exc:
            logger.debug("could not %s %s: %s", apply.__name__, _names(partitions), exc)
    paused.clear()
    paused.update(wanted)


def _start_at_marks(consumer: Consumer, partitions: list[TopicPartition], state: StateProgress) -> None:
    """Each partition whose mark is below its committed offset (or that has none) starts at its
    mark: the state in Redis has not seen the records after it (state/progress.py)."""
    try:
        marks = state.marks()
    except RedisError as exc:
        # Redis is down: the committed offsets it is. Should it come back without the state, the
        # store's first connection says so (StateLost) and the worker starts over from the marks.
        logger.error("could not read the partitions' marks (%s); starting at the committed offsets", exc)
        return
    marked = [
        TopicPartition(tp.topic, tp.partition) for tp in partitions if (tp.topic, tp.partition) in marks
    ]
    if not marked:
        return
    try:
        committed = {(c.topic, c.partition): c.offset for c in consumer.committed(marked, timeout=10)}
    except KafkaException as exc:
        # Unknown: start at the marks. At worst records whose effects are in Redis are read again,
        # which processing makes harmless; past a mark would lose them.
        logger.warning("could not read the committed offsets (%s); starting at the marks", exc)
        committed = {}
    rewound = []
    for tp in partitions:
        key = (tp.topic, tp.partition)
        mark = marks.get(key)
        if mark is not None and (committed.get(key, -1) < 0 or mark < committed[key]):
            tp.offset = mark
            rewound.append(f"{tp.topic}:{tp.partition}@{mark}")
    if rewound:
        logger.warning(
            "reading again from where the state in Redis stands (its marks are behind the committed "
            "offsets): %s",
            ", ".join(rewound),
        )


async def _mark(
    loop: asyncio.AbstractEventLoop, state: StateProgress, offsets: dict[tuple[str, int], int]
) -> None:
    try:
        await loop.run_in_executor(None, state.record, offsets)
    except RedisError as exc:
        # Only a later start reads them: one behind reads a few records again, which is harmless.
        logger.warning(
            "could not mark the partitions' progress in Redis (%s); marking after the next batch", exc
        )


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}:{tp.partition}" for tp in partitions) or "none"


def _commit(consumer: Consumer, offsets: dict[tuple[str, int], int], asynchronous: bool = True) -> None:
    """Commit processed offsets. One that fails (a rebalance in progress) stays in the loop's
    ``uncommitted`` and is committed again after the next batch. A partition revoked meanwhile is
    its next owner's to consume again, which processing makes harmless (watermarks,
    compare-and-set)."""
    if not offsets:
        return
    try:
        listed = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        if asynchronous:
            consumer.commit(offsets=listed, asynchronous=True)
        else:
            consumer.commit(offsets=listed, asynchronous=False)
    except KafkaException as exc:
        if exc.args and exc.args[0].code() == KafkaError._NO_OFFSET:
            return
        logger.warning("offset commit failed (%s); committing again after the next batch", exc)


def source_record(message: Any) -> SourceRecord:
    """A consumed confluent-kafka message as the engine reads it."""
    kind, stamp = message.timestamp()
    return SourceRecord(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        value=message.value(),
        key=message.key(),
        timestamp_ms=stamp if kind != 0 else None,
        headers=tuple((k, v or b"") for k, v in (message.headers() or ())),
    )


def _as_is(letter: OutputRecord, _secret: bytes) -> OutputRecord:
    return letter
