"""The two-tier cache on moto: its states under time travel, single-flight, leases across containers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config

from arcturus import background
from arcturus.cache import (
    FRESH_FOR_S,
    LEASE_S,
    MEMORY_FRESH_S,
    STALE_BOUND_S,
    CacheState,
    Entry,
    LeaseHeld,
    Lookup,
    MemoryTier,
    RefreshLeases,
    TwoTierCache,
    cache_key,
)
from arcturus.cache import status as cache_status
from arcturus.errors import SourceUnavailable
from arcturus.kv import KVNamespace
from arcturus.observability import metrics
from tests.conftest import TABLE, Clock

KIND, ID = "services", "all"
KEY = "cache:services:all"
FRESH = FRESH_FOR_S[KIND]


class Source:
    """An upstream: counts its calls, answers ``{"n": call number}``, can be slow or failing."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self.failing = False
        self._lock = threading.Lock()

    def __call__(self) -> dict[str, int]:
        with self._lock:
            self.calls += 1
            n = self.calls
        time.sleep(self.delay)
        if self.failing:
            raise ConnectionError("upstream refused")
        return {"n": n}


class Deferred:
    """Post-response work collected so the test decides when it runs (the cache's ``defer`` hook)."""

    def __init__(self) -> None:
        self.tasks: list[Callable[[], object]] = []

    def __call__(self, task: Callable[[], object]) -> None:
        self.tasks.append(task)

    def run(self) -> int:
        tasks, self.tasks = self.tasks, []
        for task in tasks:
            task()
        return len(tasks)


class DynamoCalls:
    """DynamoDB requests the KV client sends, counted with a botocore event hook."""

    def __init__(self, client: Any) -> None:
        self.names: list[str] = []
        client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.names.append(model.name)

    def take(self) -> list[str]:
        names, self.names = self.names, []
        return names


@pytest.fixture
def deferred() -> Deferred:
    return Deferred()


@pytest.fixture
def calls(dynamodb: Any) -> DynamoCalls:
    return DynamoCalls(dynamodb)


@pytest.fixture
def cache(kv: KVNamespace, clock: Clock, deferred: Deferred) -> TwoTierCache:
    return TwoTierCache(kv, clock=clock, defer=deferred)


def counted(name: str) -> float:
    """The metric's sum so far, as CloudWatch's Sum statistic (the dashboard's) would show it."""
    return sum(metrics.metric_set.get(name, {}).get("Value", []))


# -- the state machine ---------------------------------------------------------------------------------


def test_miss_fetches_and_fills_both_tiers(cache: TwoTierCache, kv: KVNamespace, clock: Clock) -> None:
    source = Source()

    answer = cache.get(KIND, ID, source)

    assert (answer.value, answer.state, answer.fetched_at) == ({"n": 1}, CacheState.MISS, clock.now)
    assert source.calls == 1
    assert json.loads(kv.get(KEY)) == {"fetchedAt": clock.now, "data": {"n": 1}}
    [listed] = kv.list(prefix="cache:")["keys"]
    assert listed["expiration"] == int(clock.now) + STALE_BOUND_S
    assert cache.memory.get(KEY) is not None
    assert counted("CacheMiss") == 1


def test_fresh_hit_is_answered_from_memory_without_dynamodb(
    cache: TwoTierCache, clock: Clock, calls: DynamoCalls
) -> None:
    source = Source()
    cache.get(KIND, ID, source)
    calls.take()
    clock.advance(MEMORY_FRESH_S - 1)

    answer = cache.get(KIND, ID, source)

    assert (answer.value, answer.state) == ({"n": 1}, CacheState.HIT)
    assert source.calls == 1
    assert calls.take() == []
    assert counted("CacheHit") == 1


def test_after_the_memory_window_one_kv_read_confirms_a_hit(
    cache: TwoTierCache, clock: Clock, calls: DynamoCalls
) -> None:
    source = Source()
    cache.get(KIND, ID, source)
    calls.take()
    clock.advance(MEMORY_FRESH_S + 1)

    answer = cache.get(KIND, ID, source)

    assert answer.state is CacheState.HIT
    assert calls.take() == ["GetItem"]
    assert source.calls == 1
    # and the container trusts its copy for another window
    assert cache.get(KIND, ID, source).state is CacheState.HIT
    assert calls.take() == []


