"""The in-memory StateStore: same semantics as Redis, for replays, the embedded mode and tests."""

from __future__ import annotations

from collections.abc import Sequence

from mypy_extensions import mypyc_attr

from leadstream.state.port import Delivered, RecordWrite, StoredRecord

__all__ = ["MemoryStateStore"]


# Tests subclass it to inject faults (a commit that dies); compiled classes allow that only when told.
@mypyc_attr(allow_interpreted_subclasses=True)
class MemoryStateStore:
    def __init__(self) -> None:
        # Values are kept encoded, so a loaded state is always a fresh object, as with Redis.
        self._records: dict[str, StoredRecord] = {}
        self._timers: dict[str, dict[str, float]] = {}
        self._suppressed: dict[str, set[str]] = {}
        self._suppression_changes: dict[str, int] = {}

    async def load(self, keys: Sequence[str]) -> dict[str, StoredRecord]:
        out = {}
        for key in keys:
            held = self._records.get(key)
            out[key] = (
                StoredRecord(held.value, held.version, dict(held.outbox), held.alias, dict(held.parts))
                if held
                else StoredRecord()
            )
        return out

    async def values(self, keys: Sequence[str]) -> dict[str, tuple[int, bytes | None]]:
        out = {}
        for key in keys:
            held = self._records.get(key)
            out[key] = (held.version, held.value) if held else (0, None)
        return out

    async def suppression_marks(self, key: str) -> tuple[str, int]:
        return str(self._suppression_changes.get(key, 0)), len(self._suppressed.get(key, ()))

    async def suppressed_tokens(self, key: str) -> set[str]:
        return set(self._suppressed.get(key, ()))

    def suppress(self, key: str, tokens: Sequence[str]) -> None:
        """Mark people erased (what `leadstream forget` does in Redis), for embedded runs and tests."""
        self._suppressed.setdefault(key, set()).update(tokens)
        self._suppression_changes[key] = self._suppression_changes.get(key, 0) + 1

    async def commit(self, writes: Sequence[RecordWrite]) -> set[str]:
        conflicts = set()
        for write in writes:
            held = self._records.get(write.key, StoredRecord())
            if held.version != write.expected_version:
                conflicts.add(write.key)
                continue
            parts = {**held.parts, **{k: v for k, v in write.parts.items() if v is not None}}
            for name in [k for k, v in write.parts.items() if v is None]:
                parts.pop(name, None)
            self._records[write.key] = StoredRecord(
                write.value if write.value is not None else held.value,
                held.version + 1,
                {**held.outbox, **write.new_outbox},
                write.alias if write.alias is not None else held.alias,
                parts,
            )
        return conflicts

    async def ack(self, delivered: Sequence[Delivered]) -> None:
        for key, entry, value in delivered:
            held = self._records.get(key)
            if held is not None and entry in held.outbox and value in (None, held.outbox[entry]):
                del held.outbox[entry]

    async def schedule(self, entries: Sequence[tuple[str, str, float]]) -> None:
        for key, member, due in entries:
            self._timers.setdefault(key, {})[member] = due

    async def due(self, key: str, until: float, limit: int) -> list[tuple[str, float]]:
        items = sorted((due, member) for member, due in self._timers.get(key, {}).items() if due <= until)
        return [(member, due) for due, member in items[:limit]]

    async def due_in(
        self, keys: Sequence[str], until: float, limit: int
    ) -> dict[str, list[tuple[str, float]]]:
        return {key: await self.due(key, until, limit) for key in keys}

    async def unschedule(self, entries: Sequence[tuple[str, str, float]]) -> None:
        for key, member, due in entries:
            if self._timers.get(key, {}).get(member) == due:
                del self._timers[key][member]

    async def schedule_earliest(self, entries: Sequence[tuple[str, str, float]]) -> None:
        for key, member, due in entries:
            held = self._timers.setdefault(key, {}).get(member)
            # As the Redis store does: an entry at or before ``due`` moves a millisecond earlier,
            # so a sweep that read it before does not remove it (see reschedule).
            self._timers[key][member] = due if held is None or due < held else held - 0.001

    async def reschedule(self, entries: Sequence[tuple[str, str, float, float | None]]) -> None:
        for key, member, seen, due in entries:
            index = self._timers.get(key, {})
            if index.get(member) == seen:
                if due is None:
                    del index[member]
                else:
                    index[member] = due

    def keys(self, prefix: str = "") -> list[str]:
        return [k for k in self._records if k.startswith(prefix)]
