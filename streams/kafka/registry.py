"""The model registry: scoring model versions, the active one and its history, on a compacted
Kafka topic (``leadstream.models``, one partition) that every worker follows.

Records, each keyed so compaction keeps what matters:

- ``version/<V>``: a registered version, its YAML text, who registered it, when, why. Immutable:
  registering another text under the same version is refused.
- ``active``: the version workers score with, and the whole history of promotions and rollbacks
  (who, when, why), so the latest record alone tells the story.
- ``freeze``: a window (until a date) in which promoting needs ``--force`` and a reason.

Workers read the topic at start-up (the active version wins over the model file) and poll it
between batches: a promotion or a rollback takes effect at a batch boundary, without a restart.
Each worker says which version it runs in Redis (``{prefix}:{models:running}``).
"""

from __future__ import annotations

import difflib
import getpass
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from leadstream.config.loader import parse_model
from leadstream.config.model import ScoringModel
from leadstream.config.settings import Settings
from leadstream.errors import RegistryError
from leadstream.kafka.clients import make_consumer, make_producer

__all__ = [
    "Registry",
    "RegistryError",
    "RegistryFollower",
    "diff",
    "freeze",
    "listing",
    "promote",
    "read_registry",
    "register",
    "rollback",
    "running_key",
    "shadow",
]

logger = logging.getLogger(__name__)
ACTIVE, FREEZE, SHADOW, VERSION_PREFIX = "active", "freeze", "shadow", "version/"


@dataclass(slots=True)
class Registry:
    """The registry as its latest record per key says."""

    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    active: dict[str, Any] | None = None
    freeze: dict[str, Any] | None = None
    shadow: dict[str, Any] | None = None

    @property
    def shadow_version(self) -> str | None:
        return (self.shadow or {}).get("version")

    @property
    def active_version(self) -> str | None:
        return self.active["version"] if self.active else None

    def take(self, key: str, value: bytes | None) -> None:
        record = json.loads(value) if value else None
        if key == ACTIVE:
            self.active = record
        elif key == FREEZE:
            self.freeze = record
        elif key == SHADOW:
            self.shadow = record
        elif key.startswith(VERSION_PREFIX) and record is not None:
            self.versions[key[len(VERSION_PREFIX) :]] = record

    def model(self, version: str) -> ScoringModel:
        record = self.versions.get(version)
        if record is None:
            raise RegistryError(f"model version {version!r} is not registered (see `leadstream models list`)")
        return parse_model(record["yaml"], f"registry:{version}")

    def frozen_until(self, now: float) -> str | None:
        until = (self.freeze or {}).get("until")
        if until and datetime.fromisoformat(until).timestamp() > now:
            return str(until)
        return None


def _consumer(settings: Settings) -> Consumer:
    # Assigned, never subscribed: no group is joined, nothing is committed.
    group = f"leadstream-registry-{uuid.uuid4().hex[:8]}"
    consumer = make_consumer(settings, group, **{"enable.partition.eof": True})
    consumer.assign([TopicPartition(settings.topics.models, 0, OFFSET_BEGINNING)])
    return consumer


def read_registry(settings: Settings, timeout_s: float = 15.0) -> Registry:
    """The registry as of now: the topic read from its start to its end."""
    registry = Registry()
    consumer = _consumer(settings)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == error._PARTITION_EOF:
                    return registry
                if error.code() == error.UNKNOWN_TOPIC_OR_PART:
                    return registry  # nothing registered yet
                continue
            registry.take((message.key() or b"").decode(), message.value())
        raise RegistryError(
            f"could not read the model registry ({settings.topics.models}) within {timeout_s:.0f}s: "
            "is Kafka up (scripts/stack up)?"
        )
    finally:
        consumer.close()


class RegistryFollower:
    """A worker's view of the registry, polled between batches."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.registry = Registry()
        self._consumer: Consumer | None = None

    def catch_up(self) -> Registry:
        self.registry = read_registry(self._settings)
        return self.registry

    def poll(self) -> bool:
        """Take the records published since the last poll; True when the active or the shadow
        version changed."""
        if self._consumer is None:
            self._consumer = _consumer(self._settings)
        before = (self.registry.active_version, self.registry.shadow_version)
        for message in self._consumer.consume(200, 0):
            if message.error() is None:
                self.registry.take((message.key() or b"").decode(), message.value())
        return (self.registry.active_version, self.registry.shadow_version) != before

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()


def _publish(settings: Settings, key: str, record: dict[str, Any]) -> None:
    producer = make_producer(settings)
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    producer.produce(
        settings.topics.models, key=key.encode(), value=json.dumps(record).encode(), on_delivery=delivered
    )
    if producer.flush(30) or failures:
        raise RegistryError(f"the registry did not take the record: {failures or 'timed out'}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def register(settings: Settings, text: str, source: str, reason: str | None = None) -> str:
    """Register a model file's text under its version; return the version."""
    model = parse_model(text, source)  # refuses an invalid model with file:line reasons
    registry = read_registry(settings)
    held = registry.versions.get(model.version)
    if held is not None:
        if held["yaml"] == text:
            return model.version  # the same text again: nothing to do
        raise RegistryError(
            f"model version {model.version!r} is already registered with other content: versions are "
            "immutable, bump `version` in the file"
        )
    record = {"version": model.version, "yaml": text, "at": _now(), "by": _who(), "reason": reason}
    _publish(settings, VERSION_PREFIX + model.version, record)
    return model.version


