"""Builders for events in tests: JSON-ready dicts, as producers send them."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from leadstream.schemas.events import Event
from leadstream.scoring.accounts import Release
from leadstream.scoring.events import from_model

# Thirty days ago, 09:00 UTC: recent enough for the event-age policy whenever the tests run.
T0 = (datetime.now(UTC) - timedelta(days=30)).replace(hour=9, minute=0, second=0, microsecond=0)
_ids = itertools.count()
_EVENT: TypeAdapter[Any] = TypeAdapter(Event)


def at(days: float = 0.0, hours: float = 0.0) -> str:
    return (T0 + timedelta(days=days, hours=hours)).isoformat().replace("+00:00", "Z")


def _base(kind: str, contact: str, when: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"ev-{next(_ids)}",
        "type": kind,
        "occurred_at": when,
        "contact_id": contact,
        **fields,
    }


def page(contact: str, path: str, when: str, **fields: Any) -> dict[str, Any]:
    return _base("page_view", contact, when, url=f"https://vendor.example{path}", **fields)


def form(contact: str, form_type: str, when: str, **fields: Any) -> dict[str, Any]:
    return _base("form_submission", contact, when, form_id=f"f-{form_type}", form_type=form_type, **fields)


def trial(contact: str, action: str, when: str) -> dict[str, Any]:
    return _base("trial", contact, when, action=action)


def webinar(contact: str, action: str, when: str) -> dict[str, Any]:
    return _base("webinar", contact, when, webinar_id="w1", action=action)


def identify(contact: str, when: str, email: str, **traits: Any) -> dict[str, Any]:
    return _base("identify", contact, when, email=email, traits=traits)


GOOD_FIT = {"job_title": "VP Marketing", "industry": "software", "employees": 400, "region": "emea"}


def buyer_journey(
    contact: str,
    start_day: float = 0.0,
    spread_days: float = 1.0,
    domain: str = "acme-labs.com",
    traits: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """A good-fit buyer: identify, pricing twice, a case study, then a demo request."""
    step = spread_days / 4
    return [
        identify(contact, at(start_day), f"ana@{domain}", **(traits or GOOD_FIT)),
        page(contact, "/pricing", at(start_day + step)),
        page(contact, "/pricing", at(start_day + 2 * step)),
        page(contact, "/case-studies/x", at(start_day + 3 * step)),
        form(contact, "demo_request", at(start_day + 4 * step)),
    ]


def parse(event: dict[str, Any]) -> Any:
    """The event as the scoring core gets it (validated, then its compiled copy)."""
    return from_model(_EVENT.validate_python(event))


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def account(domain: str, when: str, account_id: str | None = None, **firmographics: Any) -> dict[str, Any]:
    """A record for the accounts topic."""
    return {
        "account_id": account_id or f"acct-{domain}",
        "domain": domain,
        "updated_at": when,
        **(firmographics or {"industry": "software", "employees": 400, "region": "emea"}),
    }


def engaged_member(contact: str, domain: str, title: str, day: float = 0.0) -> list[dict[str, Any]]:
    """A contact at ``domain`` who engages enough to count toward a buying group (a webinar and a
    case study: 35 points, far above a member's bar) but not enough to be an MQL on their own."""
    return [
        identify(contact, at(day), f"{contact}@{domain}", job_title=title),
        webinar(contact, "attended", at(day + 0.4)),
        page(contact, "/case-studies/member", at(day + 0.5)),
    ]


class Releasing(Release):
    """The stream's progress as a function says (the watermarks' stand-in in unit tests): which
    account points and journal closes it allows."""

    def __init__(self, allows: Callable[[float, float | None], bool]) -> None:
        self._allows = allows

    def allows(self, at: float, record_time: float | None) -> bool:
        return self._allows(at, record_time)
