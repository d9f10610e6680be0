"""Refresh leases: which container refreshes a cached key right now (``lease:<cache key>`` in KV).

KV expirations cannot be shorter than 60 s, so a lease carries its own, shorter deadline in its value:
a lease whose deadline passed is taken over by compare-and-set on its version, and a holder deletes its
lease when done only while that deadline has not passed (after it, another container may hold it).
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from typing import Final

from arcturus.errors import ArcturusError, StoreUnavailable, VersionConflict
from arcturus.kv import MIN_EXPIRATION_TTL, KVNamespace
from arcturus.observability import logger

__all__ = ["LEASE_S", "Lease", "LeaseHeld", "RefreshLeases"]

LEASE_S: Final = 15.0
"""How long a refresh may take before another container takes its lease over (above any source timeout)."""


@dataclasses.dataclass(frozen=True)
class Lease:
    """A lease this container holds until ``deadline`` (epoch seconds)."""

    key: str
    deadline: float


class LeaseHeld(ArcturusError):
    """Another container holds the lease until ``until`` (epoch seconds)."""

    def __init__(self, key: str, until: float) -> None:
        super().__init__(f"{key}: another container refreshes it until {until:.0f}")
        self.until = until


class RefreshLeases:
    """Taking a free lease is one conditional put; taking over one whose deadline passed is a strongly
    consistent read plus a compare-and-set; releasing is one delete."""

    def __init__(
        self, kv: KVNamespace, *, seconds: float = LEASE_S, clock: Callable[[], float] = time.time
    ) -> None:
        self._kv = kv
        self._seconds = seconds
        self._clock = clock
        self._ttl = max(MIN_EXPIRATION_TTL, int(seconds) + 1)

    def acquire(self, key: str) -> Lease:
        """The lease of ``key``; LeaseHeld (with the holder's deadline) when another container has it."""
        lease_key = f"lease:{key}"
        deadline = self._clock() + self._seconds
        value = json.dumps({"owner": uuid.uuid4().hex, "deadline": deadline})
        try:
            self._kv.put_if_version(lease_key, value, None, expiration_ttl=self._ttl)
            return Lease(lease_key, deadline)
        except VersionConflict:
            pass
        held, version = self._kv.get_with_version(lease_key, "json")
        if held is not None and float(held.get("deadline", 0)) > self._clock():
            raise LeaseHeld(key, float(held["deadline"]))
        try:
            # Free again (released) or abandoned (deadline passed): only one contender's write lands.
            self._kv.put_if_version(lease_key, value, version, expiration_ttl=self._ttl)
        except VersionConflict:
            raise LeaseHeld(key, self._clock() + self._seconds) from None
        return Lease(lease_key, deadline)

    def release(self, lease: Lease) -> None:
        # Past our deadline another container may have taken the lease over: leave it to expire.
        if self._clock() < lease.deadline:
            try:
                self._kv.delete(lease.key)
            except StoreUnavailable as error:
                # The refresh is done; an unreleased lease only holds others off until its deadline.
                logger.warning("lease left to its deadline", extra={"key": lease.key, "error": str(error)})
