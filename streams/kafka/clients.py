"""Every Kafka client leadstream makes, configured from settings in one place.

Producers hash keys like the Java client (murmur2), so partitions agree with faust and every other
producer; librdkafka's own log goes through Python logging with repeats dropped.
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from leadstream.config.settings import Settings
from leadstream.errors import BrokerUnavailable

__all__ = [
    "check_kafka_access",
    "kafka_client_config",
    "kafka_ssl_context",
    "librdkafka_logger",
    "make_admin",
    "make_consumer",
    "make_producer",
    "require_kafka",
]


class _RepeatsDropped(logging.Filter):
    """librdkafka retries a refused connection every few tens of milliseconds and logs each try
    (hundreds of identical lines while a broker restarts): one line per distinct message a minute
    is what an operator can read."""

    def __init__(self, every_s: float = 60.0) -> None:
        super().__init__()
        self._every_s = every_s
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        # Client names and timings ("consumer-89", "after 0ms") differ between repeats.
        shape = re.sub(r"\d+", "#", record.getMessage())
        now = time.monotonic()
        if now - self._last.get(shape, -self._every_s) < self._every_s:
            return False
        if len(self._last) > 1000:
            self._last.clear()
        self._last[shape] = now
        return True


librdkafka_logger = logging.getLogger("leadstream.librdkafka")
librdkafka_logger.addFilter(_RepeatsDropped())


def kafka_client_config(settings: Settings) -> dict[str, Any]:
    """librdkafka configuration for ``settings`` (shared by admin, producers and consumers); the
    client's own log goes through Python logging, repeats dropped."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
        "logger": librdkafka_logger,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
    if settings.kafka_sasl_username:
        config["sasl.username"] = settings.kafka_sasl_username
    if settings.kafka_sasl_password:
        config["sasl.password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        if settings.kafka_ssl_ca_file:
            config["ssl.ca.location"] = str(settings.kafka_ssl_ca_file)
        if settings.kafka_ssl_cert_file and settings.kafka_ssl_key_file:
            config["ssl.certificate.location"] = str(settings.kafka_ssl_cert_file)
            config["ssl.key.location"] = str(settings.kafka_ssl_key_file)
        if settings.kafka_ssl_key_password:
            config["ssl.key.password"] = settings.kafka_ssl_key_password.get_secret_value()
        config["ssl.endpoint.identification.algorithm"] = (
            "https" if settings.kafka_ssl_check_hostname else "none"
        )
    return config


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext:
    """The same TLS settings for Python clients (faust's aiokafka)."""
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else None
    )
    if settings.kafka_ssl_cert_file and settings.kafka_ssl_key_file:
        password = settings.kafka_ssl_key_password
        context.load_cert_chain(
            str(settings.kafka_ssl_cert_file),
            str(settings.kafka_ssl_key_file),
            password.get_secret_value() if password else None,
        )
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def check_kafka_access(settings: Settings, timeout_s: float = 15.0) -> None:
    """One authenticated metadata request: a refused password or an untrusted certificate is said
    once, in words, with what to change (the clients would otherwise retry and log forever)."""
    problems: list[KafkaError] = []
    config: dict[str, Any] = {**kafka_client_config(settings), "error_cb": problems.append}
    admin = AdminClient(config)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin.list_topics(timeout=2.0)
            answered = True
        except KafkaException as exc:
            problems.append(exc.args[0])
            answered = False
        admin.poll(0)  # the client's errors (authentication, TLS) reach error_cb only when polled
        _raise_access_problem(settings, problems)
        if answered or time.monotonic() > deadline:
            return


def _raise_access_problem(settings: Settings, problems: list[KafkaError]) -> None:
    for problem in problems:
        text = problem.str()
        if problem.code() == KafkaError._AUTHENTICATION or "SASL authentication" in text:
            raise BrokerUnavailable(
                f"Kafka refused the credentials of user {settings.kafka_sasl_username!r} "
                f"({settings.kafka_sasl_mechanism or 'PLAIN'}): {text}. Check "
                "LEADSTREAM_KAFKA_SASL_USERNAME, LEADSTREAM_KAFKA_SASL_PASSWORD and "
                "LEADSTREAM_KAFKA_SASL_MECHANISM."
            )
        if (
            problem.code() == KafkaError._SSL
            or "certificate verify failed" in text
            or "SSL handshake" in text
        ):
            raise BrokerUnavailable(
                f"TLS with Kafka failed: {text}. If the broker's certificate is signed by your own CA, "
                "set LEADSTREAM_KAFKA_SSL_CA_FILE to that CA's PEM file; check the host name in "
                "LEADSTREAM_KAFKA_BOOTSTRAP_SERVERS matches the certificate (or, for a test broker only, "
                "LEADSTREAM_KAFKA_SSL_CHECK_HOSTNAME=false)."
            )  # Anything else (a broker restarting) is the clients' to retry.


def require_kafka(settings: Settings, timeout_s: float = 3.0) -> None:
    """Fail fast, in one line, when no bootstrap server accepts a connection (the client itself
    would retry for half a minute, logging every attempt)."""
    servers = [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()]
    problems = []
    for server in servers:
        address = server.split("://", 1)[-1]
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=timeout_s):
                if settings.kafka_security_protocol != "PLAINTEXT":
                    check_kafka_access(settings)
                return
        except (OSError, ValueError) as exc:
            problems.append(f"{server}: {getattr(exc, 'strerror', None) or exc}")
    raise BrokerUnavailable(
        f"cannot reach Kafka ({'; '.join(problems) or 'no bootstrap servers'}). Start the local stack "
        "with scripts/stack up, or set LEADSTREAM_KAFKA_BOOTSTRAP_SERVERS."
    )


def make_producer(settings: Settings, **extra: Any) -> Producer:
    """An idempotent producer that partitions like the Java client; ``extra`` adds or overrides."""
    return Producer(
        {
            **kafka_client_config(settings),
            "partitioner": "murmur2_random",
            "linger.ms": 5,
            "enable.idempotence": True,
            **extra,
        }
    )


def make_consumer(settings: Settings, group: str, **extra: Any) -> Consumer:
    """A consumer in ``group`` that commits only when told; ``extra`` adds or overrides."""
    return Consumer(
        {**kafka_client_config(settings), "group.id": group, "enable.auto.commit": False, **extra}
    )


def make_admin(settings: Settings, **extra: Any) -> AdminClient:
    return AdminClient({**kafka_client_config(settings), **extra})
