"""``leadstream route``: handoffs in, assignments out, queue state in Redis.

A plain confluent-kafka consumer loop, as a user of leadstream would write one: consume a batch of
handoffs, assign each with one Redis Function call (pipelined), then publish the new assignments
and commit the consumed offsets in one Kafka transaction.

Exactly one assignment record per handoff, however often the handoff is delivered: the Redis
Function records which handoff record an assignment came from, so another record of the same
handoff (a producer's retry, a worker that published again after a crash) is assigned nothing and
publishes nothing; and the transaction makes the publishing and the offsets one step, so a router
that dies in between publishes the batch again only as an aborted transaction, which readers in
read_committed mode (the default of Kafka's clients) never see. Assignment ids are deterministic.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
from confluent_kafka import Consumer, KafkaException, Producer
from redis.cluster import RedisCluster

from leadstream.config.routing import RoutingConfig
from leadstream.config.settings import Settings
from leadstream.errors import BrokerUnavailable
from leadstream.kafka.clients import make_consumer, make_producer
from leadstream.router.rules import account_of, choose_queue
from leadstream.schemas.assignment import Assignment
from leadstream.state.keys import contact_token, router_key
from leadstream.state.redis_failures import redis_failed
from leadstream.state.redis_store import function_library

__all__ = ["ASSIGN_FUNCTION", "NAMESPACE", "PUBLISH", "Router", "router_group"]

logger = logging.getLogger(__name__)
NAMESPACE = uuid.UUID("c3f2a9d1-6e4b-4a7c-8b5d-2e9f0a1c7d34")
ASSIGN_FUNCTION = "ls_assign_handoff_v3"
PUBLISH = ("new", "retry")


class Router:
    def __init__(self, settings: Settings, config: RoutingConfig, client: redis.Redis) -> None:
        self._settings = settings
        self._config = config
        self._redis = client
        self._prefix = settings.redis_key_prefix
        try:
            client.function_load(function_library(), replace=True)
        except redis.RedisError as exc:
            raise redis_failed("loading the router's functions", exc) from exc

    def _pipeline(self) -> Any:
        """A pipeline to the node holding the router's slot (every key of ours shares the
        ``{route}`` tag): on a Redis Cluster, redis-py's own pipeline would look up each FCALL's
        keys with the server and, as of 8.1, can send it to the wrong node."""
        if isinstance(self._redis, RedisCluster):
            node = self._redis.get_node_from_key(router_key(self._prefix, "assigned"))
            return node.redis_connection.pipeline(transaction=False)
        return self._redis.pipeline(transaction=False)

    def assign(self, handoffs: list[tuple[dict[str, Any], str]]) -> list[tuple[dict[str, Any], str]]:
        """Assign every (handoff, its record's place "topic:partition:offset"), idempotently by
        handoff id; return each one's assignment event and status (new, retry or duplicate)."""
        pipe = self._pipeline()
        queues = []
        for handoff, source in handoffs:
            queue = choose_queue(self._config, handoff)
            queues.append(queue)
            day = handoff["qualified_at"][:10]
            args: list[Any] = [
                handoff["handoff_id"],
                account_of(handoff),
                "1" if self._config.sticky_accounts else "0",
                source,
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
            if isinstance(self._redis, RedisCluster):
                self._redis.nodes_manager.initialize()  # a failover moved the slot: look again
            raise redis_failed(f"assigning {len(handoffs)} handoffs", exc) from exc
        out = []
        for (handoff, _source), queue, result in zip(handoffs, queues, results, strict=True):
            rep, reason, status = result.decode().split("|")
            # A sticky assignment keeps the rep's own queue.
            queue_name = next(
                (q.name for q in self._config.queues if any(r.id == rep for r in q.reps)), queue.name
            )
            out.append(
                (
                    Assignment(
                        assignment_id=str(uuid.uuid5(NAMESPACE, handoff["handoff_id"])),
                        handoff_id=handoff["handoff_id"],
                        handoff_kind=handoff["kind"],
                        contact_id=handoff.get("contact_id"),
                        account_domain=account_of(handoff) or None,
                        account_id=handoff.get("account_id"),
                        queue=queue_name,
                        rep=rep,
                        reason=reason,
                        assigned_at=handoff["qualified_at"],
                        follow_up_due_at=handoff["follow_up_due_at"],
                    ).model_dump(mode="json"),
                    status,
                )
            )
        return out

    def run(
        self, idle_exit_s: float | None = None, on_assignment: Callable[[dict[str, Any]], None] | None = None
    ) -> int:
        """Consume the handoff topic until stopped (or idle for ``idle_exit_s``); return how many
        assignments were published."""
        settings = self._settings
        consumer = make_consumer(
            settings,
            router_group(settings),
            **{"auto.offset.reset": "earliest"},
        )
        producer = self._transactional_producer()
        consumer.subscribe([settings.topics.handoffs])
        total, idle_since = 0, time.monotonic()
        try:
            while idle_exit_s is None or time.monotonic() - idle_since < idle_exit_s:
                messages = consumer.consume(500, timeout=0.5)
                if not messages:
                    continue
                idle_since = time.monotonic()
                handoffs = []
                for message in messages:
                    if message.error() is not None:
                        logger.warning("consumer error: %s", message.error())
                        continue
                    try:
                        handoff = json.loads(message.value() or b"{}")
                        handoffs.append(
                            (handoff, f"{message.topic()}:{message.partition()}:{message.offset()}")
                        )
                    except ValueError:
                        logger.error("skipping an unreadable handoff at offset %s", message.offset())
                assigned = self.assign(handoffs) if handoffs else []
                published = [a for a, status in assigned if status in PUBLISH]
                skipped = len(assigned) - len(published)
                if skipped:
                    logger.info(
                        "%d handoffs delivered again were already assigned: nothing published", skipped
                    )
                self._publish(producer, consumer, published)
                total += len(published)
                for assignment in published:
                    if on_assignment is not None:
                        on_assignment(assignment)
        except KafkaException as exc:
            raise BrokerUnavailable(
                f"router failed: {exc}; start it again: the batch in flight is consumed again and "
                "published once"
            ) from exc
        finally:
            consumer.close()
        return total

    def _transactional_producer(self) -> Producer:
        settings = self._settings
        instance = settings.instance_id or uuid.uuid4().hex[:12]
        producer = make_producer(
            settings, **{"transactional.id": f"{settings.consumer_group}-router-{instance}"}
        )
        try:
            producer.init_transactions(30)
        except KafkaException as exc:
            raise BrokerUnavailable(f"cannot start the router's Kafka transactions: {exc}") from exc
        return producer

    def _publish(self, producer: Producer, consumer: Consumer, assignments: list[dict[str, Any]]) -> None:
        """The assignments and the consumed offsets in one transaction."""
        topic = self._settings.topics.assignments
        producer.begin_transaction()
        try:
            for a in assignments:
                # The contact's pseudonym, as its handoff's key (no Kafka key we write names a person).
                contact = a["contact_id"]
                key = (contact_token(contact) if contact else a["account_domain"] or "").encode()
                producer.produce(topic, value=json.dumps(a).encode(), key=key)
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30
            )
            producer.commit_transaction(60)
        except KafkaException:
            with contextlib.suppress(KafkaException):  # the broker may be what failed
                producer.abort_transaction(30)
            raise


def router_group(settings: Settings) -> str:
    """The router's consumer group on the handoff topic."""
    return f"{settings.consumer_group}-router"