def test_a_value_another_container_stored_is_a_hit_here(
    kv: KVNamespace, clock: Clock, deferred: Deferred, calls: DynamoCalls
) -> None:
    source = Source()
    TwoTierCache(kv, clock=clock, defer=deferred).get(KIND, ID, source)
    calls.take()

    answer = TwoTierCache(kv, clock=clock, defer=deferred).get(KIND, ID, source)

    assert (answer.value, answer.state) == ({"n": 1}, CacheState.HIT)
    assert source.calls == 1
    assert calls.take() == ["GetItem"]


def test_stale_is_answered_at_once_and_refreshed_after_the_response(
    cache: TwoTierCache, clock: Clock, deferred: Deferred
) -> None:
    source = Source()
    cache.get(KIND, ID, source)
    clock.advance(FRESH + 1)

    answer = cache.get(KIND, ID, source)
    again = cache.get(KIND, ID, source)

    # the old value, without waiting for the source, and one refresh queued for both requests
    assert (answer.value, answer.state) == ({"n": 1}, CacheState.STALE)
    assert again.state is CacheState.STALE
    assert source.calls == 1
    assert len(deferred.tasks) == 1
    assert counted("CacheStale") == 2

    deferred.run()

    assert source.calls == 2
    refreshed = cache.get(KIND, ID, source)
    assert (refreshed.value, refreshed.state, refreshed.fetched_at) == ({"n": 2}, CacheState.HIT, clock.now)


def test_stale_refresh_runs_after_the_response_through_wait_until(kv: KVNamespace, clock: Clock) -> None:
    cache = TwoTierCache(kv, clock=clock)
    source = Source()
    cache.get(KIND, ID, source)
    clock.advance(FRESH + 1)

    assert cache.get(KIND, ID, source).state is CacheState.STALE
    assert background.drain(10)

    assert source.calls == 2
    assert cache.get(KIND, ID, source).value == {"n": 2}


def test_a_failing_source_never_replaces_the_stale_value(
    cache: TwoTierCache, kv: KVNamespace, clock: Clock, deferred: Deferred
) -> None:
    source = Source()
    cache.get(KIND, ID, source)
    stored = kv.get(KEY)
    clock.advance(FRESH + 1)
    source.failing = True

    assert cache.get(KIND, ID, source).state is CacheState.STALE
    deferred.run()

    # the failure is counted, nothing is written, and the stale value keeps being served
    assert counted("SourceError") == 1
    assert kv.get(KEY) == stored
    answer = cache.get(KIND, ID, source)
    assert (answer.value, answer.state) == ({"n": 1}, CacheState.STALE)
    # the failed refresh is not retried on every request...
    assert deferred.tasks == []
    # ...but after a pause, and a recovered source brings the value back to fresh
    clock.advance(11)
    source.failing = False
    assert cache.get(KIND, ID, source).state is CacheState.STALE
    deferred.run()
    assert cache.get(KIND, ID, source).state is CacheState.HIT
    assert kv.list(prefix="lease:")["keys"] == []


def test_past_the_stale_bound_a_failing_source_is_unavailable(
    cache: TwoTierCache, kv: KVNamespace, clock: Clock
) -> None:
    source = Source()
    cache.get(KIND, ID, source)
    clock.advance(STALE_BOUND_S - 1)
    source.failing = True
    # just inside the bound the old value is still served
    assert cache.get(KIND, ID, source).state is CacheState.STALE

    clock.advance(2)

    # past it, KV no longer returns the value and memory does not serve it: the caller waits and fails
    assert kv.get(KEY) is None
    with pytest.raises(SourceUnavailable, match="upstream refused"):
        cache.get(KIND, ID, source)
    # and a source that answers again is a plain miss
    source.failing = False
    answer = cache.get(KIND, ID, source)
    assert (answer.state, answer.value) == (CacheState.MISS, {"n": 3})


