"""Producing from an asyncio server: each record's delivery report resolves a future.

librdkafka delivers reports only from ``poll``; a thread of its own polls, so the event loop
never blocks on Kafka and a request is answered only once Kafka acknowledged all its records
(the producer is idempotent, so acks=all).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from confluent_kafka import KafkaError, Message

from leadstream.config.settings import Settings
from leadstream.errors import BrokerUnavailable
from leadstream.kafka.clients import make_producer

__all__ = ["AckingProducer"]


class AckingProducer:
    def __init__(self, settings: Settings) -> None:
        timeout_ms = int(settings.ingest_ack_timeout_s * 1000)
        # Kafka gives up on a record about when the request stops waiting for it; the client's
        # retry of a request answered 503 is deduplicated downstream by its message id.
        self._producer = make_producer(
            settings, **{"linger.ms": 2, "message.timeout.ms": timeout_ms, "request.timeout.ms": timeout_ms}
        )
        self._timeout_s = settings.ingest_ack_timeout_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="ingest-delivery-reports", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    async def send(self, records: Sequence[tuple[str, bytes, bytes]]) -> None:
        """Produce (topic, key, value) records; return once Kafka acknowledged every one, or raise
        BrokerUnavailable."""
        if not records:
            return
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = []
        for topic, key, value in records:
            future: asyncio.Future[None] = loop.create_future()

            def delivered(
                err: KafkaError | None, _msg: Message, future: asyncio.Future[None] = future
            ) -> None:
                loop.call_soon_threadsafe(_settle, future, err)

            while True:
                try:
                    self._producer.produce(topic, value=value, key=key, on_delivery=delivered)
                    break
                except BufferError:  # the local queue is full: let deliveries drain
                    await asyncio.sleep(0.01)
            futures.append(future)
        try:
            await asyncio.wait_for(asyncio.gather(*futures), self._timeout_s + 1)
        except TimeoutError as exc:
            raise BrokerUnavailable(f"Kafka did not acknowledge within {self._timeout_s:.0f}s") from exc

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
        self._stop.set()
        self._thread.join()


def _settle(future: asyncio.Future[None], err: KafkaError | None) -> None:
    if future.done():
        return
    if err is None:
        future.set_result(None)
    else:
        future.set_exception(BrokerUnavailable(f"Kafka refused an event: {err}"))
