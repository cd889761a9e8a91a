"""Buying groups and stitching through the batch pipeline over the in-memory store."""

from __future__ import annotations

import asyncio
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadstream.config.loader import load_model
from leadstream.config.settings import Topics
from leadstream.engine.pipeline import ScoringPipeline
from leadstream.engine.ports import MemorySink
from leadstream.engine.records import SourceRecord
from leadstream.scoring import ContactState, compile_model, score
from leadstream.scoring.accounts import account_of, role_of
from leadstream.scoring.engagement import engagement
from leadstream.scoring.firmographics import FirmographicsAsOf
from leadstream.scoring.merge import merge_contacts
from leadstream.state import MemoryStateStore
from leadstream.state.keys import account_key, contact_key
from leadstream.state.port import decode_account, decode_state
from tests.factories import T0, account, at, encode, engaged_member, form, identify, page, parse

MODEL = load_model()
COMPILED = compile_model(MODEL)
TOPICS = Topics()


class Harness:
    """A pipeline over memory; records get offsets per topic, as Kafka would give them."""

    def __init__(self) -> None:
        self.store, self.sink = MemoryStateStore(), MemorySink()
        self.pipeline = ScoringPipeline(self.store, self.sink, MODEL, TOPICS)
        self.offsets: dict[str, int] = {}

    def send(self, events, topic=TOPICS.page_views):
        batch = []
        for event in events:
            offset = self.offsets.get(topic, 0)
            self.offsets[topic] = offset + 1
            batch.append(SourceRecord(topic, 0, offset, encode(event)))
        asyncio.run(self.pipeline.process(batch))

    def handoffs(self, kind):
        return [
            h for h in (json.loads(r.value) for r in self.sink.on_topic(TOPICS.handoffs)) if h["kind"] == kind
        ]

    def contact(self, contact_id):
        key = contact_key("ls", contact_id)
        return asyncio.run(self.store.load([key]))[key]

    def account(self, domain):
        key = account_key("ls", domain)
        stored = asyncio.run(self.store.load([key]))[key]
        return decode_account(stored.value, stored.parts) if stored.value else None


def test_roles_and_accounts_from_traits():
    assert role_of(COMPILED, {"job_title": "VP Sales"}) == "decision_maker"
    assert role_of(COMPILED, {"job_title": "Director of IT"}) == "champion"
    assert role_of(COMPILED, {"job_title": "Marketing Manager"}) == "influencer"
    assert role_of(COMPILED, {"job_title": "Analyst"}) == "user"
    assert account_of(COMPILED, ContactState("c", email="a@acme.io")) == "acme.io"
    assert account_of(COMPILED, ContactState("c", email="a@gmail.com")) is None
    assert account_of(COMPILED, ContactState("c", email="a@gmail.com", company_domain="acme.io")) == "acme.io"
    assert account_of(COMPILED, ContactState("c", email="s@state.edu")) is None


def test_three_engaged_contacts_covering_roles_qualify_the_account_once():
    h = Harness()
    h.send([account("acme.io", at(0))], TOPICS.accounts)
    h.send(
        engaged_member("ceo", "acme.io", "CEO", 1) + engaged_member("dir", "acme.io", "Director of Ops", 2)
    )
    assert h.handoffs("buying_group") == []  # two engaged people are not a group yet
    h.send(engaged_member("eng", "acme.io", "Software Engineer", 3))
    groups = h.handoffs("buying_group")
    assert len(groups) == 1
    group = groups[0]
    assert group["account_id"] == "acct-acme.io" and group["reason"] == "buying_group"
    assert {m["contact_id"] for m in group["members"] if m["engaged"]} == {"ceo", "dir", "eng"}
    assert set(group["roles_covered"]) == {"decision_maker", "champion", "user"}
    assert group["roles_missing"] == ["influencer"]
    assert group["firmographics"]["industry"] == "software"
    h.send(engaged_member("mgr", "acme.io", "Marketing Manager", 4))  # still qualified: no new handoff
    assert len(h.handoffs("buying_group")) == 1


