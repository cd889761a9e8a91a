"""Prometheus metrics of a worker or the router, served on ``LEADSTREAM_METRICS_PORT``.

The hot path pays nothing for them: the pipeline keeps plain counters, and the collector reads
them when Prometheus scrapes. Consumer lag is read from Kafka at scrape time (committed offsets
against high watermarks, per partition), at most once every few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from leadstream.config.settings import Settings
from leadstream.engine.eventtime.timers import TimerService
from leadstream.engine.guard import RetryingProcessor
from leadstream.engine.pipeline import ScoringPipeline
from leadstream.errors import BrokerUnavailable
from leadstream.kafka.rebalances import REBALANCES
from leadstream.kafka.topic_io import consumer_lags

__all__ = ["LagReader", "PipelineCollector", "router_registry", "serve_metrics", "worker_registry"]

logger = logging.getLogger(__name__)
LAG_EVERY_S = 5.0


class LagReader:
    """Per-partition lag of a consumer group, read at most every ``LAG_EVERY_S`` seconds."""

    def __init__(self, settings: Settings, topics: Iterable[str], group: str) -> None:
        self._settings, self._topics, self._group = settings, list(topics), group
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._lags: dict[tuple[str, int], int] = {}
        self.errors = 0

    def lags(self) -> dict[tuple[str, int], int]:
        with self._lock:
            if time.monotonic() - self._read_at >= LAG_EVERY_S:
                try:
                    self._lags = consumer_lags(self._settings, self._topics, self._group)
                except BrokerUnavailable as exc:
                    self.errors += 1
                    logger.warning("metrics: cannot read consumer lag: %s", exc)
                self._read_at = time.monotonic()
            return dict(self._lags)


class PipelineCollector(Collector):
    """The worker's counters, as Prometheus counters and gauges, read at scrape time."""

    def __init__(
        self,
        pipeline: ScoringPipeline,
        guard: RetryingProcessor | None,
        lag: LagReader | None,
        handoffs: dict[tuple[str, str], int],
    ) -> None:
        self._pipeline, self._guard, self._lag, self._handoffs = pipeline, guard, lag, handoffs

    def collect(self) -> Iterator[Metric]:
        c = self._pipeline.counters
        records = CounterMetricFamily("leadstream_records", "Records consumed, by topic", labels=["topic"])
        for topic, count in sorted(c.by_topic.items()):
            records.add_metric([topic], count)
        yield records
        yield CounterMetricFamily("leadstream_events_applied", "Events applied to contacts", value=c.applied)
        yield CounterMetricFamily(
            "leadstream_duplicates",
            "Records skipped as already applied (redelivery or resend)",
            value=c.duplicates,
        )
        dead = CounterMetricFamily(
            "leadstream_dead_letters", "Records dead-lettered, by reason", labels=["reason"]
        )
        for reason, count in sorted(c.dead_letter_reasons.items()):
            dead.add_metric([reason], count)
        yield dead
        handoffs = CounterMetricFamily(
            "leadstream_handoffs",
            "Handoffs published, by kind and model version",
            labels=["kind", "model_version"],
        )
        for (kind, version), count in sorted(self._handoffs.items()):
            handoffs.add_metric([kind, version], count)
        yield handoffs
        yield CounterMetricFamily(
            "leadstream_late_replays",
            "Contacts whose journal was applied again for late inputs",
            value=c.replays,
        )
        yield CounterMetricFamily(
            "leadstream_state_conflicts", "Compare-and-set conflicts on Redis commits", value=c.conflicts
        )
        failures = CounterMetricFamily(
            "leadstream_batch_failures",
            "Failed batch attempts, by cause (redis, kafka, invalid, other)",
            labels=["cause"],
        )
        for kind, count in sorted((self._guard.failures if self._guard else {}).items()):
            failures.add_metric([kind], count)
        yield failures
        yield _info(self._pipeline.model.version)
        if self._lag is not None:
            yield from _LagCollector(self._lag).collect()
            yield CounterMetricFamily(
                "leadstream_kafka_metadata_errors", "Failed reads of consumer lag", value=self._lag.errors
            )


