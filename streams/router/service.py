"""``leadstream route``: handoffs in, assignments out, queue state in Redis.

A plain confluent-kafka consumer loop, as a user of leadstream would write one: consume a batch of
handoffs, assign each with one Redis Function call (pipelined), produce the assignment events,
wait for Kafka to acknowledge them, then commit the offsets. The same handoff delivered twice gets
the same assignment (the Redis Function returns the recorded one), with the same assignment id.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from confluent_kafka import Consumer, KafkaException

from config.routing import RoutingConfig
from config.settings import Settings
from schemas.assignment import Assignment
from streams.errors import BrokerUnavailable, StateUnavailable
from streams.kafka_io import make_producer, produce_all
from streams.router.rules import account_of, choose_queue
from streams.state.keys import router_key
from streams.state.redis_store import function_library
from streams.topics import kafka_client_config

logger = logging.getLogger(__name__)
NAMESPACE = uuid.UUID("c3f2a9d1-6e4b-4a7c-8b5d-2e9f0a1c7d34")
ASSIGN_FUNCTION = "ls_assign_handoff_v2"


class Router:
    def __init__(self, settings: Settings, config: RoutingConfig, client: redis.Redis) -> None:
        self._settings = settings
        self._config = config
        self._redis = client
        self._prefix = settings.redis_key_prefix
        try:
            client.function_load(function_library(), replace=True)
        except redis.RedisError as exc:
            raise StateUnavailable(f"cannot load the router's Redis functions: {exc}") from exc

    def assign(self, handoffs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Assign every handoff (idempotent by handoff id); return the assignment events."""
        pipe = self._redis.pipeline(transaction=False)
        queues = []
        for handoff in handoffs:
            queue = choose_queue(self._config, handoff)
            queues.append(queue)
            day = handoff["qualified_at"][:10]
            args: list[Any] = [
                handoff["handoff_id"],
                account_of(handoff),
                "1" if self._config.sticky_accounts else "0",
            ]
            for rep in queue.reps:
                args.extend((rep.id, rep.capacity_per_day))
            keys = [
                router_key(self._prefix, n) for n in ("assigned", "sticky", f"rr:{queue.name}", f"load:{day}")
            ]
            pipe.fcall(ASSIGN_FUNCTION, len(keys), *keys, *args)
        try:
            results = pipe.execute()
        except redis.RedisError as exc:
            raise StateUnavailable(f"assigning {len(handoffs)} handoffs failed: {exc}") from exc
        out = []
        for handoff, queue, result in zip(handoffs, queues, results, strict=True):
            rep, reason = result.decode().split("|")
            # A sticky assignment keeps the rep's own queue.
            queue_name = next(
                (q.name for q in self._config.queues if any(r.id == rep for r in q.reps)), queue.name
            )
            out.append(
                Assignment(
                    assignment_id=str(uuid.uuid5(NAMESPACE, handoff["handoff_id"])),
                    handoff_id=handoff["handoff_id"],
                    handoff_kind=handoff["kind"],
                    contact_id=handoff.get("contact_id"),
                    account_id=account_of(handoff) or None,
                    queue=queue_name,
                    rep=rep,
                    reason=reason,
                    assigned_at=handoff["qualified_at"],
                    follow_up_due_at=handoff["follow_up_due_at"],
                ).model_dump(mode="json")
            )
        return out

    def run(
        self, idle_exit_s: float | None = None, on_assignment: Callable[[dict[str, Any]], None] | None = None
    ) -> int:
        """Consume the handoff topic until stopped (or idle for ``idle_exit_s``); return the count."""
        settings = self._settings
        consumer = Consumer(
            {
                **kafka_client_config(settings),
                "group.id": f"{settings.consumer_group}-router",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        producer = make_producer(settings)
        consumer.subscribe([settings.topics.handoffs])
        total, idle_since = 0, time.monotonic()
        try:
            while idle_exit_s is None or time.monotonic() - idle_since < idle_exit_s:
                messages = consumer.consume(500, timeout=0.5)
                handoffs = []
                for message in messages:
                    if message.error() is not None:
                        logger.warning("consumer error: %s", message.error())
                        continue
                    try:
                        handoffs.append(json.loads(message.value() or b"{}"))
                    except ValueError:
                        logger.error("skipping an unreadable handoff at offset %s", message.offset())
                if not messages:
                    continue
                idle_since = time.monotonic()
                assignments = self.assign(handoffs) if handoffs else []
                produce_all(
                    producer,
                    [
                        (
                            settings.topics.assignments,
                            (a["contact_id"] or a["account_id"] or "").encode(),
                            json.dumps(a).encode(),
                        )
                        for a in assignments
                    ],
                )
                consumer.commit(asynchronous=False)
                total += len(assignments)
                for assignment in assignments:
                    if on_assignment is not None:
                        on_assignment(assignment)
        except KafkaException as exc:
            raise BrokerUnavailable(f"router consumer failed: {exc}") from exc
        finally:
            consumer.close()
        return total
