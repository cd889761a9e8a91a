"""Keyed hashes of people's identifiers: what erasure keeps, and what names them where a clear id
must not appear.

``pseudonym(secret, profile)`` is HMAC-SHA256 of the profile (a contact id, ``email:<address>``
or ``anon:<id>``) under a secret from the settings (``LEADSTREAM_PSEUDONYM_SECRET``): stable, so
the same person always gets the same token, and not reversible without the secret (a dictionary
of email addresses cannot be tried against it).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from functools import lru_cache

from leadstream.config.settings import Settings

__all__ = ["DEFAULT_SECRET", "identities_of", "pseudonym", "pseudonym_secret"]

logger = logging.getLogger(__name__)

# Used when the settings name no secret: tokens are still no clear identifiers, but anyone with
# this source could test guesses against them. The worker and `forget` warn; production sets one.
DEFAULT_SECRET = b"leadstream-default-pseudonym-secret: set LEADSTREAM_PSEUDONYM_SECRET"


# A batch names at most a few thousand profiles, several times each: 16k of ~280 bytes each.
@lru_cache(maxsize=16_384)
def pseudonym(secret: bytes, profile: str) -> str:
    """``p`` and 32 hex digits (128 bits) of HMAC-SHA256(secret, profile)."""
    return "p" + hmac.new(secret, profile.encode(), hashlib.sha256).hexdigest()[:32]


def identities_of(contact_id: str | None, email: str | None, anonymous_id: str | None) -> list[str]:
    """Every profile an event names (each may have been erased)."""
    out = []
    if contact_id:
        out.append(contact_id)
    if email:
        out.append(f"email:{email}")
    if anonymous_id:
        out.append(f"anon:{anonymous_id}")
    return out


_warned: list[bool] = []  # once per process


def pseudonym_secret(settings: Settings) -> bytes:
    """The keyed hash's secret from the settings; the built-in one, with a warning, if unset."""
    if settings.pseudonym_secret is not None:
        return settings.pseudonym_secret.get_secret_value().encode()
    if not _warned:
        _warned.append(True)
        logger.warning(
            "LEADSTREAM_PSEUDONYM_SECRET is not set: keys and erased people are named with a built-in "
            "secret anyone could use to test guesses against them; set one (and keep it)"
        )
    return DEFAULT_SECRET
