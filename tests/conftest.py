"""Shared fixtures: real infrastructure addresses, unique names per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from leadstream.bootstrap import redis_blocking
from leadstream.config.settings import Settings, Topics
from leadstream.tools.worker_process import WorkerProcess
from tests import infra


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    try:
        with infra.kafka_bootstrap() as servers:
            yield servers
    except infra.InfrastructureMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    try:
        with infra.redis_url() as url:
            yield url
    except infra.InfrastructureMissing as exc:
        pytest.fail(str(exc), pytrace=False)


def unique_settings(kafka_bootstrap: str, redis_url: str, **overrides: object) -> Settings:
    """Settings whose topics, consumer group and Redis keys belong to one test alone."""
    run = uuid.uuid4().hex[:10]
    topics = Topics(**{name: f"t{run}.{name}" for name in Topics.model_fields})
    values: dict[str, object] = {
        "kafka_bootstrap_servers": kafka_bootstrap,
        "redis_url": redis_url,
        "topics": topics,
        "consumer_group": f"g{run}",
        "redis_key_prefix": f"t{run}",
        "batch_within_s": 0.02,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(kafka_bootstrap: str, redis_url: str) -> Settings:
    return unique_settings(kafka_bootstrap, redis_url)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    # a cluster client when LEADSTREAM_REDIS_CLUSTER says the stack is a Redis Cluster
    client = redis_blocking(Settings(redis_url=redis_url))
    yield client
    client.close()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[object]:
    """Start ``leadstream worker`` children for a test; all are stopped afterwards."""
    started: list[WorkerProcess] = []

    def start(settings: Settings, extra_env: dict[str, str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path / f"worker-{len(started)}.log", extra_env)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def start_ingest(tmp_path: Path) -> Iterator[object]:
    """Start ``leadstream ingest`` children (on free ports) for a test; stopped afterwards."""
    from leadstream.kafka.topics import ensure_topics
    from leadstream.tools.ingest_process import IngestProcess

    started: list[IngestProcess] = []

    def start(settings: Settings, extra_env: dict[str, str] | None = None) -> IngestProcess:
        ensure_topics(settings)
        process = IngestProcess(settings, tmp_path / f"ingest-{len(started)}.log", extra_env)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
