"""The Kafka adapters of the engine's sink port (engine/ports.py): faust's producer and confluent-kafka's."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from leadstream.engine.records import OutputRecord
from leadstream.errors import BrokerUnavailable

__all__ = ["ConfluentSink", "FaustProducerSink"]

logger = logging.getLogger(__name__)


class FaustProducerSink:
    """Produces through a faust app's producer, all records in flight at once, then awaits acks.

    Awaiting the acknowledgements before the batch's offsets are acked is what makes the
    pipeline at-least-once: an offset is committed only after its outputs are in Kafka.
    """

    def __init__(self, app: Any) -> None:
        self._app = app

    async def send_all(self, records: Sequence[OutputRecord]) -> None:
        if not records:
            return
        producer = self._app.producer
        try:
            pending = [
                await producer.send(
                    r.topic, r.key, r.value, partition=None, timestamp=None, headers=list(r.headers)
                )
                for r in records
            ]
            await asyncio.gather(*pending)
        except Exception as exc:  # aiokafka raises a zoo of KafkaError subclasses
            raise BrokerUnavailable(
                f"producing {len(records)} records failed: {exc!r}; check that the Kafka "
                "brokers are reachable and the output topics exist"
            ) from exc


class ConfluentSink:
    """Produces with a confluent-kafka Producer and flushes; for tools and tests outside faust."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer

    async def send_all(self, records: Sequence[OutputRecord]) -> None:
        errors: list[str] = []

        def on_delivery(err: object, _msg: object) -> None:
            if err is not None:
                errors.append(str(err))

        for r in records:
            self._producer.produce(
                r.topic, value=r.value, key=r.key, headers=list(r.headers), on_delivery=on_delivery
            )
        remaining = await asyncio.get_running_loop().run_in_executor(None, self._producer.flush, 30)
        if remaining or errors:
            raise BrokerUnavailable(f"{remaining} records undelivered, errors: {errors[:3]}")
