"""Hostile records for the fault suite: what a careless or broken producer sends.

Each kind turns one valid event into a record. Most are invalid and must be dead-lettered with a
reason while the stream goes on; some are valid but messy (a duplicate, a wrong key, an address
with invisible characters) and must score exactly like the clean event.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

Event = dict[str, Any]
# kind -> (makes the record value from a valid event, whether it is valid)
Maker = Callable[[Event, random.Random], bytes | None]


def _dump(event: Any) -> bytes:
    return json.dumps(event).encode()


def _without(field: str) -> Maker:
    return lambda e, _r: _dump({k: v for k, v in e.items() if k != field})


def _with(field: str, value: Any) -> Maker:
    return lambda e, _r: _dump({**e, field: value})


def _envelope(event: Event) -> Event:
    """The fields every event type has, to build another type on."""
    keep = ("event_id", "occurred_at", "contact_id", "email", "anonymous_id")
    return {k: v for k, v in event.items() if k in keep}


def _as(kind: str, **fields: Any) -> Maker:
    return lambda e, _r: _dump({**_envelope(e), "type": kind, **fields})


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


INVALID: dict[str, Maker] = {
    "not_json": lambda _e, r: bytes(r.randrange(256) for _ in range(40)),
    "truncated_json": lambda e, _r: _dump(e)[: len(_dump(e)) // 2],
    "json_array": lambda e, _r: _dump([e]),
    "json_null": lambda _e, _r: b"null",
    "json_number": lambda _e, _r: b"42",
    "empty_value": lambda _e, _r: b"",
    "tombstone": lambda _e, _r: None,
    "no_event_id": _without("event_id"),
    "no_type": _without("type"),
    "unknown_type": _with("type", "purchase_intent_v9"),
    "no_occurred_at": _without("occurred_at"),
    "naive_time": _with("occurred_at", "2026-03-01T10:00:00"),
    "not_a_time": _with("occurred_at", "yesterday at noon"),
    "far_future": _with("occurred_at", "2099-01-01T00:00:00Z"),
    "too_old": _with("occurred_at", "1999-01-01T00:00:00Z"),
    "no_identity": lambda e, _r: _dump(
        {k: v for k, v in e.items() if k not in ("contact_id", "email", "anonymous_id")}
    ),
    "bad_email": _with("email", "not-an-address"),
    "email_too_long": _with("email", "a" * 300 + "@acme.io"),
    "oversized": _with("padding", "x" * 70_000),
    "unknown_field": _with("favourite_colour", "teal"),
    "event_id_not_string": _with("event_id", 12345),
    "contact_id_spaces": _with("contact_id", "has spaces in it"),
    "contact_id_control": _with("contact_id", "c\x00\x07"),
    "invalid_utf8": lambda e, _r: _dump(e)[:-1] + b'\xff\xfe"}',
    "nan_number": lambda e, _r: _dump(e)[:-1] + b', "n": NaN}',
    "deep_nesting": lambda _e, _r: _nested(5000),
    "page_without_url": _as("page_view"),
    "url_too_long": _as("page_view", url="https://x.io/" + "p" * 3000),
    "bad_form_type": _as("form_submission", form_id="f", form_type="Demo Request!!"),
    "unknown_trial_action": _as("trial", action="teleported"),
    "unknown_webinar_action": _as("webinar", webinar_id="w", action="dozed_off"),
    "negative_employees": _as("identify", traits={"employees": -5}),
    "bad_country": _as("identify", traits={"country": "france"}),
    "title_too_long": _as("identify", traits={"job_title": "CEO " * 400}),
    "outcome_unknown": _as("sales_outcome", outcome="maybe_later"),
    "bad_company_domain": _with("company_domain", "not a domain"),
}

# Valid but messy: (record value, record key) for a valid event; scored like the clean event.
MESSY = ("duplicate", "wrong_key", "invisible_email")


def invisible_email(event: Event) -> Event:
    """The same address with a zero-width space and a bidi mark in it, upper-cased."""
    email = event.get("email")
    if not email:
        return event
    local, _, domain = email.partition("@")
    return {**event, "email": f"{local[:1].upper()}\u200b{local[1:]}@\u200e{domain.upper()}"}


def hostile_records(
    events: list[Event], count: int, seed: int
) -> tuple[list[tuple[int, str, bytes | None, str]], int]:
    """``count`` invalid records, each made from a random valid event: (position among the valid
    events, kind, value, key). Returns them and how many must be dead-lettered (all of them)."""
    rng = random.Random(seed)
    kinds = sorted(INVALID)
    out = []
    for n in range(count):
        kind = kinds[n % len(kinds)]
        position = rng.randrange(len(events))
        source = events[position]
        out.append((position, kind, INVALID[kind](source, rng), str(source.get("contact_id") or "x")))
    return out, count
