"""Segment Tracking API calls as leadstream events: pure, no I/O.

One call gives zero or more events (a ``group`` gives the account's firmographics and the
member's company; a ``screen`` or an unmapped ``track`` gives none). Every event is validated
with the same models the worker validates with, so a call the worker would dead-letter is
answered 400 here, with the reasons, before anything reaches Kafka.

Field by field (https://segment.com/docs/connections/spec/common/):
- ``userId`` -> contact_id, ``anonymousId`` -> anonymous_id, the email from ``traits.email``,
  ``context.traits.email`` or ``properties.email``;
- ``messageId`` -> event_id (a call without one gets an id derived from its content, so a
  client's retry is still recognised as the same event);
- ``timestamp`` -> occurred_at; without it ``originalTimestamp`` corrected for the client's clock
  (``receivedAt - sentAt``, as Segment does), else the time ingest received it;
- ``context.campaign`` -> the UTM context, ``context.page.referrer`` -> its referrer.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from pydantic import TypeAdapter, ValidationError

from leadstream.ingest.mapping import IngestMapping
from leadstream.schemas.events import AccountFirmographics, AnyEvent, Event
from leadstream.scoring.fit import TRAIT_FIELDS
from leadstream.tools.generator import TOPIC_OF_TYPE, record_key

__all__ = [
    "CALL_TYPES",
    "MAX_BATCH_BYTES",
    "MAX_CALL_BYTES",
    "CallRejected",
    "Translation",
    "translate",
    "translate_batch",
]

CALL_TYPES = ("page", "screen", "track", "identify", "group", "alias")
# Segment's limits: 32 KB per call, 500 KB per batch request.
MAX_CALL_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
_NAMESPACE = uuid.UUID("0e6f8a51-43b5-4f7c-9a2f-6d7b1e5c2a90")
_EVENT: TypeAdapter[AnyEvent] = TypeAdapter(Event)
_ACCOUNT: TypeAdapter[AccountFirmographics] = TypeAdapter(AccountFirmographics)
_NOT_ID = re.compile(r"[^a-z0-9_.-]+")


class CallRejected(ValueError):
    """A call that cannot become events; ``reasons`` say why, one line each."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass(slots=True)
class Translation:
    """What one call (or a batch) becomes: Kafka records by topic kind, and what was ignored."""

    records: list[tuple[str, bytes, bytes]] = field(default_factory=list)  # (topic kind, key, value)
    ignored: list[str] = field(default_factory=list)  # why, one per ignored call

    def extend(self, other: Translation) -> None:
        self.records.extend(other.records)
        self.ignored.extend(other.ignored)


def translate_batch(body: Any, mapping: IngestMapping, received_at: datetime) -> Translation:
    """A ``/v1/batch`` body; any invalid call rejects the whole request (nothing is produced),
    with every call's reasons prefixed by its index."""
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise CallRejected(['a batch request is an object with a "batch" array of calls'])
    out, reasons = Translation(), list[str]()
    for index, call in enumerate(body["batch"]):
        try:
            out.extend(translate(call, mapping, received_at, body.get("sentAt"), body.get("context")))
        except CallRejected as exc:
            reasons.extend(f"batch[{index}]: {reason}" for reason in exc.reasons)
    if reasons:
        raise CallRejected(reasons)
    return out


def translate(
    call: Any,
    mapping: IngestMapping,
    received_at: datetime,
    sent_at: Any = None,
    batch_context: Any = None,
    call_type: str | None = None,
) -> Translation:
    """One call (``call_type`` given by the endpoint, else the call's ``type``)."""
    if not isinstance(call, dict):
        raise CallRejected(["a call is a JSON object"])
    kind = call_type or call.get("type")
    if kind not in CALL_TYPES:
        raise CallRejected([f"type must be one of {', '.join(CALL_TYPES)}, got {kind!r}"])
    try:
        size = len(orjson.dumps(call))
    except TypeError as exc:  # an integer beyond 64 bits: no field of ours takes one
        raise CallRejected([f"the call holds a value JSON cannot carry here: {exc}"]) from None
    if size > MAX_CALL_BYTES:
        raise CallRejected([f"the call is over Segment's {MAX_CALL_BYTES // 1024} KB limit"])
    if isinstance(batch_context, dict) and not isinstance(call.get("context"), dict):
        call = {**call, "context": batch_context}
    out = Translation()
    if kind == "screen":
        out.ignored.append("screen")
        return out
    envelope = _envelope(call, received_at, call.get("sentAt", sent_at))
    events: list[dict[str, Any]]
    if kind == "page":
        events = [_page(call, envelope)]
    elif kind == "track":
        found = _track(call, envelope, mapping)
        if found is None:
            out.ignored.append(f"track {call.get('event')!r}")
            return out
        events = [found]
    elif kind == "identify":
        events = [_identify(call, envelope)]
    elif kind == "alias":
        events = [_alias(call, envelope)]
    else:
        events = _group(call, envelope)
    for event in events:
        out.records.append(_validated(event))
    return out


