"""Score state: one port (StateStore) and two adapters shipped in the package."""

from leadstream.state.memory import MemoryStateStore
from leadstream.state.port import RecordWrite, StateStore, StoredRecord
from leadstream.state.redis_store import RedisStateStore

__all__ = ["MemoryStateStore", "RecordWrite", "RedisStateStore", "StateStore", "StoredRecord"]
