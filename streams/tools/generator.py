"""Synthetic B2B journeys (``leadstream generate``): deterministic for a seed.

Accounts with firmographics; contacts with titles; real buyers, trial users, researchers and
tire-kickers, webinar fans, job seekers, competitors, students, personal-mail sign-ups and
anonymous visitors. Events are returned in event-time order as JSON-ready dicts.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "BLOG",
    "COMMITTEE_TITLES",
    "CONTENT",
    "DEFAULT_START",
    "GOOD_INDUSTRIES",
    "NAMESPACE",
    "OTHER_INDUSTRIES",
    "OTHER_TITLES",
    "PERSONAS",
    "REGIONS",
    "SENIOR_TITLES",
    "SOURCES",
    "SUFFIXES",
    "TOPIC_OF_TYPE",
    "WORDS",
    "Account",
    "JourneyGenerator",
    "default_start",
    "record_key",
    "to_records",
]

NAMESPACE = uuid.UUID("0b5f6a4e-8f1d-4c2b-9d3e-1a7c5e9b2f40")
DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)

GOOD_INDUSTRIES = [
    "software",
    "saas",
    "fintech",
    "financial_services",
    "healthcare_it",
    "ecommerce",
]
OTHER_INDUSTRIES = ["retail", "construction", "education", "hospitality", "agriculture"]
REGIONS = ["north_america", "emea", "apac", "latam"]
SENIOR_TITLES = [
    "VP Marketing",
    "Director of Sales Operations",
    "Head of Growth",
    "CTO",
    "Chief Revenue Officer",
    "VP Engineering",
    "Director, Demand Generation",
]
OTHER_TITLES = [
    "Marketing Manager",
    "Software Engineer",
    "Sales Development Rep",
    "Analyst",
    "Product Designer",
    "Operations Lead",
    "Account Executive",
]
WORDS = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "stark",
    "wayne",
    "hooli",
    "vandelay",
    "soylent",
    "tyrell",
    "cyberdyne",
    "wonka",
    "massive",
    "aperture",
    "oscorp",
    "pied",
    "nakatomi",
    "gringotts",
    "monarch",
    "zenith",
]
SUFFIXES = ["labs", "io", "systems", "cloud", "data", "works", "hq", "group"]
CONTENT = [
    "/case-studies/retail-roi",
    "/customers/globex",
    "/roi-calculator",
    "/compare/hubspot",
    "/vs/marketo",
]
BLOG = ["/blog/lead-scoring-101", "/blog/mql-vs-sql", "/blog/buying-groups", "/blog/intent-data"]
SOURCES = [
    ("google", "cpc", "brand"),
    ("linkedin", "paid_social", "abm-q1"),
    ("newsletter", "email", "nov"),
    (None, None, None),
    (None, None, None),
]
PERSONAS = [  # (name, weight)
    ("buyer", 18),
    ("trial_user", 10),
    ("researcher", 27),
    ("webinar_fan", 10),
    ("job_seeker", 5),
    ("competitor", 5),
    ("student", 5),
    ("personal_mail", 5),
    ("anonymous", 10),
    ("converting_visitor", 5),
]
COMMITTEE_TITLES = ["VP Operations", "Director of Engineering", "Marketing Manager", "Software Engineer"]


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    domain: str
    name: str
    industry: str
    employees: int
    region: str


class JourneyGenerator:
    def __init__(
        self,
        seed: int,
        contacts: int,
        accounts: int | None = None,
        start: datetime = DEFAULT_START,
        days: float = 60.0,
        company_traits: bool = True,
    ) -> None:
        """``company_traits``: whether identify events say the contact's company's industry, size
        and region too; without them a contact's fit comes from its account's firmographics."""
        self.company_traits = company_traits
        self.rng = random.Random(seed)
        self.seed = seed
        self.contacts = contacts
        self.start = start
        self.days = days
        self.accounts = [self._account(i) for i in range(accounts or max(1, contacts // 4))]

    def _account(self, index: int) -> Account:
        rng = self.rng
        word = WORDS[index % len(WORDS)]
        name = f"{word}{index // len(WORDS) or ''}"
        good = rng.random() < 0.6
        return Account(
            account_id=f"acct-{self.seed}-{index:05d}",
            domain=f"{name}-{rng.choice(SUFFIXES)}.com",
            name=name.title(),
            industry=rng.choice(GOOD_INDUSTRIES if good else OTHER_INDUSTRIES),
            employees=rng.choice([120, 400, 800, 2500] if good else [5, 12, 20, 30000]),
            region=rng.choice(REGIONS),
        )

    def events(self) -> list[dict[str, Any]]:
        """Firmographics, then every journey's events; sorted by event time (ties by id).

        Besides the individual journeys, one account in eight (of those with a good fit) gets a
        buying committee: 3 or 4 people in different roles engaging within about two weeks.
        """
        out: list[dict[str, Any]] = [self._firmographics(a) for a in self.accounts]
        for index in range(self.contacts):
            out.extend(self._journey(index))
        index = self.contacts
        for number, account in enumerate(self.accounts):
            if number % 8 != 3 or account.industry not in GOOD_INDUSTRIES:
                continue
            start = self.start + timedelta(days=self.rng.uniform(0, self.days))
            for title in COMMITTEE_TITLES[: self.rng.choice([3, 4])]:
                out.extend(self._journey(index, "committee", account, title, start))
                index += 1
        out.sort(key=lambda e: (e.get("occurred_at") or e["updated_at"], e.get("event_id", "")))
        return out

    def _firmographics(self, account: Account) -> dict[str, Any]:
        return {
            "type": "account",
            "account_id": account.account_id,
            "domain": account.domain,
            "name": account.name,
            "industry": account.industry,
            "employees": account.employees,
            "region": account.region,
            "updated_at": (self.start - timedelta(days=1)).isoformat().replace("+00:00", "Z"),
        }

    def _journey(
        self,
        index: int,
        persona: str | None = None,
        account: Account | None = None,
        title: str | None = None,
        start: datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        rng = self.rng
        persona = persona or rng.choices([p for p, _ in PERSONAS], weights=[w for _, w in PERSONAS])[0]
        account = account or rng.choice(self.accounts)
        contact_id = f"c{self.seed}-{index:06d}"
        person = f"p{index}"
        email: str | None = f"{person}@{account.domain}"
        title = title or rng.choice(SENIOR_TITLES if rng.random() < 0.5 else OTHER_TITLES)
        if persona == "competitor":
            email, title = f"{person}@rivalsoft.com", "Product Marketing Manager"
        elif persona == "student":
            email, title = f"{person}@state.edu", "Student"
        elif persona == "personal_mail":
            email = f"{person}@gmail.com"
        clock = (start or self.start) + timedelta(days=rng.uniform(0, self.days if start is None else 7))
        counter = iter(range(10_000))
        source, medium, campaign = rng.choice(SOURCES)
        anonymous = persona in ("anonymous", "converting_visitor")
        anonymous_id = f"anon-{self.seed}-{index:06d}"
        touched = False

        def event(kind: str, gap_hours: float, **fields: Any) -> dict[str, Any]:
            nonlocal clock, touched
            clock += timedelta(hours=gap_hours * rng.uniform(0.5, 1.5))
            n = next(counter)
            body: dict[str, Any] = {
                "event_id": str(uuid.uuid5(NAMESPACE, f"{self.seed}/{index}/{n}")),
                "type": kind,
                "occurred_at": clock.isoformat().replace("+00:00", "Z"),
            }
            if anonymous:
                body["anonymous_id"] = anonymous_id
            else:
                body["contact_id"] = contact_id
                if email:
                    body["email"] = email
            if not touched and kind != "identify" and source:
                touched = True
                body["context"] = {
                    "utm_source": source,
                    "utm_medium": medium,
                    "utm_campaign": campaign,
                }
            body.update(fields)
            return body

        def page(path: str, gap_hours: float) -> dict[str, Any]:
            return event("page_view", gap_hours, url=f"https://www.example-vendor.com{path}")

        def form(form_type: str, gap_hours: float) -> dict[str, Any]:
            return event(
                "form_submission",
                gap_hours,
                form_id=f"f-{form_type}",
                form_type=form_type,
                fields={"job_title": title},
            )

        if not anonymous and persona != "personal_mail":
            traits: dict[str, Any] = {
                "job_title": title,
                "company_name": account.name,
                "industry": account.industry,
                "employees": account.employees,
                "region": account.region,
            }
            if persona in ("competitor", "student") or not self.company_traits:
                traits = {"job_title": title}
            extra = {} if persona in ("competitor", "student") else {"company_domain": account.domain}
            yield event("identify", 0.1, traits=traits, **extra)
        yield page(rng.choice(BLOG), 1)
        if persona == "committee":
            yield page("/pricing", 30)
            yield page(rng.choice(CONTENT), 40)
            yield event("webinar", 60, webinar_id="w-roi", action="attended")
        elif persona == "converting_visitor":
            yield page("/pricing", 20)
            yield page("/pricing", 30)
            yield page(rng.choice(CONTENT), 10)
            anonymous = False  # the visitor fills in the demo form: now known, both ids on the event
            yield event(
                "form_submission",
                5,
                form_id="f-demo_request",
                form_type="demo_request",
                anonymous_id=anonymous_id,
                fields={"job_title": title},
            )
        elif persona == "buyer":
            yield page("/pricing", 24)
            yield page(rng.choice(CONTENT), 20)
            yield page("/pricing", 30)
            if rng.random() < 0.5:
                yield event("webinar", 48, webinar_id="w-roi", action="attended")
            yield form("demo_request", 12)
        elif persona == "trial_user":
            yield page("/pricing", 10)
            yield event("trial", 5, action="signup")
            if rng.random() < 0.65:  # a third of trials are never activated
                yield event("trial", 20, action="activated")
            if rng.random() < 0.6:
                yield page("/pricing", 50)
                yield page("/pricing", 40)
        elif persona == "researcher":
            for _ in range(rng.randint(1, 4)):
                yield page(rng.choice(BLOG), 72)
            yield page("/pricing", 200)
            if rng.random() < 0.5:
                yield form("newsletter", 5)
            if rng.random() < 0.3:
                yield event("webinar", 100, webinar_id="w-trends", action="registered")
        elif persona == "webinar_fan":
            yield event("webinar", 24, webinar_id="w-roi", action="registered")
            yield event("webinar", 100, webinar_id="w-roi", action="attended")
            yield event("webinar", 0.5, webinar_id="w-roi", action="asked_question")
            yield page(rng.choice(CONTENT), 30)
        elif persona == "job_seeker":
            yield page("/careers", 2)
            yield page("/careers/sdr", 1)
        elif persona in ("competitor", "student"):
            yield page("/pricing", 5)
            yield page("/pricing", 5)
            yield page(rng.choice(CONTENT), 5)
            yield form("demo_request" if persona == "competitor" else "content_download", 3)
            yield event("trial", 5, action="signup")
        elif persona == "personal_mail":
            yield event("trial", 5, action="signup")
            yield page("/pricing", 24)
        else:  # anonymous
            for _ in range(rng.randint(1, 3)):
                yield page(rng.choice(["/pricing", *BLOG]), 30)


TOPIC_OF_TYPE = {
    "account": "accounts",
    "page_view": "page_views",
    "form_submission": "forms",
    "trial": "trials",
    "webinar": "webinars",
    "identify": "identify",
    "sales_outcome": "feedback",
}


def record_key(event: dict[str, Any]) -> str:
    """The Kafka key producers should use: the contact, so one contact stays on one partition
    (the account id for firmographics: the accounts topic is compacted by it)."""
    if event["type"] == "account":
        return str(event["account_id"])
    return str(
        event.get("contact_id")
        or (f"email:{event['email']}" if event.get("email") else f"anon:{event.get('anonymous_id')}")
    )


def to_records(events: list[dict[str, Any]], topics: Any) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) per event, keyed by contact. The record timestamp is left to the
    producer (now): event time lives in the payload, and Kafka's retention works on record time."""
    import json

    return [
        (
            getattr(topics, TOPIC_OF_TYPE[e["type"]]),
            record_key(e).encode(),
            json.dumps(e, separators=(",", ":")).encode(),
        )
        for e in events
    ]


def default_start(today: datetime | None = None) -> datetime:
    """120 days before today at midnight UTC: recent enough for any event-age policy, and early
    enough that the longest journey (starting up to 60 days in, then weeks of gaps) ends before
    now: an event from the future is dead-lettered by a worker (``max_future_seconds``)."""
    day = (today or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=120)