class AccountCommitDies(MemoryStateStore):
    """Once armed, dies at the next account commit: after the contacts' commit, before the account's."""

    armed = False

    async def commit(self, writes):
        if self.armed and any(":{a:" in w.key for w in writes):
            self.armed = False
            raise SystemExit("killed between the contact and the account commit")
        return await super().commit(writes)


def test_a_crash_between_contact_and_account_commits_loses_no_member():
    """Contacts' snapshots reach their account outside the outbox; when the batch dies after the
    contact commit, its records come again and the snapshots are sent again."""
    h = Harness()
    h.store = AccountCommitDies()
    h.pipeline = ScoringPipeline(h.store, h.sink, MODEL, TOPICS)
    h.send([account("acme.io", at(0))], TOPICS.accounts)
    h.store.armed = True
    journeys = (
        engaged_member("ceo", "acme.io", "CEO", 1)
        + engaged_member("dir", "acme.io", "Director of Ops", 2)
        + engaged_member("eng", "acme.io", "Software Engineer", 3)
    )
    records = [SourceRecord(TOPICS.page_views, 0, i, encode(e)) for i, e in enumerate(journeys)]
    try:
        asyncio.run(h.pipeline.process(records))
    except SystemExit:
        pass
    else:
        raise AssertionError("the account commit should have died")
    assert h.account("acme.io").members == {}  # the contacts were committed, the account was not
    assert h.contact("ceo").value is not None
    asyncio.run(h.pipeline.process(records))  # consumed again: every record is a duplicate now
    assert set(h.account("acme.io").members) == {"ceo", "dir", "eng"}
    assert len(h.handoffs("buying_group")) == 1
    # And once more (a reset to offset 0): the account holds those snapshots, nothing changes.
    key = account_key("ls", "acme.io")
    before = asyncio.run(h.store.load([key]))[key]
    asyncio.run(h.pipeline.process(records))
    after = asyncio.run(h.store.load([key]))[key]
    assert (after.version, after.value, after.parts) == (before.version, before.value, before.parts)
    assert len(h.handoffs("buying_group")) == 1


def test_engaged_contacts_of_different_accounts_qualify_none():
    h = Harness()
    h.send([account("a1.io", at(0)), account("a2.io", at(0))], TOPICS.accounts)
    h.send(engaged_member("x1", "a1.io", "CEO", 1) + engaged_member("x2", "a1.io", "Director", 1))
    h.send(engaged_member("y1", "a2.io", "Engineer", 1) + engaged_member("y2", "a2.io", "Analyst", 1))
    assert h.handoffs("buying_group") == []


def test_gmail_contacts_never_join_an_account():
    h = Harness()
    h.send([account("gmail.com", at(0))], TOPICS.accounts)
    for name in ("g1", "g2", "g3"):
        h.send(engaged_member(name, "gmail.com", "CEO", 1))
    assert h.account("gmail.com").members == {}
    assert h.handoffs("buying_group") == []


def test_firmographics_feed_contact_fit():
    h = Harness()
    h.send([account("fit.io", at(0), industry="saas", employees=300, region="emea")], TOPICS.accounts)
    journey = [
        identify("f1", at(1), "f1@fit.io", job_title="Engineer"),
        page("f1", "/pricing", at(1.1)),
        page("f1", "/pricing", at(1.2)),
        form("f1", "demo_request", at(1.3)),
    ]
    h.send(journey)
    [mql] = h.handoffs("mql")
    assert {r["rule"] for r in mql["fit"]["rules"]} == {
        "industry_match",
        "company_size_match",
        "target_region",
    }
    # One meaning per field name: account_id is the accounts topic's id on every handoff (None
    # until firmographics name one), the domain is account_domain (MQL) / domain (buying group).
    assert (mql["account_domain"], mql["account_id"]) == ("fit.io", "acct-fit.io")


