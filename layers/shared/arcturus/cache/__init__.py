"""The two-tier stale-while-revalidate cache, in parts with one job each:

- ``swr``: the policy (HIT / STALE / MISS, single-flight, back-off) and ``TwoTierCache``;
- ``memory``: this container's bounded LRU copies;
- ``leases``: which container refreshes a key right now;
- ``status``: what ``/api/cache/status`` lists and counts.

Callers import from here.
"""

from arcturus.cache.leases import LEASE_S, Lease, LeaseHeld, RefreshLeases
from arcturus.cache.memory import MEMORY_MAX_BYTES, MEMORY_MAX_ENTRIES, Entry, MemoryCacheStats, MemoryTier
from arcturus.cache.status import COUNT_BUDGET_S, SHOWN_PREFIXES, STATUS_PAGE, CacheStatus
from arcturus.cache.swr import (
    FRESH_FOR_S,
    MEMORY_FRESH_S,
    RETRY_AFTER_FAILURE_S,
    STALE_BOUND_S,
    WAIT_FOR_REFRESH_S,
    Cached,
    CacheState,
    Lookup,
    TwoTierCache,
    cache_key,
    container_cache,
)

__all__ = [
    "COUNT_BUDGET_S",
    "FRESH_FOR_S",
    "LEASE_S",
    "MEMORY_FRESH_S",
    "MEMORY_MAX_BYTES",
    "MEMORY_MAX_ENTRIES",
    "RETRY_AFTER_FAILURE_S",
    "SHOWN_PREFIXES",
    "STALE_BOUND_S",
    "STATUS_PAGE",
    "WAIT_FOR_REFRESH_S",
    "CacheState",
    "CacheStatus",
    "Cached",
    "Entry",
    "Lease",
    "LeaseHeld",
    "Lookup",
    "MemoryCacheStats",
    "MemoryTier",
    "RefreshLeases",
    "TwoTierCache",
    "cache_key",
    "container_cache",
]
