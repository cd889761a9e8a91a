"""A record keyed by another profile than its body names, under each LEADSTREAM_KEY_MISMATCH."""

from __future__ import annotations

import asyncio

from leadstream.config.loader import load_model
from leadstream.config.settings import KeyMismatch, Topics
from leadstream.engine.input.decode import REKEYED_HEADER
from leadstream.engine.pipeline import ScoringPipeline
from leadstream.engine.ports import MemorySink
from leadstream.engine.records import SourceRecord
from leadstream.state import MemoryStateStore
from leadstream.state.keys import contact_key
from leadstream.state.port import decode_state
from tests.factories import at, encode, page

TOPICS = Topics()


def run(mode: KeyMismatch, records: list[SourceRecord]) -> tuple[MemorySink, MemoryStateStore]:
    store, sink = MemoryStateStore(), MemorySink()
    pipeline = ScoringPipeline(store, sink, load_model(), TOPICS, key_mismatch=mode)
    asyncio.run(pipeline.process(records))
    return sink, store


def applied(store: MemoryStateStore, contact: str) -> int:
    loaded = asyncio.run(store.load([contact_key("ls", contact)]))
    value = loaded[contact_key("ls", contact)].value
    return 0 if value is None else sum(r.count for r in decode_state(value).rules.values())


VIEW = encode(page("ana", "/pricing", at(1)))


def mis_keyed(headers: tuple[tuple[str, bytes], ...] = ()) -> SourceRecord:
    return SourceRecord(TOPICS.page_views, 0, 0, VIEW, b"bob", headers=headers)


def test_scored_where_it_lands_by_default():
    sink, store = run("score", [mis_keyed()])
    assert sink.records == []
    assert applied(store, "ana") == 1
    assert applied(store, "bob") == 0


def test_rekey_produces_it_again_under_its_contacts_key_once():
    sink, store = run("rekey", [mis_keyed()])
    [again] = sink.records
    assert (again.topic, again.key, again.value) == (TOPICS.page_views, b"ana", VIEW)
    assert (REKEYED_HEADER, b"bob") in again.headers
    assert applied(store, "ana") == 0  # scored when it comes back, on ana's partition
    # Produced again and still keyed wrong (a producer in a loop): dead-lettered, not bounced on.
    sink, _ = run("rekey", [mis_keyed(((REKEYED_HEADER, b"carol"),))])
    assert [r.topic for r in sink.records] == [TOPICS.dead_letters]


def test_dead_letter_names_the_key_it_should_have_had():
    sink, store = run("dead_letter", [mis_keyed()])
    [letter] = sink.records
    headers = dict(letter.headers)
    assert letter.topic == TOPICS.dead_letters
    assert any(v == b"InvalidEvent.key" for v in headers.values())
    assert any(b"'ana'" in v for v in headers.values())
    assert applied(store, "ana") == 0
