"""The outbox codec and the key module: what they write, they read back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from leadstream.config.settings import Topics
from leadstream.engine.outbox import EntryKind, OutboxEntry, is_kind, plan, timer_entries
from leadstream.state.keys import (
    account_key,
    account_keys_start,
    contact_key,
    contact_keys_start,
    contact_token,
    is_token,
    parse_timer_member,
    record_id,
    timer_member,
    token_key,
)

# what the settings and the event schema allow: prefixes without braces, ids of printable ASCII
prefixes = st.from_regex(r"[A-Za-z0-9_.-]{1,32}", fullmatch=True)
ids = st.from_regex(r"[\x21-\x7e]{1,40}", fullmatch=True)
names = st.text(max_size=40)


@given(st.sampled_from(list(EntryKind)), names)
def test_an_entry_parses_back_to_itself(kind, name):
    entry = OutboxEntry(kind, name)
    assert OutboxEntry.parse(entry.encode()) == entry
    assert is_kind(entry.encode(), kind)


@given(ids.filter(lambda s: "|" not in s), ids, st.integers(min_value=0))
def test_a_snapshots_entry_names_its_account(domain, contact, version):
    entry = OutboxEntry.parse(OutboxEntry.snapshots(domain, contact, version).encode())
    assert entry.kind is EntryKind.SNAPSHOTS
    assert entry.domain == domain


@given(prefixes, ids)
def test_keys_give_back_the_id_they_name(prefix, ident):
    # A contact's key names its pseudonym, never the id itself; an account's its domain.
    token = record_id(contact_key(prefix, ident))
    assert token == contact_token(ident) and is_token(token)
    assert token_key(prefix, token) == contact_key(prefix, ident)
    assert record_id(account_key(prefix, ident)) == ident
    assert contact_key(prefix, ident).startswith(contact_keys_start(prefix))
    assert account_key(prefix, ident).startswith(account_keys_start(prefix))


@given(ids, st.text(min_size=1, max_size=20).filter(lambda s: "|" not in s))
def test_a_timer_member_parses_back(contact, kind):
    assert parse_timer_member(timer_member(contact, kind)) == (contact, kind)


def test_plan_sends_each_entry_where_it_belongs():
    topics = Topics()
    key = contact_key("ls", "c1")
    entries = [
        (key, OutboxEntry(EntryKind.HANDOFF, "h1").encode(), b"{}"),
        (key, OutboxEntry(EntryKind.LIFECYCLE, "e1").encode(), b"{}"),
        *[(key, e, v) for e, v in timer_entries({}, {"sla": 12.5}).items()],
        (key, OutboxEntry.snapshots("acme.com", "c1", 3).encode(), b"[]"),
    ]
    out = plan(entries, topics, "ls")
    # Keyed by the contact's pseudonym: no Kafka key we write names a person; timers likewise.
    token = contact_token("c1")
    assert [(r.topic, r.key) for r in out.records] == [
        (topics.handoffs, token.encode()),
        (topics.lifecycle, token.encode()),
    ]
    assert [(member, due) for _index, member, due in out.timers] == [(f"{token}|sla", 12.5)]
    # Snapshots are acknowledged by the account stage, not here. Handoffs and lifecycle events go
    # by name (None: no value to compare), a timer only if it still holds the due delivered.
    assert out.acks == [
        (key, OutboxEntry(EntryKind.HANDOFF, "h1").encode(), None),
        (key, OutboxEntry(EntryKind.LIFECYCLE, "e1").encode(), None),
        (key, OutboxEntry(EntryKind.TIMER, "sla").encode(), b"12.5"),
    ]