def test_errors_are_never_cached(cache: TwoTierCache, kv: KVNamespace) -> None:
    source = Source()
    source.failing = True

    with pytest.raises(SourceUnavailable):
        cache.get(KIND, ID, source)

    assert kv.get(KEY) is None
    assert cache.memory.get(KEY) is None
    assert counted("SourceError") == 1
    # the very next request asks the source again, without any back-off
    source.failing = False
    assert cache.get(KIND, ID, source).state is CacheState.MISS
    assert source.calls == 2


def test_kinds_have_their_own_freshness(cache: TwoTierCache, clock: Clock) -> None:
    services, widget = Source(), Source()
    cache.get("services", "all", services)
    cache.get("dashboard", "storage", widget)

    clock.advance(FRESH_FOR_S["services"] + 1)

    assert FRESH_FOR_S["dashboard"] > FRESH_FOR_S["services"]
    assert cache.get("services", "all", services).state is CacheState.STALE
    assert cache.get("dashboard", "storage", widget).state is CacheState.HIT
    with pytest.raises(ValueError, match="unknown cache kind"):
        cache_key("weather", "today")


def test_get_many_reads_kv_once_for_every_key(
    kv: KVNamespace, clock: Clock, deferred: Deferred, calls: DynamoCalls
) -> None:
    warm = TwoTierCache(kv, clock=clock, defer=deferred)
    sources = {name: Source() for name in ("system-health", "storage", "network")}
    for name, source in sources.items():
        warm.put("dashboard", name, source())
    calls.take()
    other = TwoTierCache(kv, clock=clock, defer=deferred)
    missing = Source()

    answers = other.get_many(
        [Lookup("dashboard", name, source) for name, source in sources.items()]
        + [Lookup("dashboard", "docker-status", missing)]
    )

    assert [a.state for a in answers if not isinstance(a, Exception)] == [CacheState.HIT] * 3 + [
        CacheState.MISS
    ]
    assert calls.take().count("BatchGetItem") == 1
    assert missing.calls == 1
    assert all(source.calls == 1 for source in sources.values())


def test_get_many_reports_each_failure_on_its_own(cache: TwoTierCache) -> None:
    good, bad = Source(), Source()
    bad.failing = True

    answers = cache.get_many([Lookup("dashboard", "storage", good), Lookup("dashboard", "network", bad)])

    assert not isinstance(answers[0], Exception)
    assert answers[0].value == {"n": 1}
    assert isinstance(answers[1], SourceUnavailable)


# -- one refresh at a time -----------------------------------------------------------------------------


