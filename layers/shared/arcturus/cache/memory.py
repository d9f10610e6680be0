"""The memory tier: this container's copies of cached values, least-recently-used and bounded."""

from __future__ import annotations

import collections
import dataclasses
import threading
from typing import Annotated, Any, Final

from typing_extensions import TypedDict

from arcturus.formats import field, iso8601, wire_body

__all__ = ["MEMORY_MAX_BYTES", "MEMORY_MAX_ENTRIES", "Entry", "MemoryCacheStats", "MemoryTier"]

MEMORY_MAX_ENTRIES: Final = 256
MEMORY_MAX_BYTES: Final = 8 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Entry:
    """A value in memory: when its source answered, when this container last checked it, its size."""

    value: Any
    fetched_at: float
    checked_at: float
    size: int


@wire_body
class MemoryCacheStats(TypedDict):
    keys: Annotated[int, field(ge=0)]
    oldestEntry: Annotated[
        str | None, field(description="ISO 8601 fetch time of the oldest entry; null when empty.")
    ]
    newestEntry: str | None


class MemoryTier:
    """This container's copies: least-recently-used, bounded by entry count and by bytes, thread-safe.

    ``size`` is the value's JSON length, known anyway because the value travels to and from KV as JSON.
    A value larger than the whole budget is not kept (it is still served from KV).
    """

    def __init__(self, max_entries: int = MEMORY_MAX_ENTRIES, max_bytes: int = MEMORY_MAX_BYTES) -> None:
        self._entries: collections.OrderedDict[str, Entry] = collections.OrderedDict()
        self._bytes = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: Entry) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            if entry.size > self._max_bytes:
                return
            self._entries[key] = entry
            self._bytes += entry.size
            while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def stats(self) -> MemoryCacheStats:
        """How many entries the tier holds, and the fetch times of its oldest and newest."""
        with self._lock:
            times = [entry.fetched_at for entry in self._entries.values()]
        return {
            "keys": len(times),
            "oldestEntry": iso8601(min(times)) if times else None,
            "newestEntry": iso8601(max(times)) if times else None,
        }