def test_score_takes_firmographics_as_a_mapping_or_as_the_versioned_view():
    """A caller of ``score`` hands one table (domain -> values, in effect at every time); the
    timeline hands the versioned view as of the event. The same values decide alike."""
    values = {"industry": "saas", "employees": 300, "region": "emea"}
    state = ContactState("f1")
    for event in (identify("f1", at(1), "f1@fit.io", job_title="Engineer"), page("f1", "/pricing", at(1.1))):
        state = score(state, parse(event), MODEL, parse(event).occurred_at.timestamp()).state
    demo = parse(form("f1", "demo_request", at(1.3)))
    now = demo.occurred_at.timestamp()
    by_mapping = score(state, demo, MODEL, now, {"fit.io": values})
    by_view = score(state, demo, MODEL, now, FirmographicsAsOf({"fit.io": [(now - 60, values, None)]}, now))
    not_yet = score(state, demo, MODEL, now, FirmographicsAsOf({"fit.io": [(now + 60, values, None)]}, now))
    without = score(state, demo, MODEL, now)
    assert by_mapping.handoff is not None and by_view.handoff is not None
    assert by_mapping.handoff["fit"] == by_view.handoff["fit"]
    assert {r["rule"] for r in by_mapping.handoff["fit"]["rules"]} >= {"industry_match", "target_region"}
    for unknown in (not_yet, without):
        assert unknown.handoff is None or unknown.handoff["fit"] != by_view.handoff["fit"]


def anonymous_pricing_views():
    """Two pricing views of a visitor not known yet (anonymous id v1)."""
    views = [page("x", "/pricing", at(0), anonymous_id="v1"), page("x", "/pricing", at(1), anonymous_id="v1")]
    for event in views:
        del event["contact_id"]
    return views


def known_visitor_link():
    """The identify that names the visitor: contact "known", anonymous id v1."""
    link = identify("known", at(5), "k@acme.io", job_title="VP Marketing", industry="software", employees=400)
    link["anonymous_id"] = "v1"
    return link


def assert_views_counted_once(state, views):
    rule = state.rules["pricing_page_repeat"]
    assert rule.count == len(views)
    assert rule.times == [parse(v).occurred_at.timestamp() for v in views]
    assert "anon:v1" in state.linked


def test_anonymous_pricing_views_count_once_after_identification_decayed_from_then():
    h = Harness()
    anon = anonymous_pricing_views()
    h.send(anon)
    link = known_visitor_link()
    h.send([link], TOPICS.identify)
    state = decode_state(h.contact("known").value)
    assert_views_counted_once(state, anon)
    assert h.contact("anon:v1").alias == "known"
    # Decayed from when it happened: 4 days after the second visit, 30 * 2^(-4/14).
    value = engagement(COMPILED, state, parse(link).occurred_at.timestamp())[1]["pricing_page_repeat"]
    assert math.isclose(value, 30 * 2 ** (-4 / 14), rel_tol=1e-9)
    # Later anonymous events are routed to the contact, and the demo request qualifies it.
    later = page("x", "/case-studies/a", at(5.5), anonymous_id="v1")
    del later["contact_id"]
    h.send([later])
    h.send([form("known", "demo_request", at(6))], TOPICS.forms)
    state = decode_state(h.contact("known").value)
    assert state.rules["bottom_funnel_content"].count == 1
    assert [m["contact_id"] for m in h.handoffs("mql")] == ["known"]
    # The same link again merges nothing twice.
    again = dict(link, event_id="again")
    h.send([again], TOPICS.identify)
    assert decode_state(h.contact("known").value).rules["pricing_page_repeat"].count == 2


class ContactCommitDiesAfterAlias(MemoryStateStore):
    """Once armed, dies at the first contact commit after an alias commit: the stitched profile
    already points at its contact, whose merge was never committed."""

    armed = False

    async def commit(self, writes):
        if self.armed and any(w.value is not None for w in writes):
            self.armed = False
            raise SystemExit("killed between the alias and the contact commit")
        return await super().commit(writes)


