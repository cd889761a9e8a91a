"""Runtime settings: one frozen model read from ``LEADSTREAM_*`` variables and an optional file.

Precedence, highest first: explicit keyword arguments, environment variables, the settings file
(``LEADSTREAM_SETTINGS_FILE``, dotenv format), the defaults below. The defaults point at the local
stack that ``scripts/stack up`` starts, so a new user needs no configuration at all.
Nested fields use ``__``: ``LEADSTREAM_TOPICS__HANDOFFS=crm.handoffs``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadstream.errors import SettingsError, SettingsFileMissing

__all__ = [
    "SETTINGS_FILE_VARIABLE",
    "KeyMismatch",
    "Settings",
    "Topics",
    "load_settings",
    "settings_to_env",
]

SETTINGS_FILE_VARIABLE = "LEADSTREAM_SETTINGS_FILE"
KeyMismatch = Literal["score", "rekey", "dead_letter"]  # see Settings.key_mismatch


class Topics(BaseModel):
    """Kafka topic names. Input topics carry JSON events keyed by contact id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    page_views: str = "leadstream.page_views"
    forms: str = "leadstream.forms"
    trials: str = "leadstream.trials"
    webinars: str = "leadstream.webinars"
    identify: str = "leadstream.identify"
    # Firmographics, compacted, keyed by account id.
    accounts: str = "leadstream.accounts"
    # Sales outcomes from the CRM (accepted, rejected, opportunity, closed), keyed by contact id.
    feedback: str = "leadstream.feedback"
    # Lifecycle transitions and SLA breaches, keyed by contact id.
    lifecycle: str = "leadstream.lifecycle"
    # Erasure requests carried out (`leadstream forget`): downstream consumers delete theirs.
    erasures: str = "leadstream.erasures"
    # The router's assignments of handoffs to SDR queues and reps.
    assignments: str = "leadstream.assignments"
    handoffs: str = "leadstream.handoffs"
    dead_letters: str = "leadstream.dead_letters"
    # The model registry: versions, the active one and its history, compacted, one partition.
    models: str = "leadstream.models"

    def inputs(self) -> tuple[str, ...]:
        """The topics the scoring worker consumes."""
        return (
            self.page_views,
            self.forms,
            self.trials,
            self.webinars,
            self.identify,
            self.accounts,
            self.feedback,
        )


