"""The default model against the playbooks it claims to follow: the canonical MQL qualifies on
its demo request, a fitting trial with one more intent signal qualifies, each mid-funnel signal
makes a colleague count toward a buying group, and nurture reads, students, competitors and
stale intent never qualify anyone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from leadstream.config.loader import default_model_text, parse_model
from leadstream.config.settings import Topics
from leadstream.engine.pipeline import ScoringPipeline
from leadstream.engine.ports import MemorySink
from leadstream.engine.records import SourceRecord
from leadstream.state import MemoryStateStore
from tests.factories import account, at, encode, form, identify, page, trial, webinar

TOPICS = Topics()
MODEL = parse_model(default_model_text(), "default")
ICP = {"industry": "software", "employees": 220, "region": "north_america"}


class Engine:
    """The embedded engine on the default model, fed one batch at a time."""

    def __init__(self) -> None:
        self.sink = MemorySink()
        self.pipeline = ScoringPipeline(MemoryStateStore(), self.sink, MODEL, TOPICS)
        self.offset = 0

    def send(self, events: list[dict[str, Any]], topic: str = "in") -> None:
        batch = []
        for event in events:
            batch.append(SourceRecord(topic, 0, self.offset, encode(event)))
            self.offset += 1
        asyncio.run(self.pipeline.process(batch))

    def handoffs(self, kind: str) -> list[dict[str, Any]]:
        found = [json.loads(r.value) for r in self.sink.on_topic(TOPICS.handoffs)]
        return [h for h in found if h["kind"] == kind]


def _engine_with_account(domain: str = "initech.com", **firmographics: Any) -> Engine:
    engine = Engine()
    engine.send([account(domain, at(-30), **(firmographics or ICP))], TOPICS.accounts)
    return engine


@pytest.mark.parametrize("ask", ["demo_request", "contact_sales"])
def test_a_senior_buyer_at_an_icp_company_is_an_mql_on_the_demo_request(ask):
    engine = _engine_with_account()
    engine.send([identify("vp", at(0), "vp@initech.com", job_title="VP Sales Operations")])
    assert engine.handoffs("mql") == []
    request = form("vp", ask, at(1))
    engine.send([request])
    [mql] = engine.handoffs("mql")
    assert mql["triggering_event_id"] == request["event_id"]


@pytest.mark.parametrize(
    "intent",
    [
        lambda c: [page(c, "/case-studies/acme", at(2))],
        lambda c: [webinar(c, "attended", at(2))],
        lambda c: [trial(c, "activated", at(2))],
        lambda c: [page(c, "/pricing", at(2)), page(c, "/pricing", at(2, hours=3))],
    ],
    ids=["case-study", "webinar", "trial-activated", "pricing-twice"],
)
def test_a_fitting_trial_signup_with_one_more_intent_signal_qualifies(intent):
    engine = _engine_with_account()
    engine.send([identify("dir", at(0), "dir@initech.com", job_title="Director of Engineering")])
    engine.send([trial("dir", "signup", at(1))])
    assert engine.handoffs("mql") == [], "a trial signup alone is not an MQL"
    engine.send(intent("dir"))
    assert len(engine.handoffs("mql")) == 1


@pytest.mark.parametrize(
    "signal",
    [
        lambda c, d: [webinar(c, "attended", at(d))],
        lambda c, d: [page(c, "/pricing", at(d)), page(c, "/pricing", at(d, hours=2))],
        lambda c, d: [page(c, "/case-studies/globex", at(d))],
    ],
    ids=["webinar", "pricing-repeat", "case-study"],
)
def test_each_mid_funnel_signal_makes_a_colleague_count_toward_a_buying_group(signal):
    engine = _engine_with_account()
    colleagues = [("cto", "CTO"), ("dir", "Director of IT"), ("mgr", "IT Manager")]
    engine.send([identify(c, at(0), f"{c}@initech.com", job_title=t) for c, t in colleagues])
    # Two colleagues engage in ways of their own, the third only through the signal under test.
    engine.send(
        [webinar("cto", "attended", at(1)), page("dir", "/pricing", at(1)), page("dir", "/pricing", at(1.1))]
    )
    assert engine.handoffs("buying_group") == []
    engine.send(signal("mgr", 2))
    [group] = engine.handoffs("buying_group")
    assert {m["contact_id"] for m in group["members"]} >= {"cto", "dir", "mgr"}


def test_three_colleagues_through_a_webinar_pricing_views_and_a_case_study_form_a_buying_group():
    engine = _engine_with_account()
    engine.send(
        [
            identify("a", at(0), "a@initech.com", job_title="VP Finance"),
            identify("b", at(0), "b@initech.com", job_title="Head of Operations"),
            identify("c", at(0), "c@initech.com", job_title="Analyst"),
            webinar("a", "attended", at(1)),
            page("b", "/pricing", at(1)),
            page("b", "/pricing", at(1, hours=5)),
            page("c", "/case-studies/globex", at(2)),
        ]
    )
    assert len(engine.handoffs("buying_group")) == 1


def test_nurture_reads_never_qualify_anyone():
    engine = _engine_with_account()
    engine.send([identify("vp", at(0), "vp@initech.com", job_title="VP Marketing")])
    nurture = [page("vp", f"/blog/post-{n}", at(1 + n / 10)) for n in range(30)]
    nurture += [form("vp", "newsletter", at(5)), form("vp", "ebook", at(6)), form("vp", "whitepaper", at(7))]
    engine.send(nurture)
    assert engine.handoffs("mql") == []


@pytest.mark.parametrize(
    ("email", "domain"),
    [("kid@cs.stanford.edu", "cs.stanford.edu"), ("spy@rivalsoft.com", "rivalsoft.com")],
    ids=["student", "competitor"],
)
def test_students_and_competitors_never_qualify(email, domain):
    engine = _engine_with_account(domain)
    contact = email.split("@")[0]
    engine.send([identify(contact, at(0), email, job_title="VP Engineering")])
    engine.send(
        [
            form(contact, "demo_request", at(1)),
            trial(contact, "signup", at(1.5)),
            page(contact, "/pricing", at(2)),
            page(contact, "/pricing", at(2.1)),
        ]
    )
    assert engine.handoffs("mql") == []


def test_intent_six_months_old_does_not_qualify():
    engine = _engine_with_account()
    engine.send([identify("vp", at(0), "vp@initech.com", job_title="VP Sales")])
    # A trial and repeated pricing views half a year ago, nothing since but one case study.
    engine.send([trial("vp", "signup", at(1))])
    engine.send([page("vp", "/pricing", at(1.5)), page("vp", "/pricing", at(1.6))])
    before = len(engine.handoffs("mql"))
    engine.send([identify("vp2", at(0), "vp2@initech.com", job_title="VP Sales")])
    engine.send([trial("vp2", "signup", at(1))])
    engine.send([page("vp2", "/case-studies/acme", at(183))])
    assert before == 1, "fresh, the same intent qualifies"
    assert [h["contact_id"] for h in engine.handoffs("mql")] == ["vp"]