def test_twenty_threads_missing_one_key_make_one_upstream_call(
    cache: TwoTierCache, serialized_moto: None
) -> None:
    source = Source(delay=0.2)
    start = threading.Barrier(20)
    answers: list[Any] = []

    def request() -> None:
        start.wait()
        answers.append(cache.get(KIND, ID, source))

    threads = [threading.Thread(target=request) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert source.calls == 1
    assert len(answers) == 20
    assert {json.dumps(a.value) for a in answers} == {'{"n": 1}'}
    assert {a.state for a in answers} == {CacheState.MISS}


def test_two_containers_with_a_stale_key_make_one_upstream_call(
    kv: KVNamespace, clock: Clock, serialized_moto: None
) -> None:
    source = Source(delay=0.2)
    first_deferred, second_deferred = Deferred(), Deferred()
    first = TwoTierCache(kv, clock=clock, defer=first_deferred)
    second = TwoTierCache(kv, clock=clock, defer=second_deferred)
    first.get(KIND, ID, source)
    second.get(KIND, ID, source)
    clock.advance(FRESH + 1)

    # both containers answer STALE and both queue a refresh, which run at the same moment
    assert first.get(KIND, ID, source).state is CacheState.STALE
    assert second.get(KIND, ID, source).state is CacheState.STALE
    start = threading.Barrier(2)
    runners = [
        threading.Thread(target=lambda d=d: (start.wait(), d.run()))
        for d in (first_deferred, second_deferred)
    ]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join(10)

    assert source.calls == 2  # the first fill, then exactly one refresh
    # the container that lost the lease picks the new value up from KV shortly after, without the source
    clock.advance(2)
    for cache, deferred in ((first, first_deferred), (second, second_deferred)):
        if cache.get(KIND, ID, source).state is CacheState.STALE:
            deferred.run()
        answer = cache.get(KIND, ID, source)
        assert (answer.state, answer.value) == (CacheState.HIT, {"n": 2})
    assert source.calls == 2


def test_a_container_that_comes_second_takes_the_value_the_first_stored(
    kv: KVNamespace, clock: Clock
) -> None:
    source = Source()
    first_deferred, second_deferred = Deferred(), Deferred()
    first = TwoTierCache(kv, clock=clock, defer=first_deferred)
    second = TwoTierCache(kv, clock=clock, defer=second_deferred)
    first.get(KIND, ID, source)
    second.get(KIND, ID, source)
    clock.advance(FRESH + 1)
    first.get(KIND, ID, source)
    second.get(KIND, ID, source)

    first_deferred.run()
    second_deferred.run()

    assert source.calls == 2
    assert second.get(KIND, ID, source).value == {"n": 2}


def test_a_held_lease_keeps_other_containers_from_the_source(
    cache: TwoTierCache, kv: KVNamespace, clock: Clock, deferred: Deferred
) -> None:
    source = Source()
    cache.get(KIND, ID, source)
    clock.advance(FRESH + 1)
    RefreshLeases(kv, clock=clock).acquire(KEY)  # another container holds the lease

    assert cache.get(KIND, ID, source).state is CacheState.STALE
    deferred.run()

    assert source.calls == 1
    assert [k["name"] for k in kv.list(prefix="lease:")["keys"]] == [f"lease:{KEY}"]


def test_a_miss_waits_for_the_container_holding_the_lease(
    kv: KVNamespace, clock: Clock, deferred: Deferred
) -> None:
    leases = RefreshLeases(kv, clock=clock)
    holder_cache = TwoTierCache(kv, clock=clock, defer=deferred)
    lease = leases.acquire(KEY)

    def holder_finishes() -> None:
        time.sleep(0.3)
        holder_cache.put(KIND, ID, {"from": "holder"})
        leases.release(lease)

    threading.Thread(target=holder_finishes).start()
    source = Source()
    started = time.monotonic()

    answer = TwoTierCache(kv, clock=clock, defer=deferred).get(KIND, ID, source)

    assert (answer.state, answer.value) == (CacheState.MISS, {"from": "holder"})
    assert source.calls == 0
    assert 0.25 < time.monotonic() - started < 5


def test_an_abandoned_lease_is_taken_over_after_its_deadline(
    cache: TwoTierCache, kv: KVNamespace, clock: Clock
) -> None:
    RefreshLeases(kv, clock=clock).acquire(KEY)  # taken, then abandoned
    clock.advance(LEASE_S + 1)
    source = Source()

    answer = cache.get(KIND, ID, source)

    assert (answer.state, source.calls) == (CacheState.MISS, 1)
    # the taker released it, and the stale holder does not delete what is no longer its lease
    assert kv.list(prefix="lease:")["keys"] == []


def test_lease_is_exclusive_until_released(kv: KVNamespace, clock: Clock) -> None:
    first, second = RefreshLeases(kv, clock=clock), RefreshLeases(kv, clock=clock)
    lease = first.acquire(KEY)

    with pytest.raises(LeaseHeld) as held:
        second.acquire(KEY)
    assert held.value.until == pytest.approx(lease.deadline)
    first.release(lease)
    assert second.acquire(KEY).key == f"lease:{KEY}"


def test_a_holder_past_its_deadline_leaves_the_taken_over_lease_alone(kv: KVNamespace, clock: Clock) -> None:
    slow, taker = RefreshLeases(kv, clock=clock), RefreshLeases(kv, clock=clock)
    old = slow.acquire(KEY)
    clock.advance(LEASE_S + 1)
    taker.acquire(KEY)

    slow.release(old)

    with pytest.raises(LeaseHeld):
        slow.acquire(KEY)


def test_memory_copies_are_served_while_kv_cannot_be_reached(clock: Clock, aws_env: None) -> None:
    unreachable = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1),
    )
    memory = MemoryTier()
    memory.put(KEY, Entry({"n": 1}, clock.now, clock.now, 10))
    clock.advance(MEMORY_FRESH_S + 1)
    cache = TwoTierCache(KVNamespace(TABLE, client=unreachable, clock=clock), memory=memory, clock=clock)

    answer = cache.get(KIND, ID, Source())

    assert (answer.state, answer.value) == (CacheState.HIT, {"n": 1})