class Settings(BaseSettings):
    """Everything a leadstream process needs to connect and run."""

    model_config = SettingsConfigDict(
        env_prefix="LEADSTREAM_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # TLS (security protocol SSL or SASL_SSL): the CA that signed the brokers' certificates (else
    # the system's CAs), and a client certificate and key (PEM) when the brokers ask for one.
    kafka_ssl_ca_file: Path | None = None
    kafka_ssl_cert_file: Path | None = None
    kafka_ssl_key_file: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True
    # The secret of the keyed hash that names erased people (suppression entries): set it in
    # production, and keep it: a new secret no longer recognises those erased before.
    pseudonym_secret: SecretStr | None = None
    # Dead letters without the person: key and personal fields (email, ids, names, phone, ip) as
    # pseudonyms, a value that is not JSON dropped. Off: the original record, as consumed.
    dead_letter_redact: bool = False
    # Create missing topics at start-up. Off: the topics must exist (created by an admin with
    # `leadstream topics`), and the process needs no CreateTopics right (README, "Least privilege").
    create_topics: bool = True

    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_password: SecretStr | None = None
    # An ACL user (Redis 6+); without it the password is the default user's.
    redis_username: str | None = None
    # TLS (a rediss:// URL): the CA that signed the server's certificate (else the system's CAs),
    # and a client certificate and key (PEM) when the server requires one (tls-auth-clients).
    redis_ssl_ca_file: Path | None = None
    redis_ssl_cert_file: Path | None = None
    redis_ssl_key_file: Path | None = None
    redis_ssl_check_hostname: bool = True
    # A Redis Cluster: LEADSTREAM_REDIS_URL names any one of its nodes, the rest are discovered.
    redis_cluster: bool = False
    # How long one round trip of the state store (a whole batch's pipeline of loads or commits) may
    # take before the batch is tried again: the bound on a Redis that accepts connections but does
    # not answer. One deadline per pipeline, not one per reply (redis-py's socket timeout arms a
    # timer for every reply: ~8% of a busy worker's CPU).
    redis_timeout_s: float = Field(default=10.0, gt=0, le=300)
    # Every Redis key starts with this prefix, so several deployments (or tests) share one Redis.
    redis_key_prefix: str = Field(default="ls", pattern=r"^[A-Za-z0-9_.-]{1,32}$")

    topics: Topics = Field(default_factory=Topics)
    topic_partitions: int = Field(default=4, ge=1)
    topic_replication_factor: int = Field(default=1, ge=1)
    consumer_group: str = "leadstream"

    # None means the default model shipped in the package (config/default_model.yaml).
    model_path: Path | None = None

    # Hot-path batching: a batch closes at batch_max events or after batch_within_s seconds.
    # Under load a batch is whatever arrived while the previous one was scored, so batch_max is
    # the commit interval of a backlog: each batch commits every contact and account it touched
    # once. Larger batches pay where contacts are dense in the stream, hardly where they are
    # sparse, and always in memory. One confluent worker (bench.worker_throughput, alternating):
    # 8k contacts, 1,000 -> 213 µs of CPU an event, 2,500 -> 159; 40k contacts, 1,000 -> 207 µs,
    # 3,653 events/s, 218 MiB peak, 1,500 -> 207 µs, 3,715/s, 229 MiB; 5,000 with no decoded-state
    # cache -> 207-222 µs, 3,653-3,961/s, but 282-310 MiB. 1,000 stays the default.
    batch_max: int = Field(default=1000, ge=1, le=100_000)
    batch_within_s: float = Field(default=0.05, gt=0, le=10)
    # Contacts with no event for this long are dropped from Redis by TTL.
    state_ttl_days: int = Field(default=400, ge=1)
    # Decoded contact and account states a worker keeps between batches (each checked against
    # the stored version and bytes before use); 0 turns the cache off. 3.5 KB (contact) to 6 KB
    # (account) of memory each, plus as many decoded journal entries (~2.3 KB). Since states are
    # compact to decode, 0, 2,000 and 10,000 cost the same CPU per event within noise (embedded
    # engine, 187k events in event-time order: 243/239/242 µs) while 10,000 held ~80 MiB more.
    state_cache_entries: int = Field(default=2_000, ge=0)
    # The most memory those decoded states may take (estimated: ~6.5 KB a contact, 2.7 KB an
    # account plus 1.9 KB a member), half for contacts and half for accounts; the least recently
    # used leave first. Entries alone do not bound memory: accounts grow with their members, and
    # a worker keeping 2,000 of them grew with every contact it saw.
    state_cache_mib: int = Field(default=64, ge=1)
    # How contact states are stored: zstd with the shipped dictionary (~260 bytes for a typical
    # 1.2 KB state, ~3 µs a write), zlib (~600 bytes, ~22 µs) or plain JSON. Every form is read,
    # so it can be switched at any time (streams/state/codec.py).
    state_compression: Literal["zstd", "zlib", "none"] = "zstd"
    # How often the worker looks for due timers (SLA breaches, decayed MQLs) and for accounts the
    # stream has reached.
    timer_interval_s: float = Field(default=0.25, gt=0, le=60)

    # Late data (see the README, "Arrival order"). A contact keeps its points since its last
    # published decision open to late inputs: those within this many days of its latest event...
    late_data_horizon_days: float = Field(default=7.0, ge=0)
    # ...and at most this many of them.
    late_data_max_events: int = Field(default=32, ge=0, le=1000)
    # Accounts apply members' points in event-time order: a point waits until every input
    # partition is past it by this much (the disorder tolerated within a partition)...
    watermark_lateness_s: float = Field(default=300.0, ge=0)
    # ...or was caught up at a fetch this long after the point's record reached Kafka (records
    # still in flight, producer clock skew).
    watermark_grace_s: float = Field(default=1.0, ge=0)
    # A worker reads its partitions in step in event time: one more than this far ahead of the
    # slowest it owns with unread records is paused until that one catches up (a backlog read
    # otherwise runs some partitions months ahead of others, and slows as it goes; see
    # streams/kafka/alignment.py). 0 turns it off.
    partition_alignment_s: float = Field(default=86_400.0, ge=0)
    # Within that, a record more than this far in event time ahead of the slowest partition
    # this worker still has records to read from waits for a later batch (each partition in
    # offset order, never committed while held): a contact's events from several topics are
    # then scored near event-time order, instead of re-applying its journal for each one that
    # arrives behind (streams/kafka/in_step.py). Live records of caught-up partitions never
    # wait. 0 turns it off. The confluent engine only.
    in_step_slack_s: float = Field(default=60.0, ge=0)
    # A partition read to its end still holds the others back this long after it last brought a
    # record (Kafka Streams' max.task.idle.ms): events a producer writes to several topics at
    # once become visible milliseconds apart, and one read before an earlier one on another
    # topic could publish a decision at the wrong event. Live records never wait. 0: no wait.
    in_step_idle_ms: int = Field(default=250, ge=0, le=60_000)
    # How long the broker may hold the confluent worker's fetch when none of its partitions has
    # new records. A partition resumed after in-step pausing is fetched only once that fetch
    # returns, so a long wait stalls a backlog (100 ms: ~15% of a worker's time); a short one
    # costs an idle broker CPU (one idle worker: ~6.5% of a core at 25, ~3.5% at 100).
    fetch_wait_ms: int = Field(default=25, ge=1, le=5_000)
    # After Kafka was unreachable or slow, producers deliver what they held back (with its
    # original timestamps): partitions' caught-up claims count again only this long after.
    watermark_outage_recovery_s: float = Field(default=10.0, ge=0)
    # An account without firmographics holds at most this many points for them (then applies
    # the oldest without).
    account_max_waiting_points: int = Field(default=256, ge=1)

    # A record whose Kafka key names another profile than its body: scored where it lands, as a
    # record without a key is (its event time counts on that partition, so its account waits for
    # it: nothing reaches an account late); produced again under the right key (in order with the
    # contact's other events, but read after the partition's watermark passed it: its account
    # decides again at its last point, later than it would have); or dead-lettered.
    key_mismatch: KeyMismatch = "score"

    # The error policy (leadstream/engine/policy.py): an event that fails decoding or validation
    # is dead-lettered (or skipped, counted; or stops the worker); a Redis or Kafka failure is
    # retried with back-off until the dependency is back (or stops the worker, for a supervisor
    # that prefers restarts). Any other error stops the worker.
    on_invalid_event: Literal["dead_letter", "skip", "stop"] = "dead_letter"
    on_infrastructure_error: Literal["retry", "stop"] = "retry"

    # Consumer group membership. A stable id per worker process (e.g. its host name) makes it a
    # static member: restarted within the session timeout, it gets its partitions back without
    # a rebalance of the others.
    instance_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,200}$")
    session_timeout_s: float = Field(default=10.0, ge=6, le=300)

    # Prometheus metrics of `leadstream worker` and `leadstream route` on this port (unset: not
    # served); `leadstream ingest` serves its own on /metrics of its port.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # leadstream ingest (the Segment-compatible HTTP API): the write keys it accepts (comma
    # separated; a client sends one as HTTP basic auth user or as the body's writeKey), where it
    # listens, the mapping of Segment calls to events (None: config/ingest.yaml in the package),
    # and the origins a browser page may call it from.
    ingest_write_keys: SecretStr | None = None
    ingest_host: str = "127.0.0.1"
    ingest_port: int = Field(default=8088, ge=0, le=65535)
    ingest_mapping_path: Path | None = None
    ingest_cors_origins: str = "*"
    # Seconds ingest waits for Kafka to acknowledge a request's events before answering 503.
    ingest_ack_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # Tokens (comma separated) for the lookup API and the live page; both are off without one.
    lookup_tokens: SecretStr | None = None

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # confluent: a plain confluent-kafka loop, librdkafka fetching in C threads, records held back
    # to event-time order (kafka/in_step.py); faust: the faust agent (stream.take_events). Both
    # drive the same pipeline. confluent is the default: more events/s than faust on a backlog at
    # about half the CPU an event, and a third of its latency at half load (README,
    # "Configuration").
    worker_engine: Literal["faust", "confluent"] = "confluent"

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _servers_have_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"expected a redis://, rediss:// or unix:// URL, got {value!r}")
        return value

    @model_validator(mode="after")
    def _tls_files(self) -> Settings:
        """Certificate settings that cannot work are said at start-up, naming the variable."""
        for system in ("kafka", "redis"):
            cert, key = getattr(self, f"{system}_ssl_cert_file"), getattr(self, f"{system}_ssl_key_file")
            if (cert is None) != (key is None):
                raise ValueError(
                    f"LEADSTREAM_{system.upper()}_SSL_CERT_FILE and LEADSTREAM_{system.upper()}_SSL_KEY_FILE "
                    "go together: a client certificate needs its key"
                )
            for kind in ("ca", "cert", "key"):
                path = getattr(self, f"{system}_ssl_{kind}_file")
                if path is not None and not path.is_file():
                    raise ValueError(
                        f"LEADSTREAM_{system.upper()}_SSL_{kind.upper()}_FILE: no such file {path}"
                    )
        kafka_tls = any((self.kafka_ssl_ca_file, self.kafka_ssl_cert_file))
        if kafka_tls and self.kafka_security_protocol not in ("SSL", "SASL_SSL"):
            raise ValueError(
                "Kafka certificate files are set but LEADSTREAM_KAFKA_SECURITY_PROTOCOL is "
                f"{self.kafka_security_protocol}: set it to SSL or SASL_SSL"
            )
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"{self.kafka_security_protocol} needs LEADSTREAM_KAFKA_SASL_USERNAME and "
                "LEADSTREAM_KAFKA_SASL_PASSWORD (and LEADSTREAM_KAFKA_SASL_MECHANISM, default PLAIN)"
            )
        redis_tls = any((self.redis_ssl_ca_file, self.redis_ssl_cert_file))
        if redis_tls and not self.redis_url.startswith("rediss://"):
            raise ValueError(
                "Redis certificate files are set: LEADSTREAM_REDIS_URL must start with rediss://"
            )
        return self


def load_settings(env_file: str | Path | None = None, **overrides: object) -> Settings:
    """Read settings from the environment and the optional settings file."""
    chosen = env_file or os.environ.get(SETTINGS_FILE_VARIABLE)
    if chosen is not None and not Path(chosen).is_file():
        raise SettingsFileMissing(f"settings file {chosen} does not exist (set by {SETTINGS_FILE_VARIABLE})")
    try:
        return Settings(_env_file=chosen, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(str(exc)) from exc


SECRET_SETTINGS = frozenset(
    {"kafka_sasl_password", "kafka_ssl_key_password", "redis_password", "pseudonym_secret"}
)


def settings_to_env(settings: Settings) -> dict[str, str]:
    """The ``LEADSTREAM_*`` variables that reproduce ``settings`` in a child process."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(exclude_none=True).items():
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                env[f"LEADSTREAM_{name.upper()}__{sub.upper()}"] = str(sub_value)
        elif name in SECRET_SETTINGS:
            env[f"LEADSTREAM_{name.upper()}"] = getattr(settings, name).get_secret_value()
        else:
            env[f"LEADSTREAM_{name.upper()}"] = str(value)
    return env
