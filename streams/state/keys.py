"""Every Redis key leadstream writes is named here.

Keys that must change together share a hash tag (the part in braces), so they live in one slot
and the code runs unchanged on Redis Cluster. A contact and its account are deliberately in
different slots: the account is updated after the contact, through the contact's outbox.
"""

from __future__ import annotations


def contact_key(prefix: str, contact_id: str) -> str:
    """The hash holding one contact (or anonymous / email-only profile): version, state, outbox."""
    return f"{prefix}:{{c:{contact_id}}}"


def account_key(prefix: str, domain: str) -> str:
    """The hash holding one account: version, firmographics, member snapshots, outbox."""
    return f"{prefix}:{{a:{domain}}}"
