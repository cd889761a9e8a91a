"""Every Redis key leadstream writes is named here.

Keys that must change together share a hash tag (the part in braces), so they live in one slot
and the code runs unchanged on Redis Cluster.
"""

from __future__ import annotations


def contact_key(prefix: str, contact_id: str) -> str:
    """The hash holding one contact's version, state and outbox."""
    return f"{prefix}:{{c:{contact_id}}}"
