"""Deterministic ids (UUID version 5) as text, without building ``uuid.UUID`` objects.

Handoff, transition and breach ids are made on the hot path; ``str(uuid.uuid5(...))`` spends
most of its time in the UUID object, not in SHA-1. Same bytes as the standard library (a test
holds them equal).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Final

__all__ = ["uuid5_text"]

_VARIANT: Final = "89ab89ab89ab89ab"  # RFC 4122 variant: the 17th hex digit keeps its low two bits, 10xx


def uuid5_text(namespace: uuid.UUID, name: str) -> str:
    """``str(uuid.uuid5(namespace, name))``."""
    h = hashlib.sha1(namespace.bytes + name.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:32]}"
