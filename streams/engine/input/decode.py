"""Bytes to validated events, with the event policy applied; every failure is an InvalidEvent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError
from pydantic_core import SchemaValidator

from leadstream.config.model import EventPolicy
from leadstream.engine.records import SourceRecord
from leadstream.errors import InvalidEvent
from leadstream.schemas.events import AccountFirmographics, Event, normalise_email
from leadstream.scoring.epoch import epoch
from leadstream.scoring.events import AnyEvent, Identify, from_model

__all__ = [
    "DAY_S",
    "REKEYED_HEADER",
    "UNREADABLE_HEADER",
    "EventLimits",
    "contact_key_of",
    "decode_event",
    "decode_firmographics",
    "direct_validator",
    "identity_links",
    "key_mismatch",
    "parse_event",
]


def direct_validator(adapter: TypeAdapter[Any]) -> Callable[[bytes], Any]:
    """``adapter.validate_json``, as pydantic-core's own method: the adapter's is a Python method
    that only passes its keyword defaults on (a Python call and six keywords a record, ~1.5k
    instructions). The same validation and the same ``ValidationError``; the adapter's own
    method if its validator is not built (a deferred schema)."""
    validator = adapter.validator
    if isinstance(validator, SchemaValidator):
        return validator.validate_json
    return adapter.validate_json


# Validated by pydantic (the schema is the contract), handed on as the scoring core's copy.
_EVENT: Final[TypeAdapter[Any]] = TypeAdapter(Event)
_VALIDATE_EVENT: Final = direct_validator(_EVENT)
DAY_S: Final = 86_400.0


UNREADABLE_HEADER: Final = "leadstream.unreadable"  # set by processors/unreadable.py


@dataclass(frozen=True, slots=True)
class EventLimits:
    """The event policy's limits as decoding reads them: a field of the pydantic policy read from
    compiled code is a generic attribute lookup (~400-860 instructions; a worker's event read
    three), so the pipeline takes this copy once a model (``of``). Equal and hashing alike when
    the limits are, as the policies are: a backtest's models share the decodes of the same
    limits (tools/backtest.py)."""

    max_event_bytes: int
    max_future_seconds: float
    max_age_days: float

    @classmethod
    def of(cls, policy: EventPolicy) -> EventLimits:
        return cls(policy.max_event_bytes, policy.max_future_seconds, policy.max_age_days)


def decode_event(record: SourceRecord, policy: EventPolicy | EventLimits) -> AnyEvent:
    """Decode and validate one record; raise InvalidEvent saying what is wrong."""
    limits = policy if isinstance(policy, EventLimits) else EventLimits.of(policy)
    value = record.value
    for name, reason in record.headers:
        if name == UNREADABLE_HEADER:
            raise InvalidEvent("unreadable", reason.decode("utf-8", "replace"))
    if value is None:
        raise InvalidEvent("schema", "the record has no value (a tombstone is not an event)")
    if len(value) > limits.max_event_bytes:
        raise InvalidEvent("size", f"event is {len(value)} bytes; the limit is {limits.max_event_bytes}")
    try:
        event = from_model(_VALIDATE_EVENT(value))
    except ValidationError as exc:
        raise InvalidEvent(_reason(exc), _describe(exc)) from exc
    if record.timestamp_ms is not None:
        _check_time(epoch(event.occurred_at), record.timestamp_ms / 1000.0, limits)
    return event


def parse_event(value: bytes) -> AnyEvent:
    """An event that was validated before (a contact's journal): the model, no policy checks."""
    return from_model(_VALIDATE_EVENT(value))


def _reason(exc: ValidationError) -> str:
    return "json" if any(e["type"] == "json_invalid" for e in exc.errors()) else "schema"


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        location = ".".join(str(p) for p in error["loc"]) or "event"
        parts.append(f"{location}: {error['msg']}")
    more = exc.error_count() - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _check_time(occurred: float, produced: float, limits: EventLimits) -> None:
    """Compare event time with the record's produce time (never the wall clock: replays agree)."""
    if occurred > produced + limits.max_future_seconds:
        raise InvalidEvent(
            "timestamp",
            f"occurred_at is {occurred - produced:.0f}s after the record was produced "
            f"(limit {limits.max_future_seconds:.0f}s): check the producer's clock and time zone",
        )
    if occurred < produced - limits.max_age_days * DAY_S:
        raise InvalidEvent(
            "timestamp",
            f"occurred_at is {(produced - occurred) / DAY_S:.0f} days before the record was produced "
            f"(limit {limits.max_age_days:.0f} days)",
        )


REKEYED_HEADER: Final = "leadstream.rekeyed_from"


def key_mismatch(record: SourceRecord, event: AnyEvent) -> str | None:
    """The key the record should have had, when its Kafka key names another profile than its
    body (the contact's id, else ``email:<address>``, else ``anon:<id>``); None when it matches
    or has no key. An ``email:`` key is compared normalised, as the body's address is."""
    if record.key is None:
        return None
    expected = contact_key_of(event)
    key = record.key.decode("utf-8", "replace")
    if key.startswith("email:"):
        key = "email:" + normalise_email(key[len("email:") :])
    return None if key == expected else expected


def contact_key_of(event: AnyEvent) -> str:
    """The contact an event belongs to: its id, else its email, else its anonymous id."""
    if event.contact_id:
        return str(event.contact_id)
    if event.email:
        return f"email:{event.email}"
    return f"anon:{event.anonymous_id}"


_ACCOUNT: Final[TypeAdapter[AccountFirmographics]] = TypeAdapter(AccountFirmographics)
_VALIDATE_ACCOUNT: Final = direct_validator(_ACCOUNT)


def decode_firmographics(
    record: SourceRecord, policy: EventPolicy | EventLimits
) -> AccountFirmographics | None:
    """An accounts-topic record; ``None`` for a tombstone (the compacted topic deleting an account)."""
    limits = policy if isinstance(policy, EventLimits) else EventLimits.of(policy)
    value = record.value
    for name, reason in record.headers:
        if name == UNREADABLE_HEADER:
            raise InvalidEvent("unreadable", reason.decode("utf-8", "replace"))
    if value is None:
        return None
    if len(value) > limits.max_event_bytes:
        raise InvalidEvent("size", f"record is {len(value)} bytes; the limit is {limits.max_event_bytes}")
    try:
        account: AccountFirmographics = _VALIDATE_ACCOUNT(value)
    except ValidationError as exc:
        raise InvalidEvent(_reason(exc), _describe(exc)) from exc
    produced = record.timestamp_ms / 1000.0 if record.timestamp_ms is not None else None
    if produced is not None and account.updated_at.timestamp() > produced + limits.max_future_seconds:
        # A version valid from the future would move every member's decision time ahead of the
        # stream. (An old updated_at is fine: a CRM record can be years old and still true.)
        raise InvalidEvent(
            "timestamp",
            f"updated_at is {account.updated_at.timestamp() - produced:.0f}s after the record was "
            f"produced (limit {limits.max_future_seconds:.0f}s): check the producer's clock and time zone",
        )
    return account


def identity_links(event: AnyEvent) -> list[str]:
    """Other profile ids an identity-bearing event says belong to its contact.

    Only identify and form events link: they are where a visitor becomes known. Page views that
    carry both ids are routed by the contact id and link nothing, which keeps the hot path lean.
    """
    if not event.contact_id or event.type not in ("identify", "form_submission"):
        return []
    links = []
    if event.anonymous_id:
        links.append(f"anon:{event.anonymous_id}")
    if event.email:
        links.append(f"email:{event.email}")
    if type(event) is Identify:  # not getattr with a default: a pydantic model's miss raises inside
        links.extend(event.previous_ids)
    return [link for link in links if link != event.contact_id]
