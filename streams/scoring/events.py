"""Events as the scoring core reads them: compiled classes holding what the schema validated.

pydantic validates every event (schemas/events.py stays the one contract), but a field read on
a pydantic model is a generic attribute lookup through the model's ``__getattr__`` hook (~430
instructions) and the engine reads ~56 fields an event; on a compiled class a read is a load
from the object (~40). So decoding hands the core these copies: the same class names, the same
fields with the same values, built once an event (:func:`from_model`, from the model's
``__dict__``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Union

from leadstream.schemas import events as schema
from leadstream.schemas.events import url_path
from leadstream.scoring.state import event_fingerprint

__all__ = [
    "AnyEvent",
    "ContactTraits",
    "Envelope",
    "FormSubmission",
    "Identify",
    "PageView",
    "SalesOutcome",
    "TouchContext",
    "TrialEvent",
    "WebinarEvent",
    "address_domain",
    "core_event",
    "from_model",
]


class TouchContext:
    """Where a visit came from (schema.TouchContext)."""

    def __init__(
        self, utm_source: str | None, utm_medium: str | None, utm_campaign: str | None, referrer: str | None
    ) -> None:
        self.utm_source = utm_source
        self.utm_medium = utm_medium
        self.utm_campaign = utm_campaign
        self.referrer = referrer

    def given(self) -> dict[str, str]:
        """The fields that hold a value, in the schema's order (``model_dump(exclude_none=True)``)."""
        out: dict[str, str] = {}
        if self.utm_source is not None:
            out["utm_source"] = self.utm_source
        if self.utm_medium is not None:
            out["utm_medium"] = self.utm_medium
        if self.utm_campaign is not None:
            out["utm_campaign"] = self.utm_campaign
        if self.referrer is not None:
            out["referrer"] = self.referrer
        return out


class ContactTraits:
    """What we know about a person and their company (schema.ContactTraits), as the fields that
    hold a value, in the schema's order."""

    def __init__(self, given: list[tuple[str, str | int]]) -> None:
        self.given = given


class Envelope:
    """What every event carries (schema._Envelope)."""

    def __init__(self, fields: dict[str, Any]) -> None:
        """The envelope's fields, from a validated model's ``__dict__``."""
        context = fields["context"]
        self.event_id: str = fields["event_id"]
        self.occurred_at: datetime = fields["occurred_at"]
        self.contact_id: str | None = fields["contact_id"]
        self.email: str | None = fields["email"]
        self.anonymous_id: str | None = fields["anonymous_id"]
        self.company_domain: str | None = fields["company_domain"]
        self.context: TouchContext | None = None
        if context is not None:
            given: dict[str, Any] = context.__dict__
            self.context = TouchContext(
                given["utm_source"], given["utm_medium"], given["utm_campaign"], given["referrer"]
            )
        self.email_display: str | None = fields["email_display"]
        self.type: str = fields["type"]
        # Read when the event is planned and again when it is applied: hashed once, here (a
        # cache keyed by id cost a third as much again, and every event id is new to it).
        self.fingerprint: int = event_fingerprint(self.event_id)

    @property
    def email_domain(self) -> str | None:
        return address_domain(self.email)


class PageView(Envelope):
    def __init__(self, base: dict[str, Any], url: str, title: str | None) -> None:
        super().__init__(base)
        self.url = url
        self.title = title

    @property
    def path(self) -> str:
        """The URL's path, lower-cased, without query or fragment ('/pricing')."""
        return url_path(self.url)


class FormSubmission(Envelope):
    def __init__(self, base: dict[str, Any], form_id: str, form_type: str, fields: dict[str, str]) -> None:
        super().__init__(base)
        self.form_id = form_id
        self.form_type = form_type
        self.fields = fields


class TrialEvent(Envelope):
    def __init__(self, base: dict[str, Any], action: str) -> None:
        super().__init__(base)
        self.action = action


class WebinarEvent(Envelope):
    def __init__(self, base: dict[str, Any], webinar_id: str, action: str) -> None:
        super().__init__(base)
        self.webinar_id = webinar_id
        self.action = action


class SalesOutcome(Envelope):
    def __init__(
        self, base: dict[str, Any], outcome: str, reason: str | None, handoff_id: str | None, rep: str | None
    ) -> None:
        super().__init__(base)
        self.outcome = outcome
        self.reason = reason
        self.handoff_id = handoff_id
        self.rep = rep


class Identify(Envelope):
    def __init__(self, base: dict[str, Any], traits: ContactTraits, previous_ids: list[str]) -> None:
        super().__init__(base)
        self.traits = traits
        self.previous_ids = previous_ids


AnyEvent = Union[PageView, FormSubmission, TrialEvent, WebinarEvent, Identify, SalesOutcome]  # noqa: UP007

_TRAITS: Final = tuple(schema.ContactTraits.model_fields)


def address_domain(email: str | None) -> str | None:
    """An address's domain: what the event model's ``email_domain`` says (a test holds the two
    equal), in compiled code."""
    return email.rsplit("@", 1)[1] if email else None


def core_event(event: AnyEvent | schema.AnyEvent) -> AnyEvent:
    """``event`` as the core reads it: the copy itself, or a copy of a validated model (what a
    caller of the public ``score`` may hand it)."""
    if isinstance(event, Envelope):
        return event
    return from_model(event)


def from_model(model: schema.AnyEvent) -> AnyEvent:
    """The scoring core's copy of a validated event. Read from the model's ``__dict__`` (where
    pydantic keeps the fields): one generic lookup, then a dictionary's, instead of one generic
    lookup a field."""
    fields: dict[str, Any] = model.__dict__
    kind = fields["type"]
    if kind == "page_view":
        return PageView(fields, fields["url"], fields["title"])
    if kind == "form_submission":
        return FormSubmission(fields, fields["form_id"], fields["form_type"], fields["fields"])
    if kind == "identify":
        held: dict[str, Any] = fields["traits"].__dict__  # all scalars, no extras
        given = [(name, held[name]) for name in _TRAITS if held[name] is not None]
        return Identify(fields, ContactTraits(given), fields["previous_ids"])
    if kind == "trial":
        return TrialEvent(fields, fields["action"])
    if kind == "webinar":
        return WebinarEvent(fields, fields["webinar_id"], fields["action"])
    if kind == "sales_outcome":
        return SalesOutcome(fields, fields["outcome"], fields["reason"], fields["handoff_id"], fields["rep"])
    raise TypeError(f"not an event model: {type(model).__name__}")
