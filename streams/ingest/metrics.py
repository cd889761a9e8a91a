"""Prometheus metrics of the ingest service (one registry per app, so tests can run several)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["IngestMetrics"]


@dataclass(frozen=True, slots=True)
class IngestMetrics:
    registry: CollectorRegistry
    requests: Counter
    events: Counter
    ignored: Counter
    rejected: Counter
    latency: Histogram

    @classmethod
    def create(cls) -> IngestMetrics:
        registry = CollectorRegistry()
        return cls(
            registry,
            Counter(
                "leadstream_ingest_requests",
                "HTTP requests by endpoint and status code",
                ["endpoint", "status"],
                registry=registry,
            ),
            Counter(
                "leadstream_ingest_events",
                "Events acknowledged by Kafka, by topic",
                ["topic"],
                registry=registry,
            ),
            Counter(
                "leadstream_ingest_ignored",
                "Calls accepted but not turned into events (screen, unmapped track), by kind",
                ["kind"],
                registry=registry,
            ),
            Counter(
                "leadstream_ingest_rejected",
                "Requests answered with an error, by reason (auth, size, json, invalid, kafka)",
                ["reason"],
                registry=registry,
            ),
            Histogram(
                "leadstream_ingest_request_seconds",
                "Time from request to answer (including Kafka's acknowledgement), by endpoint",
                ["endpoint"],
                buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                registry=registry,
            ),
        )
