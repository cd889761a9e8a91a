"""Batches of a faust stream, each taken as soon as the pipeline is free for it.

faust's ``Stream.take_events(max, within)`` waits up to ``within`` for ``max`` events after every
batch and holds the stream while a batch is processed: short of ``max`` events per window, every
batch waits the whole window (at half load an MQL waited ~140 ms at the median for it). Here the
stream keeps being read while a batch is processed, and what arrived meanwhile is the next batch,
taken at once; only an idle stream waits, for its first event. Under a backlog batches are
``max`` events, and the stream is held (back-pressure) while that many wait.

Acknowledgements are take_events': a batch's events are acknowledged once the loop body has
returned (state committed, outputs delivered), in order, so offsets are committed only for
processed records (at-least-once). It uses the stream's processor hook and passive consumption
the same way take_events does (faust-streaming 0.15).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["ready_batches"]


async def ready_batches(stream: Any, max_: int, idle_s: float) -> AsyncIterator[list[Any]]:
    """Yield lists of at most ``max_`` events of ``stream``; ``idle_s``: how often an idle stream
    checks whether it should stop."""
    pending: list[Any] = []
    arrived = asyncio.Event()
    room = asyncio.Event()
    room.set()

    async def add(value: Any) -> Any:
        event = stream.current_event
        if event is None:
            raise RuntimeError("faust called the batch processor without a current event")
        pending.append(event)
        arrived.set()
        if len(pending) >= max_:
            room.clear()
            await stream.wait(room)  # a full batch is waiting: hold the stream until it is taken
        return value

    enable_acks = stream.enable_acks
    stream.enable_acks = False  # acknowledged below, once processed
    stream.add_processor(add)
    stream._enable_passive(aiter(stream.channel))
    try:
        while not stream.should_stop:
            if not pending:
                arrived.clear()
                await stream.wait_for_stopped(arrived, timeout=idle_s)
                continue
            batch = pending[:max_]
            del pending[:max_]
            if len(pending) < max_:
                room.set()
            try:
                yield batch
            finally:
                for event in batch:
                    await stream.ack(event)
    finally:
        stream.enable_acks = enable_acks
        stream._processors.remove(add)