def _validated(event: dict[str, Any]) -> tuple[str, bytes, bytes]:
    value = orjson.dumps(event)
    try:
        if event["type"] == "account":
            _ACCOUNT.validate_json(value)
        else:
            _EVENT.validate_json(value)
    except ValidationError as exc:
        raise CallRejected(
            [
                f"{'.'.join(str(p) for p in e['loc'][1:] if p != event['type']) or event['type']}: {e['msg']}"
                for e in exc.errors()
            ]
        ) from exc
    return TOPIC_OF_TYPE[event["type"]], record_key(event).encode(), value


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _moment(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise CallRejected([f"{what} is not an ISO 8601 time: {value!r}"]) from None
    if moment.tzinfo is None:
        raise CallRejected([f"{what} has no time zone: {value!r} (add Z or an offset)"])
    return moment


def _event_time(call: dict[str, Any], received_at: datetime, sent_at: Any) -> datetime:
    stamp = _moment(call.get("timestamp"), "timestamp")
    if stamp is not None:
        return stamp
    original = _moment(call.get("originalTimestamp"), "originalTimestamp")
    sent = _moment(sent_at, "sentAt")
    if original is not None and sent is not None:
        return received_at - (sent - original)  # the client's clock skew taken out
    return original or received_at


def _event_id(call: dict[str, Any]) -> str:
    message_id = call.get("messageId")
    if isinstance(message_id, str) and message_id:
        return message_id
    # Derived from the content: a retry of the same call is the same event.
    return str(uuid.uuid5(_NAMESPACE, orjson.dumps(call, option=orjson.OPT_SORT_KEYS).decode()))


def _email(call: dict[str, Any]) -> str | None:
    context = _dict(call.get("context"))
    for source in (call.get("traits"), context.get("traits"), call.get("properties")):
        found = _text(_dict(source).get("email"))
        if found:
            return found
    return None


def _envelope(call: dict[str, Any], received_at: datetime, sent_at: Any) -> dict[str, Any]:
    user_id, anonymous_id = call.get("userId"), call.get("anonymousId")
    envelope: dict[str, Any] = {
        "event_id": _event_id(call),
        "occurred_at": _event_time(call, received_at, sent_at).astimezone(UTC).isoformat(),
    }
    if user_id not in (None, ""):
        envelope["contact_id"] = str(user_id)
    if anonymous_id not in (None, ""):
        envelope["anonymous_id"] = str(anonymous_id)
    email = _email(call)
    if email:
        envelope["email"] = email
    if not ("contact_id" in envelope or "anonymous_id" in envelope or email):
        raise CallRejected(["a call needs userId, anonymousId or an email in its traits"])
    context = _dict(call.get("context"))
    campaign = _dict(context.get("campaign"))
    touch = {
        "utm_source": _text(campaign.get("source")),
        "utm_medium": _text(campaign.get("medium")),
        "utm_campaign": _text(campaign.get("name")),
        "referrer": _text(_dict(context.get("page")).get("referrer"))
        or _text(_dict(context.get("referrer")).get("url")),
    }
    touch = {k: v for k, v in touch.items() if v is not None}
    if touch:
        envelope["context"] = touch
    return envelope


def _page(call: dict[str, Any], envelope: dict[str, Any]) -> dict[str, Any]:
    properties, page = _dict(call.get("properties")), _dict(_dict(call.get("context")).get("page"))
    url = _text(properties.get("url")) or _text(page.get("url"))
    if url is None:
        path = _text(properties.get("path")) or _text(page.get("path"))
        if path is None:
            raise CallRejected(["a page call needs properties.url (or context.page.url, or a path)"])
        url = path if path.startswith("/") else f"/{path}"
    event = {**envelope, "type": "page_view", "url": url}
    title = _text(properties.get("title")) or _text(page.get("title")) or _text(call.get("name"))
    if title:
        event["title"] = title
    referrer = _text(properties.get("referrer"))
    if referrer and "referrer" not in event.get("context", {}):
        event["context"] = {**event.get("context", {}), "referrer": referrer}
    return event


def _slug(name: str) -> str:
    return _NOT_ID.sub("_", name.strip().lower()).strip("_")[:128] or "track"


def _track(call: dict[str, Any], envelope: dict[str, Any], mapping: IngestMapping) -> dict[str, Any] | None:
    name = call.get("event")
    if not isinstance(name, str) or not name.strip():
        raise CallRejected(["a track call needs an event name"])
    found = mapping.track.get(name.strip())
    if found is None:
        if mapping.unmapped_track == "reject":
            raise CallRejected([f"track event {name!r} is not in the ingest mapping"])
        return None
    properties = _dict(call.get("properties"))
    event = {**envelope, "type": found.type}
    if found.type == "form_submission":
        event["form_id"] = str(properties.get("form_id") or _slug(name))
        event["form_type"] = found.form_type
        fields = {
            k: str(v)
            for k, v in properties.items()
            if k in TRAIT_FIELDS and isinstance(v, str | int | float) and not isinstance(v, bool)
        }
        if fields:
            event["fields"] = fields
    elif found.type == "webinar":
        webinar = properties.get("webinar_id") or properties.get("webinarId")
        if webinar in (None, ""):
            raise CallRejected([f"track {name!r} is a webinar event: it needs properties.webinar_id"])
        event["webinar_id"] = str(webinar)
        event["action"] = found.action
    else:
        event["action"] = found.action
    return event


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | str):
        try:
            return int(float(str(value).replace(",", "")))
        except ValueError:
            return None
    return None


