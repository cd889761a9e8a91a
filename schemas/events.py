"""Input events: one envelope (id, time, who, which company) and one model per event type.

Every input topic accepts every event type; the ``type`` field decides the model. Validation is
strict: unknown fields, naive timestamps and oversized strings are errors, so a producer bug shows
up in the dead-letter topic instead of silently scoring zero.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasPath, AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

__all__ = [
    "EMAIL",
    "EVENT_TYPES",
    "INVISIBLE",
    "AccountFirmographics",
    "ContactTraits",
    "Domain",
    "Event",
    "FormSubmission",
    "Id",
    "Identify",
    "PageView",
    "SalesOutcome",
    "Text",
    "TouchContext",
    "TrialEvent",
    "WebinarEvent",
    "normalise_domain",
    "normalise_email",
    "url_path",
]

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
Domain = Annotated[str, Field(min_length=3, max_length=253, pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")]
Text = Annotated[str, Field(max_length=1024)]
EMAIL = re.compile(r"^[^@\s]{1,64}@([a-z0-9-]+(\.[a-z0-9-]+)+)$")
# Characters that render as nothing: zero-width spaces and joiners, the soft hyphen, word
# joiners and invisible operators, the byte-order mark, and the bidirectional controls (marks,
# embeddings, overrides, isolates). Two addresses that differ only by these are one person.
INVISIBLE = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def normalise_domain(value: str) -> str:
    """NFKC, invisible characters removed, lower-cased, internationalised names in their ASCII
    (punycode) form, so one company is one domain however it was typed."""
    if value.isascii():  # most names: NFKC leaves ASCII as it is and no invisible one is ASCII
        return value.strip().lower().rstrip(".")
    return _unicode_domain(value)


def normalise_email(value: str) -> str:
    """An address as an identity: NFKC, invisible characters removed, lower-cased, the domain as
    :func:`normalise_domain` gives it. The address as typed is kept for display."""
    text = value.strip() if value.isascii() else _unicode_text(value)
    local, at, domain = text.rpartition("@")
    if not at:
        return text.lower()
    return f"{local.lower()}@{normalise_domain(domain)}"


# An event's address and company repeat (every event of a contact carries its email; a
# company's people share its domain): each distinct one is normalised and checked once. The
# validators below were a third of decoding an event.
_normalised_email = lru_cache(maxsize=16_384)(normalise_email)
_normalised_domain = lru_cache(maxsize=16_384)(normalise_domain)


@lru_cache(maxsize=16_384)
def _is_email(value: str) -> bool:
    return EMAIL.match(value) is not None


def _unicode_text(value: str) -> str:
    return INVISIBLE.sub("", unicodedata.normalize("NFKC", value)).strip()


def _unicode_domain(value: str) -> str:
    text = _unicode_text(value).lower().rstrip(".")
    try:
        return text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError:
        return text  # not a valid name: the pattern check says so


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class TouchContext(_Strict):
    """Where a visit came from: UTM parameters and referrer (first touch is built from these)."""

    utm_source: Text | None = None
    utm_medium: Text | None = None
    utm_campaign: Text | None = None
    referrer: Text | None = None


class _Envelope(_Strict):
    event_id: Id
    occurred_at: AwareDatetime
    contact_id: Id | None = None
    email: Annotated[str, Field(max_length=254)] | None = None
    anonymous_id: Id | None = None
    company_domain: Domain | None = None
    context: TouchContext | None = None
    # ``email`` as it was typed (``email`` itself is normalised): read from the same input field,
    # so producers cannot set it, and never serialised.
    email_display: SkipJsonSchema[str | None] = Field(
        default=None, validation_alias=AliasPath("email"), exclude=True
    )

    @field_validator("email_display", mode="before")
    @classmethod
    def _as_typed(cls, value: object) -> object:
        return value.strip()[:254] if isinstance(value, str) else None

    @field_validator("email", mode="before")
    @classmethod
    def _normalise_email(cls, value: object) -> object:
        # Normalised and checked in one call (a validator call is ~0.4 µs of every event's
        # decoding); the length bound is checked after it, on the normalised address.
        if not isinstance(value, str):
            return value
        normalised = _normalised_email(value)
        if not _is_email(normalised):
            raise ValueError(f"not an email address: {normalised!r}")
        return normalised

    @field_validator("company_domain", mode="before")
    @classmethod
    def _normalise_domain(cls, value: object) -> object:
        return _normalised_domain(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _someone(self) -> _Envelope:
        if not (self.contact_id or self.email or self.anonymous_id):
            raise ValueError("one of contact_id, email or anonymous_id is required")
        return self

    @property
    def email_domain(self) -> str | None:
        return self.email.rsplit("@", 1)[1] if self.email else None


class PageView(_Envelope):
    type: Literal["page_view"]
    url: Annotated[str, Field(min_length=1, max_length=2048)]
    title: Text | None = None

    @property
    def path(self) -> str:
        """The URL's path, lower-cased, without query or fragment ('/pricing')."""
        return url_path(self.url)