def _info(version: str) -> Metric:
    info = GaugeMetricFamily("leadstream_model_info", "The active model version", labels=["model_version"])
    info.add_metric([version], 1)
    return info


def worker_registry(
    settings: Settings,
    pipeline: ScoringPipeline,
    guard: RetryingProcessor | None = None,
    lag: bool = True,
    timers: TimerService | None = None,
) -> CollectorRegistry:
    """A registry with the worker's metrics; hooks the pipeline's observers."""
    registry = CollectorRegistry()
    handoffs: dict[tuple[str, str], int] = {}

    def on_handoff(handoff: dict[str, Any]) -> None:
        key = (str(handoff.get("kind", "mql")), str(handoff.get("model_version", "")))
        handoffs[key] = handoffs.get(key, 0) + 1

    pipeline.handoff_observers.append(on_handoff)
    batch_seconds = Histogram(
        "leadstream_batch_seconds",
        "Time to process one batch (decode, score, commit to Redis, produce, acknowledge)",
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        registry=registry,
    )
    pipeline.batch_observers.append(lambda _records, seconds: batch_seconds.observe(seconds))
    reader = LagReader(settings, settings.topics.inputs(), settings.consumer_group) if lag else None
    registry.register(PipelineCollector(pipeline, guard, reader, handoffs))
    registry.register(_ProcessCollector(timers))
    return registry


class _ProcessCollector(Collector):
    """Timers due and fired, journals closed, and rebalances, of this worker process."""

    def __init__(self, timers: TimerService | None) -> None:
        self._timers = timers

    def collect(self) -> Iterator[Metric]:
        if self._timers is not None:
            yield CounterMetricFamily(
                "leadstream_timers_due",
                "SLA and decay timers found due (stale ones included)",
                value=self._timers.due_total,
            )
            yield CounterMetricFamily(
                "leadstream_timers_fired",
                "Lifecycle events produced by due timers (SLA breaches, decayed MQLs)",
                value=self._timers.fired_total,
            )
            yield CounterMetricFamily(
                "leadstream_journals_closed",
                "Late-data journals of quiet contacts closed (a horizon after their latest entry)",
                value=self._timers.journals_closed,
            )
        rebalances = CounterMetricFamily(
            "leadstream_rebalance_events",
            "Consumer group rebalance callbacks, by kind (assigned, revoked, lost)",
            labels=["kind"],
        )
        for kind in ("assigned", "revoked", "lost"):
            rebalances.add_metric([kind], REBALANCES[kind])
        yield rebalances


class _LagCollector(Collector):
    def __init__(self, lag: LagReader) -> None:
        self._lag = lag

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "leadstream_consumer_lag",
            "Records not yet committed, by partition",
            labels=["topic", "partition"],
        )
        for (topic, partition), value in sorted(self._lag.lags().items()):
            lag.add_metric([topic, str(partition)], value)
        yield lag


def router_registry(
    settings: Settings, group: str
) -> tuple[CollectorRegistry, Callable[[dict[str, Any]], None]]:
    """The router's metrics, and what to call with each assignment it publishes."""
    registry = CollectorRegistry()
    assignments = Counter(
        "leadstream_assignments",
        "Handoffs assigned to SDR queues, by handoff kind and queue",
        ["kind", "queue"],
        registry=registry,
    )
    registry.register(_LagCollector(LagReader(settings, [settings.topics.handoffs], group)))

    def on_assignment(assignment: dict[str, Any]) -> None:
        assignments.labels(str(assignment.get("handoff_kind")), str(assignment.get("queue"))).inc()

    return registry, on_assignment


def serve_metrics(settings: Settings, registry: CollectorRegistry, what: str) -> None:
    """Serve ``registry`` on LEADSTREAM_METRICS_PORT (nothing when it is not set); a port in use
    is logged, not fatal: metrics must not stop the stream."""
    port = settings.metrics_port
    if port is None:
        return
    try:
        start_http_server(port, addr=settings.metrics_host, registry=registry)
    except OSError as exc:
        logger.error("%s: cannot serve metrics on %s:%d: %s", what, settings.metrics_host, port, exc)
        return
    logger.info("%s: Prometheus metrics on http://%s:%d/metrics", what, settings.metrics_host, port)
