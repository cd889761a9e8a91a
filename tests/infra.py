"""Finding (or starting) a real Kafka broker and Redis for the tests.

Order: addresses from the environment; the local stack's default ports if they answer; a Docker
engine through testcontainers; otherwise a failure that says how to start the stack. Never a
silent skip.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

LOCAL_KAFKA = "127.0.0.1:9092"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
HOW_TO_START = (
    "start the local stack with `scripts/stack up` (or run the README's test command, "
    "scripts/run-tests, which does it), or set LEADSTREAM_KAFKA_BOOTSTRAP_SERVERS and LEADSTREAM_REDIS_URL"
)


class InfrastructureMissing(RuntimeError):
    """No Kafka or Redis could be found or started."""


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _docker_answers() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
        return True
    except Exception:
        return False


@contextmanager
def kafka_bootstrap() -> Iterator[str]:
    for variable in ("LEADSTREAM_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"):
        if os.environ.get(variable):
            yield os.environ[variable]
            return
    if _answers("127.0.0.1", 9092):
        yield LOCAL_KAFKA
        return
    if _docker_answers():
        from testcontainers.community.kafka import KafkaContainer  # type: ignore[import-untyped]

        with KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as kafka:
            yield kafka.get_bootstrap_server()
        return
    raise InfrastructureMissing(f"no Kafka broker found: {HOW_TO_START}")


@contextmanager
def redis_url() -> Iterator[str]:
    for variable in ("LEADSTREAM_REDIS_URL", "REDIS_URL"):
        if os.environ.get(variable):
            yield os.environ[variable]
            return
    if _answers("127.0.0.1", 6379):
        yield LOCAL_REDIS
        return
    if _docker_answers():
        from testcontainers.community.redis import RedisContainer  # type: ignore[import-untyped]

        with RedisContainer("redis:7") as redis:
            yield f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"
        return
    raise InfrastructureMissing(f"no Redis found: {HOW_TO_START}")
