"""The stale-while-revalidate policy over the memory tier and KV, upstreams behind both.

Every cached value is kept with the time its source answered (``fetchedAt``); its age decides its state:

- HIT: younger than its kind's freshness (``FRESH_FOR_S``). Answered from memory when this container
  checked the value within ``MEMORY_FRESH_S``, with no DynamoDB call; otherwise after one KV read.
- STALE: older than that but younger than ``STALE_BOUND_S``. Answered at once; a refresh runs after the
  response (``arcturus.background.wait_until``).
- MISS: no value, or one past the bound. The caller waits for the source, then both tiers are filled.

One refresh per key at a time: in a container, callers of a key join the refresh in flight
(single-flight); across containers, a lease item ``lease:<cache key>`` in KV, taken by a conditional
put. KV expirations cannot be shorter than 60 s, so the lease carries its own, shorter deadline in its
value: a lease whose deadline passed is taken over by compare-and-set on its version, and a holder
deletes its lease when done only while that deadline has not passed (after it, another container may
hold it). A container that finds the lease held serves its stale value (STALE) or, on a MISS, polls KV
for the holder's value until the holder's deadline, then takes the lease over; a MISS waits at most
``WAIT_FOR_REFRESH_S`` in all.

A failing source never replaces a value: errors are never stored, the stale value keeps being served
up to the bound, and the failure is counted (``SourceError``). Past the bound, or with no value at all,
the caller gets ``SourceUnavailable``. A background refresh that failed is not retried by this
container for ``RETRY_AFTER_FAILURE_S``, so a failing upstream is not asked once per page view.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from typing import Any, Final

from arcturus import background
from arcturus.cache.leases import LEASE_S, LeaseHeld, RefreshLeases
from arcturus.cache.memory import Entry, MemoryTier
from arcturus.cache.status import SHOWN_PREFIXES, STATUS_PAGE, CacheStatus, KeyCensus, listed_page
from arcturus.container import per_container
from arcturus.errors import SourceUnavailable, StoreUnavailable
from arcturus.formats import iso8601
from arcturus.kv import MAX_BULK_KEYS, MAX_LIST_LIMIT, KVNamespace
from arcturus.observability import logger, metrics

__all__ = [
    "FRESH_FOR_S",
    "MEMORY_FRESH_S",
    "RETRY_AFTER_FAILURE_S",
    "STALE_BOUND_S",
    "WAIT_FOR_REFRESH_S",
    "CacheState",
    "Cached",
    "Lookup",
    "TwoTierCache",
    "cache_key",
    "container_cache",
]

FRESH_FOR_S: Final[Mapping[str, int]] = MappingProxyType(
    {
        # One minute longer than the warmup schedule (5 min), so a scheduled run always lands first.
        "services": 6 * 60,
        # Widget data (usage graphs, container lists) changes slower than up/down.
        "dashboard": 10 * 60,
    }
)
"""How long a value of each kind is fresh, in seconds: the one place freshness is configured."""
MEMORY_FRESH_S: Final = 60.0
"""How long a container trusts its copy before looking at KV again (another container may have refreshed)."""
STALE_BOUND_S: Final = 60 * 60
"""The oldest value ever served; KV drops values at this age too."""
WAIT_FOR_REFRESH_S: Final = 8.0
"""The longest a MISS waits for a refresh already running (here or in another container) before giving up
with SourceUnavailable: below the functions' 10 s timeout, so the caller gets a 503, not a timeout."""
RETRY_AFTER_FAILURE_S: Final = 10.0
_POLL_S: Final = 0.1
_LOOKUP_WORKERS: Final = 8


class CacheState(enum.StrEnum):
    """What ``X-Cache`` says about an answer."""

    HIT = "HIT"
    STALE = "STALE"
    MISS = "MISS"


@dataclasses.dataclass(frozen=True)
class Cached:
    """A value as the cache answers it."""

    value: Any
    state: CacheState
    fetched_at: float

    @property
    def fetched_at_iso(self) -> str:
        return iso8601(self.fetched_at)


