"""Planted ground truth for generated journeys: who would buy, whatever any model says.

Each contact gets a hidden propensity, a logistic function of what it did (each occurrence
weighted by its recency at the contact's last event: half of it after ``RECENCY_HALF_LIFE_DAYS``,
at most ``MAX_COUNTED`` occurrences' worth per signal) and who it is, with the weights below
(documented, so a test can check that a fitted model recovers their ranking; anonymous events
count for the contact a later event links them to). Its sales outcome follows the propensity:
accepted by sales with probability ``p``, then won
with probability ``sigmoid(z - WIN_OFFSET)``, else lost; not accepted: rejected. The outcome
falls a few days after the contact's last event. Deterministic for a seed.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "BIAS",
    "COMPETITORS",
    "FIT_WEIGHTS",
    "GOOD_INDUSTRIES",
    "MAX_COUNTED",
    "MEASURED_BY",
    "PERSONAL",
    "RECENCY_HALF_LIFE_DAYS",
    "SENIOR",
    "SIGNAL_WEIGHTS",
    "WIN_OFFSET",
    "features",
    "planted_outcomes",
    "propensity",
    "signal_of",
]

# Per occurrence, at most MAX_COUNTED occurrences of a signal count.
SIGNAL_WEIGHTS: dict[str, float] = {
    "demo_request": 2.4,
    "trial_signup": 1.6,
    "trial_activated": 1.0,
    "webinar_attended": 0.7,
    "bottom_funnel": 0.6,
    "pricing_view": 0.5,
    "content_download": 0.1,
    "blog_read": 0.05,
    "newsletter": 0.05,
    "careers_page": -0.8,
}
FIT_WEIGHTS: dict[str, float] = {
    "senior": 0.9,
    "good_industry": 0.8,
    "good_size": 0.6,
    "personal_mail": -0.7,
    "student": -4.0,
    "competitor": -4.0,
}
BIAS = -5.0
WIN_OFFSET = 1.5
MAX_COUNTED = 3
RECENCY_HALF_LIFE_DAYS = 21.0
# The planted signals and the default model's engagement rules that measure them: how a fitted
# model's weights are compared with the planted ones (tests, bench/calibration.py).
MEASURED_BY: dict[str, str] = {
    "demo_request": "demo_request",
    "trial_signup": "trial_signup",
    "trial_activated": "trial_activated",
    "webinar_attended": "webinar_attended",
    "bottom_funnel": "bottom_funnel_content",
    "pricing_view": "pricing_page_repeat",
    "careers_page": "careers_page",
}
GOOD_INDUSTRIES = {"software", "saas", "fintech", "financial_services", "healthcare_it", "ecommerce"}
SENIOR = re.compile(
    r"\b(vp|vice president|chief|ceo|cto|cfo|coo|cmo|cro|cio|founder|director|head of)\b", re.I
)
PERSONAL = {"gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com"}
COMPETITORS = {"rivalsoft.com", "leadrival.io"}


def signal_of(event: dict[str, Any]) -> str | None:
    """The planted signal an event counts as, if any."""
    kind = event.get("type")
    if kind == "page_view":
        path = "/" + str(event.get("url", "")).split("://", 1)[-1].split("/", 1)[-1]
        if path.startswith(("/pricing", "/plans")):
            return "pricing_view"
        if path.startswith(("/case-studies", "/customers", "/roi", "/compare", "/vs")):
            return "bottom_funnel"
        if path.startswith("/blog"):
            return "blog_read"
        if path.startswith(("/careers", "/jobs")):
            return "careers_page"
        return None
    if kind == "form_submission":
        form = event.get("form_type")
        if form in ("demo_request", "contact_sales"):
            return "demo_request"
        if form == "newsletter":
            return "newsletter"
        if form in ("ebook", "whitepaper", "content_download"):
            return "content_download"
        return None
    if kind == "trial":
        return "trial_signup" if event.get("action") == "signup" else "trial_activated"
    if kind == "webinar" and event.get("action") in ("attended", "watched_recording"):
        return "webinar_attended"
    return None


def features(events: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per contact id: its planted features (signal counts, capped, and fit attributes)."""
    events = list(events)
    # A visitor's anonymous events are the contact's once an event names both: the person did them.
    known = {
        e["anonymous_id"]: e["contact_id"] for e in events if e.get("anonymous_id") and e.get("contact_id")
    }
    firmographics: dict[str, dict[str, Any]] = {}
    counts: dict[str, list[tuple[str, float]]] = {}  # contact -> (signal, epoch seconds)
    who: dict[str, dict[str, float]] = {}
    for event in events:
        if event.get("type") == "account" or ("domain" in event and "type" not in event):
            firmographics[str(event.get("domain"))] = event
            continue
        contact = event.get("contact_id") or known.get(event.get("anonymous_id") or "")
        if not contact:
            continue
        counts.setdefault(contact, [])
        attributes = who.setdefault(contact, {})
        email = str(event.get("email") or "")
        if "@" in email:
            domain = email.rsplit("@", 1)[1].lower()
            attributes["domain:" + domain] = 1.0
        title = str((event.get("traits") or {}).get("job_title") or "")
        if title and SENIOR.search(title):
            attributes["senior"] = 1.0
        signal = signal_of(event)
        if signal is not None and event.get("occurred_at"):
            counts[contact].append((signal, _epoch(event["occurred_at"])))
    out: dict[str, dict[str, float]] = {}
    for contact, signals in counts.items():
        attributes = who.get(contact, {})
        last = max((at for _signal, at in signals), default=0.0)
        weighed: Counter[str] = Counter()
        for signal, at in signals:
            weighed[signal] += 0.5 ** ((last - at) / (RECENCY_HALF_LIFE_DAYS * 86_400))
        row = {name: min(weighed.get(name, 0.0), float(MAX_COUNTED)) for name in SIGNAL_WEIGHTS}
        domains = [k[7:] for k in attributes if k.startswith("domain:")]
        domain = domains[0] if domains else ""
        company = firmographics.get(domain, {})
        row["senior"] = attributes.get("senior", 0.0)
        row["good_industry"] = float(company.get("industry") in GOOD_INDUSTRIES)
        row["good_size"] = float(50 <= int(company.get("employees") or 0) <= 5000)
        row["personal_mail"] = float(domain in PERSONAL)
        row["student"] = float(domain.endswith(".edu") or domain.startswith("student."))
        row["competitor"] = float(domain in COMPETITORS)
        out[contact] = row
    return out


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def propensity(row: dict[str, float]) -> float:
    """The planted log-odds of a contact becoming a customer."""
    z = BIAS + sum(SIGNAL_WEIGHTS[name] * row.get(name, 0.0) for name in SIGNAL_WEIGHTS)
    return z + sum(FIT_WEIGHTS[name] * row.get(name, 0.0) for name in FIT_WEIGHTS)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def planted_outcomes(events: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """One sales outcome per contact (``sales_outcome`` events, in time order), and for the
    accepted ones a second: closed won or lost."""
    rng = random.Random(f"outcomes/{seed}")
    last: dict[str, str] = {}
    for event in events:
        contact = event.get("contact_id")
        if contact and event.get("occurred_at"):
            last[contact] = max(last.get(contact, ""), event["occurred_at"])
    out = []
    for contact, row in sorted(features(events).items()):
        z = propensity(row)
        when = datetime.fromisoformat(last[contact].replace("Z", "+00:00")) + timedelta(
            days=rng.uniform(2, 10)
        )
        accepted = rng.random() < _sigmoid(z)
        out.append(_outcome(contact, "accepted" if accepted else "rejected", when))
        if accepted:
            won = rng.random() < _sigmoid(z - WIN_OFFSET)
            closed = when + timedelta(days=rng.uniform(10, 60))
            out.append(_outcome(contact, "closed_won" if won else "closed_lost", closed))
    out.sort(key=lambda e: (e["occurred_at"], e["event_id"]))
    return out


def _outcome(contact: str, outcome: str, when: datetime) -> dict[str, Any]:
    return {
        "event_id": f"planted-{contact}-{outcome}",
        "type": "sales_outcome",
        "occurred_at": when.isoformat().replace("+00:00", "Z"),
        "contact_id": contact,
        "outcome": outcome,
    }