# -- the memory tier -----------------------------------------------------------------------------------


def _entry(size: int, at: float = 0.0) -> Entry:
    return Entry("x", at, at, size)


def test_memory_evicts_the_least_recently_used_entry() -> None:
    memory = MemoryTier(max_entries=2)
    memory.put("a", _entry(1))
    memory.put("b", _entry(1))
    assert memory.get("a") is not None

    memory.put("c", _entry(1))

    assert memory.get("b") is None
    assert memory.get("a") is not None
    assert memory.get("c") is not None


def test_memory_is_bounded_by_bytes() -> None:
    memory = MemoryTier(max_bytes=100)
    memory.put("a", _entry(40))
    memory.put("b", _entry(40))
    memory.put("c", _entry(40))
    memory.put("huge", _entry(101))

    assert (memory.get("a"), memory.get("huge")) == (None, None)
    assert len(memory) == 2
    assert memory.bytes == 80


def test_memory_stats_are_counts_and_iso_times() -> None:
    memory = MemoryTier()
    assert memory.stats() == {"keys": 0, "oldestEntry": None, "newestEntry": None}

    memory.put("a", _entry(1, at=1_790_000_000))
    memory.put("b", _entry(1, at=1_790_000_330))

    assert memory.stats() == {
        "keys": 2,
        "oldestEntry": "2026-09-21T14:13:20Z",
        "newestEntry": "2026-09-21T14:18:50Z",
    }


def test_memory_stays_consistent_under_concurrent_writers() -> None:
    memory = MemoryTier(max_entries=50, max_bytes=5_000)

    def writer(worker: int) -> None:
        for n in range(500):
            memory.put(f"k{(worker * 7 + n) % 80}", _entry(10 + n % 90))
            memory.get(f"k{n % 80}")

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    sizes = [memory.get(f"k{n}") for n in range(80)]
    assert memory.bytes == sum(e.size for e in sizes if e is not None) <= 5_000
    assert len(memory) <= 50


def test_the_status_pages_through_cache_and_data_keys_with_a_cursor(kv: KVNamespace) -> None:
    names = [f"cache:dashboard:w{n:02d}" for n in range(25)] + ["data:user-roles"]
    for name in [*names, "session:one", "rate:chat:198.51.100.7:60"]:
        kv.put(name, "{}")
    cache = TwoTierCache(kv)

    pages = [cache.status(limit=10)]
    while "cursor" in pages[-1]:
        pages.append(cache.status(cursor=pages[-1]["cursor"], limit=10))

    assert [name for page in pages for name in page["kvKeys"]] == sorted(names)
    assert [len(page["kvKeys"]) for page in pages] == [10, 10, 6]
    assert pages[0]["otherKeys"] == {"rate": 1, "session": 1}
    assert all("otherKeys" not in page for page in pages[1:])


@pytest.mark.parametrize("cursor", ["", "not base64!", "WzksIG51bGxd", "eyJhIjogMX0"])
def test_a_cursor_the_status_did_not_make_is_refused(kv: KVNamespace, cursor: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        TwoTierCache(kv).status(cursor=cursor)


def test_counting_the_other_keys_stops_at_its_budget(
    kv: KVNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    kv.put("session:one", "{}")
    monkeypatch.setattr(cache_status, "COUNT_BUDGET_S", 0.0)

    status = TwoTierCache(kv).status()

    assert (status["otherKeys"], status["otherKeysComplete"]) == ({}, False)


def test_the_other_keys_are_counted_at_most_once_a_minute(kv: KVNamespace, clock: Clock) -> None:
    cache = TwoTierCache(kv, clock=clock)
    kv.put("session:one", "{}")
    first = cache.status()["otherKeys"]
    kv.put("session:two", "{}")

    within_the_minute = cache.status()["otherKeys"]
    clock.advance(61)
    after_it = cache.status()["otherKeys"]

    assert (first, within_the_minute, after_it) == ({"session": 1}, {"session": 1}, {"session": 2})
