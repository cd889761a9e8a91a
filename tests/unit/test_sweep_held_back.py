"""A sweep does not load an account again while the stream still holds back its first point, and
writes the points it applies as the bytes they waited as."""

from __future__ import annotations

import asyncio

from leadstream.config.loader import load_model
from leadstream.engine.stages.account import AccountResult, AccountStage, account_shard
from leadstream.engine.stages.contact import PendingSnapshots
from leadstream.scoring.signals import compile_model
from leadstream.scoring.state import MemberSnapshot
from leadstream.state.keys import account_key, account_queue_key
from leadstream.state.memory import MemoryStateStore
from leadstream.state.port import MEMBER_PART, PENDING_PART, decode_account
from tests.factories import Releasing as Release

DOMAIN = "acme-labs.com"
QUEUE = account_queue_key("t", account_shard(DOMAIN))


HELD = Release(lambda at, _record_time: at < 900.0)  # the version (500) passes, the point (1000) waits
OPEN = Release(lambda _at, _record_time: True)


def test_an_account_held_back_stays_in_the_index_until_the_stream_allows_its_point():
    store = MemoryStateStore()
    stage = AccountStage(store, store, compile_model(load_model()), "t")
    snapshot = MemberSnapshot("c1", 1, point=(1000.0, 0, "e1", 1, ""), record_time=999.0, last_at=1000.0)
    pending = PendingSnapshots(DOMAIN, [snapshot], ("t:{c:x}", "a:x", b"[]"))
    versions = {DOMAIN: [(500.0, {"domain": DOMAIN, "employees": 300}, 400.0)]}

    first = AccountResult()
    asyncio.run(stage.run([pending], versions, HELD, 1000.0, first))
    assert first.applied == 1  # the firmographics version; the member's point waits
    indexed = {DOMAIN: 1000.0}
    assert asyncio.run(store.due(QUEUE, 2000.0, 10)) == list(indexed.items())
    assert stage.worth_sweeping(indexed, HELD) == {}  # still held back: not loaded for nothing
    assert stage.worth_sweeping({DOMAIN: 800.0}, HELD) == {DOMAIN: 800.0}  # moved by another worker
    assert stage.worth_sweeping(indexed, OPEN) == indexed  # the stream moved on

    swept = AccountResult()
    asyncio.run(stage.run([], {}, OPEN, 1000.0, swept, swept=indexed))
    assert swept.applied == 1
    asyncio.run(stage.reindex(swept))
    assert asyncio.run(store.due(QUEUE, 2000.0, 10)) == []  # applied: out of the index
    assert stage.worth_sweeping(indexed, HELD) == indexed  # nothing held back any more: no memo


def test_a_point_that_waited_becomes_a_member_as_the_bytes_it_waited_as():
    # Queued by a worker storing plain JSON, applied by one storing zstd: the member's part is
    # the waiting part's bytes, not the snapshot encoded a second time.
    store = MemoryStateStore()
    compiled = compile_model(load_model())
    snapshot = MemberSnapshot("c1", 1, point=(1000.0, 0, "e1", 1, ""), record_time=999.0, last_at=1000.0)
    pending = PendingSnapshots(DOMAIN, [snapshot], ("t:{c:x}", "a:x", b"[]"))
    versions = {DOMAIN: [(500.0, {"domain": DOMAIN, "employees": 300}, 400.0)]}
    asyncio.run(
        AccountStage(store, store, compiled, "t", codec="none").run(
            [pending], versions, HELD, 1000.0, AccountResult()
        )
    )
    key = account_key("t", DOMAIN)
    (waited,) = [
        v for n, v in asyncio.run(store.load([key]))[key].parts.items() if n.startswith(PENDING_PART)
    ]
    assert waited.startswith(b"{")

    swept = AccountResult()
    later = AccountStage(store, store, compiled, "t", codec="zstd")
    asyncio.run(later.run([], {}, OPEN, 1000.0, swept, swept={DOMAIN: 1000.0}))
    assert swept.applied == 1
    parts = asyncio.run(store.load([key]))[key].parts
    assert parts[MEMBER_PART + "c1"] == waited
    assert not any(n.startswith(PENDING_PART) for n in parts)
    assert decode_account(asyncio.run(store.load([key]))[key].value or b"", parts).members[
        "c1"
    ].to_dict() == (snapshot.to_dict())
