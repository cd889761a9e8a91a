"""What a Redis error tells the operator: a missing permission is not an outage.

Every Redis failure becomes ``StateUnavailable`` (the batch is retried, nothing is lost), but the
advice differs: an unreachable Redis needs Redis back; a user without a command or key pattern
leadstream needs (Redis answers NOPERM, or "can't run this command" when a function of the
library runs one) needs the ACL rule ``python -m leadstream.acls redis <prefix>`` prints, and the
worker goes on by itself once it has it.
"""

from __future__ import annotations

from redis.exceptions import NoPermissionError

from leadstream.errors import StateUnavailable

__all__ = ["is_permission_error", "redis_failed"]

# Redis's texts for a denied command or key inside a function (a plain ResponseError, not
# NoPermissionError: the error reaches the client as the script's).
_DENIED = ("can't run this command", "no permissions to access")


def is_permission_error(exc: BaseException) -> bool:
    if isinstance(exc, NoPermissionError):
        return True
    text = str(exc).lower()
    return "noperm" in text or any(mark in text for mark in _DENIED)


def redis_failed(action: str, exc: BaseException) -> StateUnavailable:
    """The error to raise for ``exc`` met while ``action`` (a phrase: "loading 12 records")."""
    if is_permission_error(exc):
        return StateUnavailable(
            f"Redis refused {action}: {exc}. The Redis user in LEADSTREAM_REDIS_URL lacks a command "
            "or key pattern leadstream needs: `python -m leadstream.acls redis "
            "<LEADSTREAM_REDIS_KEY_PREFIX>` prints the rule to give it (ACL SETUSER <user> <rule>). "
            "The batch is retried and nothing is lost; processing goes on once the user has the rule."
        )
    return StateUnavailable(
        f"Redis failed while {action}: {exc}. Check that Redis is up and reachable at the "
        "configured LEADSTREAM_REDIS_URL; the worker retries the batch and loses nothing."
    )
