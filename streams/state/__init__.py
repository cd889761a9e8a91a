"""Score state: one port (StateStore) and two adapters shipped in the package."""

from streams.state.memory import MemoryStateStore
from streams.state.port import RecordWrite, StateStore, StoredRecord
from streams.state.redis_store import RedisStateStore

__all__ = ["MemoryStateStore", "RecordWrite", "RedisStateStore", "StateStore", "StoredRecord"]
