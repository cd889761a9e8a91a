"""What a worker makes of the state in Redis at start, and when a connection finds another one
(state/progress.py); the Redis side is in tests/integration/test_state_lost.py."""

from __future__ import annotations

import pytest

from leadstream.errors import StateLost
from leadstream.state.progress import IncarnationCheck, StateProgress, classify


@pytest.mark.parametrize(
    ("found", "committed", "contacts", "opening"),
    [
        (True, True, True, "known"),
        (True, False, False, "known"),
        (False, False, False, "fresh"),
        (False, False, True, "fresh"),
        (False, True, True, "upgrade"),
        (False, True, False, "lost"),
    ],
)
def test_a_missing_hash_is_lost_state_only_when_offsets_are_committed_and_no_contact_is_left(
    found, committed, contacts, opening
):
    assert classify(found, committed, contacts) == opening


class FakeConnection:
    """What redis-py's connection offers a connect callback: the handshake, one command."""

    def __init__(self, *reply: bytes | None) -> None:
        self.reply = list(reply)
        self.sent: list[tuple[object, ...]] = []
        self.handshakes = 0

    def on_connect(self) -> None:
        self.handshakes += 1

    def send_command(self, *args: object) -> None:
        self.sent.append(args)

    def read_response(self) -> list[bytes | None]:
        return self.reply


def opened(token: str = "abc", **written: int) -> IncarnationCheck:
    check = IncarnationCheck("ls:{progress:g}")
    check.token = token
    check.written.update({name.replace("_", ":"): mark for name, mark in written.items()})
    return check


def test_a_connection_to_the_state_opened_goes_through():
    check = opened(views_0=120, forms_1=7)
    connection = FakeConnection(b"abc", b"120", b"9")  # another batch's mark may be ahead of ours
    check(connection)
    assert connection.handshakes == 1
    assert connection.sent == [("HMGET", "ls:{progress:g}", "incarnation", "views:0", "forms:1")]


@pytest.mark.parametrize("reply", [None, b"another"])
def test_a_connection_to_a_redis_without_that_state_raises_state_lost(reply):
    with pytest.raises(StateLost, match="restarted without persistence or was flushed"):
        opened(views_0=120)(FakeConnection(reply, b"120"))


@pytest.mark.parametrize("mark", [b"119", None])
def test_a_mark_below_what_this_worker_wrote_is_an_older_copy_of_the_state(mark):
    with pytest.raises(StateLost, match=r"views:0 at .*, written 120.*earlier snapshot"):
        opened(views_0=120, forms_1=7)(FakeConnection(b"abc", mark, b"7"))


def test_before_the_state_is_opened_nothing_is_checked():
    check = IncarnationCheck("ls:{progress:g}")
    check(FakeConnection(None))  # no token yet: the first connections open the state


def test_a_partition_released_is_no_longer_checked():
    check = opened(views_0=120)
    StateProgress(None, check, "abc").release([("views", 0)])
    check(FakeConnection(b"abc"))  # its next owner may write it lower (it starts at the commit)
