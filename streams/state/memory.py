"""The in-memory ContactStore: same semantics as Redis, for replays, the embedded mode and tests."""

from __future__ import annotations

from collections.abc import Sequence

from streams.state.port import ContactWrite, StoredContact, decode_state, encode_state


class MemoryContactStore:
    def __init__(self) -> None:
        # contact id -> (version, encoded state, outbox); states are stored encoded so that a
        # loaded state is always a fresh object, exactly as with Redis.
        self._rows: dict[str, tuple[int, bytes, dict[str, bytes]]] = {}

    async def load(self, contact_ids: Sequence[str]) -> dict[str, StoredContact]:
        out = {}
        for contact_id in contact_ids:
            row = self._rows.get(contact_id)
            if row is None:
                out[contact_id] = StoredContact(None)
            else:
                out[contact_id] = StoredContact(decode_state(row[1]), row[0], dict(row[2]))
        return out

    async def commit(self, writes: Sequence[ContactWrite]) -> set[str]:
        conflicts = set()
        for write in writes:
            version, _, outbox = self._rows.get(write.contact_id, (0, b"", {}))
            if version != write.expected_version:
                conflicts.add(write.contact_id)
                continue
            self._rows[write.contact_id] = (
                version + 1,
                encode_state(write.state),
                {**outbox, **write.new_outbox},
            )
        return conflicts

    async def ack_outbox(self, delivered: Sequence[tuple[str, str]]) -> None:
        for contact_id, handoff_id in delivered:
            row = self._rows.get(contact_id)
            if row is not None:
                row[2].pop(handoff_id, None)

    def contact_ids(self) -> list[str]:
        return list(self._rows)