@dataclasses.dataclass(frozen=True)
class Lookup:
    """One value to get: its kind (a key of ``FRESH_FOR_S``), its id, and how to fetch it from the source."""

    kind: str
    id: str
    fetch: Callable[[], Any]

    @property
    def key(self) -> str:
        return cache_key(self.kind, self.id)


def cache_key(kind: str, id_: str) -> str:
    """The KV key of a cached value: ``cache:<kind>:<id>``."""
    if kind not in FRESH_FOR_S:
        raise ValueError(f"unknown cache kind {kind!r}; known: {', '.join(FRESH_FOR_S)}")
    return f"cache:{kind}:{id_}"


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.entry: Entry | None = None
        self.error: BaseException | None = None


class TwoTierCache:
    """Stale-while-revalidate over this container's memory and the KV namespace.

    ``clock`` (epoch seconds) dates values and is injectable for time travel; waiting for another
    container's refresh is bounded in real time. ``defer`` runs post-response work (``wait_until``).
    Values must be JSON-serialisable and are shared between requests: callers must not mutate them.
    """

    def __init__(
        self,
        kv: KVNamespace,
        *,
        memory: MemoryTier | None = None,
        clock: Callable[[], float] = time.time,
        defer: Callable[[Callable[[], object]], None] = background.wait_until,
        fresh_for: Mapping[str, float] = FRESH_FOR_S,
        memory_fresh_s: float = MEMORY_FRESH_S,
        stale_bound_s: int = STALE_BOUND_S,
        lease_s: float = LEASE_S,
        wait_s: float = WAIT_FOR_REFRESH_S,
    ) -> None:
        self._kv = kv
        self.memory = memory if memory is not None else MemoryTier()
        self._clock = clock
        self._defer = defer
        self._fresh_for = fresh_for
        self._memory_fresh_s = memory_fresh_s
        self._stale_bound_s = stale_bound_s
        self._wait_s = wait_s
        self._leases = RefreshLeases(kv, seconds=lease_s, clock=clock)
        self._census = KeyCensus(kv, keep_s=memory_fresh_s, clock=clock)
        self._flights: dict[str, _Flight] = {}
        self._retry_at: dict[str, float] = {}
        self._scheduled: set[str] = set()
        self._lock = threading.Lock()
        self._lookups = ThreadPoolExecutor(max_workers=_LOOKUP_WORKERS, thread_name_prefix="cache-miss")

    # -- reads -----------------------------------------------------------------------------------------

    def get(self, kind: str, id_: str, fetch: Callable[[], Any]) -> Cached:
        """The value of ``cache:<kind>:<id>``; raises SourceUnavailable when none can be served."""
        answer = self.get_many([Lookup(kind, id_, fetch)])[0]
        if isinstance(answer, SourceUnavailable):
            raise answer
        return answer

    def get_many(self, lookups: Sequence[Lookup]) -> list[Cached | SourceUnavailable]:
        """Several values at once: memory first, one KV read for the rest, misses fetched concurrently.

        Each answer is the Cached value or the SourceUnavailable error of that lookup.
        """
        now = self._clock()
        entries = self._current_entries(lookups, now)
        answers: dict[int, Cached | SourceUnavailable] = {}
        misses: list[int] = []
        for index, lookup in enumerate(lookups):
            found = self._answer(lookup, entries[index], now)
            if found is None:
                misses.append(index)
            else:
                answers[index] = found
        answers |= self._fetch_misses(lookups, misses)
        # One data point per state and call, its value the count: the same Sum, fewer points to write.
        states: dict[CacheState, int] = {}
        for answer in answers.values():
            if isinstance(answer, Cached):
                states[answer.state] = states.get(answer.state, 0) + 1
        for state, count in states.items():
            metrics.add_metric(name=f"Cache{state.value.title()}", unit="Count", value=count)
        return [answers[index] for index in range(len(lookups))]

    def _current_entries(self, lookups: Sequence[Lookup], now: float) -> list[Entry | None]:
        """Each lookup's newest copy: memory, then (past the memory window) KV in one read."""
        entries = [self.memory.get(lookup.key) for lookup in lookups]
        to_check = {
            index: lookup.key
            for index, (lookup, entry) in enumerate(zip(lookups, entries, strict=True))
            if entry is None or now - entry.checked_at >= self._memory_fresh_s
        }
        if not to_check:
            return entries
        try:
            stored = self._read_kv(sorted(set(to_check.values())), now)
        except StoreUnavailable as error:
            # The copies this container holds are still worth serving while DynamoDB is unwell.
            logger.warning("KV unavailable; answering from memory", extra={"error": str(error)})
            stored = {}
        for index, key in to_check.items():
            entries[index] = self._newest(key, entries[index], stored.get(key), now)
        return entries

    def _answer(self, lookup: Lookup, entry: Entry | None, now: float) -> Cached | None:
        """HIT or STALE (refresh queued) from ``entry``; None when it is a MISS."""
        if entry is None or now - entry.fetched_at >= self._stale_bound_s:
            return None
        if now - entry.fetched_at < self._fresh_for[lookup.kind]:
            return Cached(entry.value, CacheState.HIT, entry.fetched_at)
        self._schedule_refresh(lookup)
        return Cached(entry.value, CacheState.STALE, entry.fetched_at)

    def put(self, kind: str, id_: str, value: Any) -> None:
        """Store a value just fetched from its source in both tiers (the warmup writes this way).

        Raises StoreUnavailable when KV could not take it.
        """
        key = cache_key(kind, id_)
        fetched_at = self._clock()
        text = _envelope(value, fetched_at)
        self._remember(key, value, fetched_at, text)
        self._kv.put(key, text, expiration_ttl=self._stale_bound_s)

    def status(self, *, cursor: str | None = None, limit: int = STATUS_PAGE) -> CacheStatus:
        """What ``GET /api/cache/status`` answers: this container's memory tier, one page of the KV keys
        the cache and the roles hold (``cache:`` and ``data:``), and ``cursor`` while more remain; the
        first page also counts the other keys per class (``arcturus.cache.status``).

        Raises ValueError for a cursor this method did not make or a limit outside 1-1000.
        """
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be 1 to {MAX_LIST_LIMIT}")
        names, next_cursor = listed_page(self._kv, SHOWN_PREFIXES, cursor, limit)
        answer: CacheStatus = {"memoryCache": self.memory.stats(), "kvKeys": names}
        if next_cursor is not None:
            answer["cursor"] = next_cursor
        if cursor is None:
            answer["otherKeys"], answer["otherKeysComplete"] = self._census.counts()
        return answer

    # -- internals -------------------------------------------------------------------------------------

    def _read_kv(self, keys: list[str], now: float) -> dict[str, Entry]:
        """The KV copies of ``keys``: one GetItem, or one BatchGetItem per hundred keys."""
        found: dict[str, str | None] = {}
        if len(keys) == 1:
            found[keys[0]] = self._kv.get(keys[0])
        else:
            for start in range(0, len(keys), MAX_BULK_KEYS):
                found |= self._kv.get(keys[start : start + MAX_BULK_KEYS])
        return {key: entry for key, text in found.items() if (entry := _entry(text, now)) is not None}

    def _newest(self, key: str, mine: Entry | None, stored: Entry | None, now: float) -> Entry | None:
        """Keep whichever copy is newer, and remember that this container checked KV ``now``."""
        best = (
            stored if stored is not None and (mine is None or stored.fetched_at >= mine.fetched_at) else mine
        )
        if best is not None:
            best = dataclasses.replace(best, checked_at=now)
            self.memory.put(key, best)
        return best

    def _fetch_misses(
        self, lookups: Sequence[Lookup], misses: list[int]
    ) -> dict[int, Cached | SourceUnavailable]:
        def answer(index: int) -> Cached | SourceUnavailable:
            try:
                entry = self._fetch_now(lookups[index])
            except SourceUnavailable as error:
                return error
            return Cached(entry.value, CacheState.MISS, entry.fetched_at)

        if len(misses) <= 1:  # none (every answer a hit, the usual case) or one: no thread hand-off
            return {index: answer(index) for index in misses}
        return dict(zip(misses, self._lookups.map(answer, misses), strict=True))

    def _fetch_now(self, lookup: Lookup) -> Entry:
        """A MISS: wait for the source (or for whoever fetches it already, here or in another container)."""
        for _ in range(2):
            try:
                return self._single_flight(lookup.key, lambda: self._refresh(lookup, wait=True))
            except LeaseHeld:
                # Joined a background refresh that found the lease held: wait for that holder ourselves.
                continue
        raise SourceUnavailable(f"{lookup.key}: another refresh kept the lease")

    def _schedule_refresh(self, lookup: Lookup) -> None:
        """A STALE answer: refresh after the response, unless already refreshing or backing off."""
        key = lookup.key
        with self._lock:
            if key in self._flights or key in self._scheduled or self._retry_at.get(key, 0) > self._clock():
                return
            self._scheduled.add(key)
        self._defer(functools.partial(self._refresh_in_background, lookup))

    def _refresh_in_background(self, lookup: Lookup) -> None:
        try:
            self._single_flight(lookup.key, lambda: self._refresh(lookup, wait=False))
        except LeaseHeld:
            # Another container is refreshing; look at KV again on a request a second from now.
            self._back_off(lookup.key, 1.0)
        except (SourceUnavailable, StoreUnavailable) as error:
            self._back_off(lookup.key, RETRY_AFTER_FAILURE_S)
            logger.warning(
                "background refresh failed; the stale value is served meanwhile",
                extra={"key": lookup.key, "error": str(error)},
            )
        finally:
            with self._lock:
                self._scheduled.discard(lookup.key)

    def _back_off(self, key: str, seconds: float) -> None:
        with self._lock:
            self._retry_at[key] = self._clock() + seconds

    def _single_flight(self, key: str, work: Callable[[], Entry]) -> Entry:
        """Run ``work`` once per key in this container; concurrent callers share its outcome."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            if not flight.done.wait(self._wait_s):
                raise SourceUnavailable(f"{key}: the refresh in flight did not finish in time")
            if flight.error is not None:
                raise flight.error
            assert flight.entry is not None
            return flight.entry
        try:
            flight.entry = work()
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                del self._flights[key]
                if flight.error is None:
                    self._retry_at.pop(key, None)
            flight.done.set()
        return flight.entry

    def _refresh(self, lookup: Lookup, *, wait: bool) -> Entry:
        """Fetch ``lookup`` from its source under the key's lease and store the value in both tiers.

        In the background (``wait=False``) KV is looked at first: another container may have refreshed
        already, and a held lease raises LeaseHeld. In the foreground a held lease is waited for (the
        holder's value, once stored, is the answer). Once the lease is ours, a strongly consistent read
        makes sure the previous holder did not just store a fresh value (its write and its release land
        between our first read and our lease). When KV cannot grant the lease at all, the foreground
        fetches without it and keeps the value in memory.
        """
        if not wait:
            fresh = self._fresh_in_kv(lookup, consistent=False)
            if fresh is not None:
                return fresh
        give_up = time.monotonic() + self._wait_s
        while True:
            try:
                lease = self._leases.acquire(lookup.key)
                break
            except LeaseHeld as held:
                if not wait:
                    raise
                stored = self._wait_for_holder(lookup, held.until, give_up)
                if stored is not None:
                    return stored
            except StoreUnavailable as error:
                if not wait:
                    raise
                # KV cannot say who refreshes: a caller with nothing to serve asks the source itself
                # (once per container, by single-flight) rather than answer 503 while the source is up.
                logger.warning(
                    "KV unavailable; fetching without the lease",
                    extra={"key": lookup.key, "error": str(error)},
                )
                value, fetched_at = self._ask(lookup)
                return self._remember(lookup.key, value, fetched_at, _envelope(value, fetched_at))
        try:
            fresh = self._fresh_in_kv(lookup, consistent=True)
            if fresh is not None:
                return fresh
            value, fetched_at = self._ask(lookup)
            return self._store(lookup.key, value, fetched_at)
        finally:
            self._leases.release(lease)

    def _wait_for_holder(self, lookup: Lookup, until: float, give_up: float) -> Entry | None:
        """The value the lease's holder stores before its deadline ``until``; None when the deadline
        passed without one (the lease may be taken over). SourceUnavailable past ``give_up``."""
        while self._clock() < until and time.monotonic() < give_up:
            time.sleep(_POLL_S)
            fresh = self._fresh_in_kv(lookup, consistent=True)
            if fresh is not None:
                return fresh
        if time.monotonic() >= give_up:
            raise SourceUnavailable(f"{lookup.key}: waited too long for another container's refresh")
        return None

    def _ask(self, lookup: Lookup) -> tuple[Any, float]:
        """The source's answer and when it came; errors are counted and never kept."""
        fetched_at = self._clock()
        try:
            return lookup.fetch(), fetched_at
        except Exception as error:
            metrics.add_metric(name="SourceError", unit="Count", value=1)
            logger.warning("source failed", extra={"key": lookup.key, "error": str(error)})
            raise SourceUnavailable(f"{lookup.key}: {error}") from error

    def _fresh_in_kv(self, lookup: Lookup, *, consistent: bool) -> Entry | None:
        """The KV value of ``lookup`` if it is fresh (then also taken into memory), else None."""
        now = self._clock()
        if consistent:
            raw, _ = self._kv.get_with_version(lookup.key)
            stored = _entry(raw, now)
        else:
            stored = self._read_kv([lookup.key], now).get(lookup.key)
        if stored is None or now - stored.fetched_at >= self._fresh_for[lookup.kind]:
            return None
        return self._newest(lookup.key, self.memory.get(lookup.key), stored, now)

    def _store(self, key: str, value: Any, fetched_at: float) -> Entry:
        """A refreshed value into both tiers; when KV cannot take it, it is still served from memory
        (logged)."""
        text = _envelope(value, fetched_at)
        entry = self._remember(key, value, fetched_at, text)
        try:
            self._kv.put(key, text, expiration_ttl=self._stale_bound_s)
        except StoreUnavailable as error:
            logger.warning("cache value kept in memory only", extra={"key": key, "error": str(error)})
        return entry

    def _remember(self, key: str, value: Any, fetched_at: float, text: str) -> Entry:
        """A value into this container's memory tier (``text``: its KV envelope, for its size)."""
        entry = Entry(value, fetched_at, self._clock(), len(text))
        self.memory.put(key, entry)
        return entry


def _entry(text: str | None, now: float) -> Entry | None:
    """An Entry from its KV envelope ``{"fetchedAt", "data"}``; None for nothing or anything else."""
    if text is None:
        return None
    try:
        raw = json.loads(text)
    except ValueError:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("fetchedAt"), int | float) or "data" not in raw:
        return None
    return Entry(raw["data"], float(raw["fetchedAt"]), now, len(text))


def _envelope(value: Any, fetched_at: float) -> str:
    """A value as KV keeps it: ``{"fetchedAt", "data"}``."""
    return json.dumps({"fetchedAt": fetched_at, "data": value}, separators=(",", ":"), ensure_ascii=False)


@per_container
def container_cache() -> TwoTierCache:
    """The container's cache on the configured KV namespace (built on first use, then reused)."""
    return TwoTierCache(KVNamespace.from_env())