# Asked for three or four times per page view (rule matching, recent signals, top pages), and
# the same pages come back from visitor to visitor: split once per distinct URL. The compiled
# scoring core calls this rather than ``PageView.path``: a property is a Python call (~1k
# instructions), the cache's answer a C one.
@lru_cache(maxsize=8192)
def url_path(url: str) -> str:
    """``url``'s path, lower-cased, without query or fragment ('/pricing')."""
    return (urlsplit(url).path or "/").lower()


class FormSubmission(_Envelope):
    """A form fill. ``form_type`` drives scoring; ``fields`` may carry contact traits."""

    type: Literal["form_submission"]
    form_id: Id
    form_type: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
    fields: dict[Annotated[str, Field(max_length=64)], Text] = Field(default_factory=dict, max_length=50)


class TrialEvent(_Envelope):
    type: Literal["trial"]
    action: Literal["signup", "activated", "invited_teammate", "usage_milestone", "expired", "converted"]


class WebinarEvent(_Envelope):
    type: Literal["webinar"]
    webinar_id: Id
    action: Literal["registered", "attended", "asked_question", "watched_recording"]


class SalesOutcome(_Envelope):
    """What sales did with a lead, from the CRM, on the feedback topic (keyed by contact id)."""

    type: Literal["sales_outcome"]
    outcome: Literal["accepted", "rejected", "opportunity_created", "closed_won", "closed_lost"]
    reason: Text | None = None
    handoff_id: Id | None = None
    rep: Id | None = None


class ContactTraits(_Strict):
    """What we know about a person and their company; every field optional."""

    first_name: Text | None = None
    last_name: Text | None = None
    job_title: Text | None = None
    department: Text | None = None
    country: Annotated[str, Field(max_length=2, pattern=r"^[A-Z]{2}$")] | None = None
    region: Annotated[str, Field(max_length=32)] | None = None
    company_name: Text | None = None
    industry: Annotated[str, Field(max_length=64)] | None = None
    employees: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    annual_revenue: Annotated[int, Field(ge=0)] | None = None
    company_stage: Annotated[str, Field(max_length=32)] | None = None


class Identify(_Envelope):
    """Contact traits from a CRM, an enrichment service or a form."""

    type: Literal["identify"]
    traits: ContactTraits
    # Other contact ids known to be this same person (e.g. a CRM merge): their scores merge in.
    previous_ids: list[Id] = Field(default_factory=list, max_length=20)


class AccountFirmographics(_Strict):
    """A company's firmographics; the accounts topic is compacted by account id."""

    type: Literal["account"] = "account"
    account_id: Id
    domain: Domain
    name: Text | None = None
    industry: Annotated[str, Field(max_length=64)] | None = None
    employees: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    annual_revenue: Annotated[int, Field(ge=0)] | None = None
    region: Annotated[str, Field(max_length=32)] | None = None
    company_stage: Annotated[str, Field(max_length=32)] | None = None
    updated_at: AwareDatetime


# Every event a contact can receive, as a type (what decoding returns)...
AnyEvent = PageView | FormSubmission | TrialEvent | WebinarEvent | Identify | SalesOutcome
# ...and as the discriminated union pydantic validates with.
Event = Annotated[AnyEvent, Field(discriminator="type")]
EVENT_TYPES = ("page_view", "form_submission", "trial", "webinar", "identify", "sales_outcome")