@pytest.mark.parametrize("redelivery", ["apart", "together"])
def test_a_crash_between_alias_and_merge_counts_anonymous_views_once(redelivery):
    """The worker dies after aliasing an anonymous profile, before merging it: its records come
    again (at-least-once), now routed to the contact, and then the link merges the profile's
    state, which holds them already. Each view counts once, whichever comes first."""
    h = Harness()
    h.store = ContactCommitDiesAfterAlias()
    h.pipeline = ScoringPipeline(h.store, h.sink, MODEL, TOPICS)
    anon = anonymous_pricing_views()
    views = [SourceRecord(TOPICS.page_views, 0, i, encode(e)) for i, e in enumerate(anon)]
    asyncio.run(h.pipeline.process(views))  # applied to the anonymous profile; offsets not committed
    linking = [SourceRecord(TOPICS.identify, 0, 0, encode(known_visitor_link()))]
    h.store.armed = True
    with pytest.raises(SystemExit):
        asyncio.run(h.pipeline.process(linking))
    assert h.contact("anon:v1").alias == "known" and h.contact("known").value is None
    # A new worker: nothing was committed to Kafka, everything comes again.
    h.pipeline = ScoringPipeline(h.store, h.sink, MODEL, TOPICS)
    if redelivery == "apart":
        asyncio.run(h.pipeline.process(views))
        asyncio.run(h.pipeline.process(linking))
    else:
        asyncio.run(h.pipeline.process(views + linking))
    assert_views_counted_once(decode_state(h.contact("known").value), anon)


def test_two_contact_ids_of_one_person_merge():
    h = Harness()
    h.send([page("old-id", "/pricing", at(0)), page("old-id", "/pricing", at(1))])
    merge = identify("new-id", at(2), "p@acme.io", job_title="CTO")
    merge["previous_ids"] = ["old-id"]
    h.send([merge], TOPICS.identify)
    assert decode_state(h.contact("new-id").value).rules["pricing_page_repeat"].count == 2
    h.send([page("old-id", "/pricing", at(3))])
    assert decode_state(h.contact("new-id").value).rules["pricing_page_repeat"].count == 3


def test_replaying_everything_changes_nothing():
    h = Harness()
    events = (
        engaged_member("a", "r.io", "CEO", 1)
        + engaged_member("b", "r.io", "Director", 1)
        + engaged_member("c", "r.io", "Engineer", 1)
    )
    h.send([account("r.io", at(0))], TOPICS.accounts)
    h.send(events)
    before = (h.account("r.io"), len(h.sink.records))
    h.offsets.clear()  # a fresh consumer group: the same offsets again
    h.send([account("r.io", at(0))], TOPICS.accounts)
    h.send(events)
    assert (h.account("r.io"), len(h.sink.records)) == before


paths = st.sampled_from(["/pricing", "/case-studies/a", "/careers", "/blog/x"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(paths, st.floats(0, 60), st.booleans()), min_size=1, max_size=10))
def test_merging_equals_one_profile_seeing_every_event(visits):
    """Split a history between an anonymous profile and a contact; merging gives the same scores."""
    events = [
        page("c", path, (T0.replace() + __import__("datetime").timedelta(days=day)).isoformat())
        for path, day, _ in visits
    ]
    whole, anon, known = ContactState("c"), ContactState("anon:v"), ContactState("c")
    for event, (_, _, anonymous) in zip(events, visits, strict=True):
        parsed = parse(event)
        t = parsed.occurred_at.timestamp()
        whole = score(whole, parsed, MODEL, max(whole.clock, t)).state
        if anonymous:
            anon = score(anon, parsed, MODEL, max(anon.clock, t)).state
        else:
            known = score(known, parsed, MODEL, max(known.clock, t)).state
    merge_contacts(known, anon, "anon:v", COMPILED)
    later = max(whole.clock, known.clock) + 86_400
    assert math.isclose(
        engagement(COMPILED, known, later)[0],
        engagement(COMPILED, whole, later)[0],
        rel_tol=1e-9,
        abs_tol=1e-9,
    )
