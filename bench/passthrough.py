"""The raw Kafka ceiling: consume -> produce in one Python process, no decoding, no state.

Used twice by the bench: in-process for the throughput ceiling, and as a child process (like a
worker) for the latency ceiling, with the same batch settings as the leadstream worker.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Consumer, Producer

from leadstream.config.settings import Settings
from leadstream.kafka.clients import kafka_client_config


def passthrough(
    settings: Settings,
    sources: Sequence[str],
    sink: str,
    group: str,
    limit: int | None = None,
    seconds: float | None = None,
    linger_ms: int = 5,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, float]:
    """Forward records from ``sources`` to ``sink`` until ``limit`` records or ``seconds`` after
    the first one. Returns (records forwarded, seconds from the first record to the last ack)."""
    batching = (settings.batch_max, settings.batch_within_s)
    return _forward(
        kafka_client_config(settings), batching, sources, sink, group, limit, seconds, linger_ms, progress
    )


def _forward(
    config: dict[str, Any],
    batching: tuple[int, float],
    sources: Sequence[str],
    sink: str,
    group: str,
    limit: int | None,
    seconds: float | None,
    linger_ms: int,
    progress: Callable[[int], None] | None,
) -> tuple[int, float]:
    consumer = Consumer(
        {
            **config,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    producer = Producer({**config, "linger.ms": linger_ms})
    consumer.subscribe(list(sources))
    done, started, reported = 0, None, 0
    try:
        while limit is None or done < limit:
            if started is not None and seconds is not None and time.perf_counter() - started >= seconds:
                break
            batch = consumer.consume(batching[0], timeout=batching[1])
            if batch and started is None:
                started = time.perf_counter()
            for message in batch:
                if message.error() is None:
                    while True:
                        try:
                            producer.produce(sink, message.value(), message.key())
                            break
                        except BufferError:
                            producer.poll(0.05)
                    done += 1
            producer.poll(0)
            if progress is not None and done - reported >= 100_000:
                reported = done
                progress(done)
        producer.flush(30)
    finally:
        consumer.close()
    return done, time.perf_counter() - (started or time.perf_counter())


def _serve(
    config: dict[str, Any], batching: tuple[int, float], sources: list[str], sink: str, group: str
) -> None:
    _forward(config, batching, sources, sink, group, None, None, 2, None)


class PassthroughProcess:
    """The passthrough as a child process that runs until stopped (for latency)."""

    def __init__(self, settings: Settings, sources: Sequence[str], sink: str, group: str) -> None:
        context = multiprocessing.get_context("spawn")
        batching = (settings.batch_max, settings.batch_within_s)
        args: tuple[Any, ...] = (kafka_client_config(settings), batching, list(sources), sink, group)
        self._process = context.Process(target=_serve, args=args, daemon=True)

    def __enter__(self) -> PassthroughProcess:
        self._process.start()
        time.sleep(3)  # joined its group and fetching (an empty topic: nothing to skip)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._process.terminate()
        self._process.join(10)
