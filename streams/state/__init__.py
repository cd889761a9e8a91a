"""Score state: one port (ContactStore) and two adapters shipped in the package."""

from streams.state.memory import MemoryContactStore
from streams.state.port import ContactStore, ContactWrite, StoredContact
from streams.state.redis_store import RedisContactStore

__all__ = [
    "ContactStore",
    "ContactWrite",
    "MemoryContactStore",
    "RedisContactStore",
    "StoredContact",
]
