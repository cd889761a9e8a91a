"""What a worker makes of the state in Redis at start, and when a connection finds another one
(state/progress.py); the Redis side is in tests/integration/test_state_lost.py."""

from __future__ import annotations

import pytest

from leadstream.errors import StateLost
from leadstream.state.progress import IncarnationCheck, classify


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

    def __init__(self, reply: bytes | None) -> None:
        self.reply = reply
        self.sent: list[tuple[object, ...]] = []
        self.handshakes = 0

    def on_connect(self) -> None:
        self.handshakes += 1

    def send_command(self, *args: object) -> None:
        self.sent.append(args)

    def read_response(self) -> bytes | None:
        return self.reply


def test_a_connection_to_the_state_opened_goes_through():
    check = IncarnationCheck("ls:{progress:g}")
    check.token = "abc"
    connection = FakeConnection(b"abc")
    check(connection)
    assert connection.handshakes == 1 and connection.sent == [("HGET", "ls:{progress:g}", "incarnation")]


@pytest.mark.parametrize("reply", [None, b"another"])
def test_a_connection_to_a_redis_without_that_state_raises_state_lost(reply):
    check = IncarnationCheck("ls:{progress:g}")
    check.token = "abc"
    with pytest.raises(StateLost, match="restarted without persistence or was flushed"):
        check(FakeConnection(reply))


def test_before_the_state_is_opened_nothing_is_checked():
    check = IncarnationCheck("ls:{progress:g}")
    check(FakeConnection(None))  # no token yet: the first connections open the state