def _set_active(
    settings: Settings, registry: Registry, version: str, action: str, reason: str | None
) -> None:
    history = list((registry.active or {}).get("history", []))
    entry = {"action": action, "version": version, "at": _now(), "by": _who(), "reason": reason}
    history.append(entry)
    _publish(settings, ACTIVE, {**entry, "history": history})


def promote(
    settings: Settings, version: str, force: bool = False, reason: str | None = None, now: float | None = None
) -> None:
    registry = read_registry(settings)
    registry.model(version)  # registered and valid
    frozen = registry.frozen_until(time.time() if now is None else now)
    if frozen and not force:
        raise RegistryError(
            f"promotions are frozen until {frozen} ({_freeze_reason(registry)}): promote with "
            "--force --reason '...' if it must happen now"
        )
    if force and not reason:
        raise RegistryError("--force needs --reason: a promotion inside a freeze is recorded with its why")
    _set_active(
        settings, registry, version, "promote" if not frozen else "promote (forced in freeze)", reason
    )


def rollback(settings: Settings, reason: str | None = None) -> str:
    """Make the version active before the current one active again; return it."""
    registry = read_registry(settings)
    history = (registry.active or {}).get("history", [])
    current = registry.active_version
    earlier = [h["version"] for h in history[:-1] if h["version"] != current]
    if not earlier:
        raise RegistryError("nothing to roll back to: no other version was ever active")
    _set_active(settings, registry, earlier[-1], "rollback", reason)
    return str(earlier[-1])


def freeze(settings: Settings, until: datetime | None, reason: str | None = None) -> None:
    record = {"until": until.isoformat() if until else None, "at": _now(), "by": _who(), "reason": reason}
    _publish(settings, FREEZE, record)


def shadow(settings: Settings, version: str | None, reason: str | None = None) -> None:
    """Score ``version`` beside the active one on every worker (None: stop)."""
    if version is not None:
        read_registry(settings).model(version)  # registered and valid
    _publish(settings, SHADOW, {"version": version, "at": _now(), "by": _who(), "reason": reason})


def diff(registry: Registry, a: str, b: str) -> str:
    left, right = registry.versions.get(a), registry.versions.get(b)
    for name, record in ((a, left), (b, right)):
        if record is None:
            raise RegistryError(f"model version {name!r} is not registered")
    assert left is not None and right is not None
    return "".join(
        difflib.unified_diff(
            left["yaml"].splitlines(keepends=True), right["yaml"].splitlines(keepends=True), a, b
        )
    )


def listing(registry: Registry, now: float) -> list[str]:
    lines = []
    active = registry.active_version
    for version, record in sorted(registry.versions.items(), key=lambda kv: kv[1]["at"]):
        mark = "*" if version == active else " "
        why = f"  ({record['reason']})" if record.get("reason") else ""
        lines.append(f"{mark} {version:<40} registered {record['at']} by {record['by']}{why}")
    if not lines:
        lines.append("no model registered yet: `leadstream models register FILE`")
    if registry.active:
        a = registry.active
        why = f": {a['reason']}" if a.get("reason") else ""
        lines.append(f"active: {a['version']} ({a['action']} {a['at']} by {a['by']}{why})")
    if registry.shadow_version:
        lines.append(f"shadow: {registry.shadow_version} (scored beside the active one, never routed)")
    frozen = registry.frozen_until(now)
    if frozen:
        lines.append(f"frozen until {frozen}: {_freeze_reason(registry)}")
    return lines


def _freeze_reason(registry: Registry) -> str:
    return str((registry.freeze or {}).get("reason") or "no reason given")


def running_key(prefix: str) -> str:
    """The Redis hash saying which model version each worker runs (for operators and tests)."""
    return f"{prefix}:{{models:running}}"