def _traits(raw: dict[str, Any]) -> dict[str, Any]:
    """Segment's reserved traits (and their company object) as leadstream's contact traits;
    traits leadstream does not score are left out."""
    company = raw.get("company")
    company = company if isinstance(company, dict) else {"name": company} if isinstance(company, str) else {}
    address = _dict(raw.get("address"))
    country = _text(address.get("country")) or _text(raw.get("country"))
    traits = {
        "first_name": _text(raw.get("firstName")) or _text(raw.get("first_name")),
        "last_name": _text(raw.get("lastName")) or _text(raw.get("last_name")),
        "job_title": _text(raw.get("title")) or _text(raw.get("job_title")) or _text(raw.get("jobTitle")),
        "department": _text(raw.get("department")),
        "country": country.upper() if country and len(country) == 2 and country.isalpha() else None,
        "region": _text(raw.get("region")) or _text(address.get("region")),
        "company_name": _text(company.get("name")) or _text(raw.get("company_name")),
        "industry": _text(raw.get("industry")) or _text(company.get("industry")),
        "employees": _int(raw.get("employees", company.get("employee_count", company.get("employees")))),
        "annual_revenue": _int(raw.get("annual_revenue", company.get("annual_revenue"))),
        "company_stage": _text(raw.get("company_stage")) or _text(company.get("stage")),
    }
    return {k: v for k, v in traits.items() if v is not None}


def _identify(call: dict[str, Any], envelope: dict[str, Any]) -> dict[str, Any]:
    # RudderStack's SDKs send an identify's traits in context.traits; Segment's in traits.
    raw = {**_dict(_dict(call.get("context")).get("traits")), **_dict(call.get("traits"))}
    return {**envelope, "type": "identify", "traits": _traits(raw)}


def _alias(call: dict[str, Any], envelope: dict[str, Any]) -> dict[str, Any]:
    """``previousId`` (the anonymous id a visitor had) becomes part of ``userId``'s contact."""
    previous, user = call.get("previousId"), call.get("userId")
    if previous in (None, "") or user in (None, ""):
        raise CallRejected(["an alias call needs previousId and userId"])
    event = {k: v for k, v in envelope.items() if k != "anonymous_id"}
    return {**event, "type": "identify", "anonymous_id": str(previous), "traits": {}}


def _domain(traits: dict[str, Any]) -> str | None:
    for name in ("domain", "website"):
        text = _text(traits.get(name))
        if text:
            host = urlsplit(text if "://" in text else f"//{text}").hostname or ""
            return host.removeprefix("www.") or None
    return None


def _group(call: dict[str, Any], envelope: dict[str, Any]) -> list[dict[str, Any]]:
    """The account's firmographics, and (for a known user) the user's company."""
    group_id, traits = call.get("groupId"), _dict(call.get("traits"))
    if group_id in (None, ""):
        raise CallRejected(["a group call needs groupId"])
    domain = _domain(traits)
    if domain is None:
        raise CallRejected(["a group call needs traits.domain or traits.website (the account's domain)"])
    account = {
        "type": "account",
        "account_id": str(group_id),
        "domain": domain,
        "name": _text(traits.get("name")),
        "industry": _text(traits.get("industry")),
        "employees": _int(traits.get("employees")),
        "annual_revenue": _int(traits.get("annual_revenue")),
        "region": _text(traits.get("region")),
        "company_stage": _text(traits.get("company_stage")),
        "updated_at": envelope["occurred_at"],
    }
    member = {
        **envelope,
        "event_id": f"{envelope['event_id']}:member",
        "type": "identify",
        "company_domain": domain,
        "traits": {},
    }
    return [{k: v for k, v in account.items() if v is not None}, member]
