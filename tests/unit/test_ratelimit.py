"""The rate limiter: atomic counting, windows that end on time, the flood shield, failing open, and the
resolver-wide middleware that applies it by configuration."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from arcturus import aws
from arcturus.kv import KVNamespace
from arcturus.observability import metrics
from arcturus.ratelimit import FloodShield, RateLimiter, Rule
from arcturus.web.guards import guards, limited, requires
from arcturus.web.problem import HTTPProblem
from arcturus.web.resolver import build_resolver
from tests.conftest import Clock
from tests.unit.support import (
    ADMIN,
    MEMBER,
    DynamoDBCalls,
    FakeContext,
    InjectedError,
    claims_for,
    cold_start,
    http_event,
    json_body,
    provision,
)

CONTACT = Rule("contact", limit=5, window_s=60)
CHAT = Rule("chat", limit=10, window_s=60)
AUTH = Rule("auth", limit=20, window_s=60)
WINDOW_START = 1_700_000_040  # a multiple of 60: a window starts here
IP = "203.0.113.9"


@pytest.fixture
def clock() -> Clock:
    """18 s into a window, so 42 s remain."""
    return Clock(WINDOW_START + 18)


@pytest.fixture
def limiter(kv: KVNamespace, clock: Clock) -> RateLimiter:
    return RateLimiter(kv, clock=clock)


@pytest.fixture
def fresh_container(dynamodb: Any) -> Iterator[None]:
    """A cold start: no cached clients, limiter or roles store from an earlier test."""
    cold_start()
    yield
    cold_start()


def hits(limiter: RateLimiter, rule: Rule, ip: str, times: int) -> list[bool]:
    return [limiter.hit(rule, ip).allowed for _ in range(times)]


class TestCounting:
    def test_allows_the_limit_then_denies_until_the_window_ends(self, limiter: RateLimiter) -> None:
        decisions = [limiter.hit(CONTACT, IP) for _ in range(6)]

        assert [d.allowed for d in decisions] == [True] * 5 + [False]
        assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
        assert decisions[0].headers() == {
            "RateLimit-Policy": '"contact";q=5;w=60',
            "RateLimit": '"contact";r=4;t=42',
        }
        assert decisions[5].headers() == {
            "RateLimit-Policy": '"contact";q=5;w=60',
            "RateLimit": '"contact";r=0;t=42',
            "Retry-After": "42",
        }
        assert metrics.metric_set["RateLimited"]["Value"] == [1.0]

    def test_one_counter_per_rule_ip_and_window_expiring_after_the_window(
        self, limiter: RateLimiter, kv: KVNamespace
    ) -> None:
        hits(limiter, CONTACT, IP, 3)

        listed = kv.list(prefix="rate:")["keys"]
        assert listed == [{"name": f"rate:contact:{IP}:{WINDOW_START}", "expiration": WINDOW_START + 60 + 60}]
        assert kv.get(f"rate:contact:{IP}:{WINDOW_START}") == "3"

    def test_the_retry_after_counts_down_to_the_window_end(self, limiter: RateLimiter, clock: Clock) -> None:
        hits(limiter, CONTACT, IP, 5)
        clock.advance(40.5)  # 1.5 s left: whole seconds, rounded up

        decision = limiter.hit(CONTACT, IP)

        assert not decision.allowed
        assert decision.headers()["Retry-After"] == "2"

    def test_contact_and_chat_are_counted_apart(self, limiter: RateLimiter) -> None:
        assert hits(limiter, CONTACT, IP, 6) == [True] * 5 + [False]

        assert hits(limiter, CHAT, IP, 11) == [True] * 10 + [False]
        assert hits(limiter, AUTH, IP, 20) == [True] * 20

    def test_ipv6_clients_are_counted_per_64_prefix(self, limiter: RateLimiter) -> None:
        # One subscriber's /64 has 2^64 addresses: rotating through them must not buy more quota.
        addresses = [f"2001:db8:1:2::{n:x}" for n in range(1, 7)] + ["2001:db8:1:2:ffff:ffff:ffff:ffff"]

        assert [limiter.hit(CONTACT, ip).allowed for ip in addresses] == [True] * 5 + [False] * 2
        assert hits(limiter, CONTACT, "2001:db8:1:3::1", 5) == [True] * 5

    def test_ipv4_clients_are_counted_per_address_also_when_mapped_into_ipv6(
        self, limiter: RateLimiter, kv: KVNamespace
    ) -> None:
        assert hits(limiter, CONTACT, "203.0.113.9", 3) == [True] * 3
        assert hits(limiter, CONTACT, "::ffff:203.0.113.9", 3) == [True, True, False]
        assert hits(limiter, CONTACT, "203.0.113.10", 5) == [True] * 5
        assert [key["name"] for key in kv.list(prefix="rate:contact:203.0.113.9:")["keys"]] == [
            f"rate:contact:203.0.113.9:{WINDOW_START}"
        ]

    def test_other_ips_are_unaffected(self, limiter: RateLimiter) -> None:
        hits(limiter, CONTACT, IP, 8)

        assert hits(limiter, CONTACT, "203.0.113.10", 5) == [True] * 5
        assert hits(limiter, CONTACT, "2001:db8::1", 5) == [True] * 5

    @pytest.mark.usefixtures("serialized_moto")
    def test_fifty_concurrent_hits_in_one_container_allow_exactly_the_limit(
        self, limiter: RateLimiter
    ) -> None:
        barrier = threading.Barrier(50)

        def hit(_: int) -> bool:
            barrier.wait()
            return limiter.hit(CONTACT, IP).allowed

        with ThreadPoolExecutor(max_workers=50) as pool:
            allowed = list(pool.map(hit, range(50)))

        assert allowed.count(True) == 5

    @pytest.mark.usefixtures("serialized_moto")
    def test_fifty_concurrent_hits_from_fifty_containers_allow_exactly_the_limit(
        self, kv: KVNamespace, clock: Clock
    ) -> None:
        # A limiter each: no flood shield shared, so every request reaches DynamoDB at once.
        containers = [RateLimiter(kv, clock=clock) for _ in range(50)]
        barrier = threading.Barrier(50)

        def hit(container: RateLimiter) -> bool:
            barrier.wait()
            return container.hit(CONTACT, IP).allowed

        with ThreadPoolExecutor(max_workers=50) as pool:
            allowed = list(pool.map(hit, containers))

        assert allowed.count(True) == 5
        assert kv.get(f"rate:contact:{IP}:{WINDOW_START}") == "50"


class TestWindows:
    def test_a_steady_allowed_rate_is_never_locked_out(self, limiter: RateLimiter, clock: Clock) -> None:
        # The original renewed a 60 s expiry on every request: once every 50 s was counted forever.
        outcomes = []
        for _ in range(200):  # almost three hours
            outcomes.append(limiter.hit(CONTACT, IP).allowed)
            clock.advance(50)

        assert all(outcomes)

    def test_the_limit_every_window_is_always_allowed(self, limiter: RateLimiter, clock: Clock) -> None:
        for _ in range(30):
            assert hits(limiter, CHAT, IP, 10) == [True] * 10
            clock.advance(60)

    def test_a_new_window_starts_on_time_however_the_client_behaves(
        self, kv: KVNamespace, limiter: RateLimiter, clock: Clock
    ) -> None:
        hits(limiter, CONTACT, IP, 5)
        clock.advance(41)  # 1 s before the end; the client keeps hammering
        assert hits(limiter, CONTACT, IP, 3) == [False] * 3
        # Not only this container's memory: a container without the shield is denied by the counter.
        assert not RateLimiter(kv, clock=clock).hit(CONTACT, IP).allowed

        clock.advance(1)  # the boundary
        decision = limiter.hit(CONTACT, IP)

        assert decision.allowed
        assert decision.remaining == 4
        assert decision.reset_s == 60

    def test_worst_case_burst_is_twice_the_limit_across_a_boundary(
        self, limiter: RateLimiter, clock: Clock
    ) -> None:
        clock.advance(41.5)  # half a second before the boundary
        before = hits(limiter, CONTACT, IP, 10)
        clock.advance(1)  # half a second after it
        after = hits(limiter, CONTACT, IP, 10)

        assert before.count(True) + after.count(True) == 2 * CONTACT.limit


class TestFloodShield:
    def test_a_flood_costs_at_most_limit_plus_one_writes_per_window(
        self, dynamodb: Any, limiter: RateLimiter, clock: Clock
    ) -> None:
        with DynamoDBCalls(dynamodb) as calls:
            allowed = hits(limiter, CONTACT, IP, 1000)
            first_window = calls.operations.count("UpdateItem")
            calls.reset()
            clock.advance(42)
            allowed_next = hits(limiter, CONTACT, IP, 1000)

        assert allowed.count(True) == allowed_next.count(True) == 5
        assert first_window <= CONTACT.limit + 1
        assert calls.operations.count("UpdateItem") <= CONTACT.limit + 1
        assert set(calls.operations) == {"UpdateItem"}

    def test_a_container_that_finds_the_quota_used_elsewhere_writes_once(
        self, dynamodb: Any, kv: KVNamespace, clock: Clock
    ) -> None:
        hits(RateLimiter(kv, clock=clock), CONTACT, IP, 5)
        other = RateLimiter(kv, clock=clock)

        with DynamoDBCalls(dynamodb) as calls:
            allowed = hits(other, CONTACT, IP, 1000)

        assert not any(allowed)
        assert calls.operations == ["UpdateItem"]

    def test_the_shield_forgets_expired_then_oldest_clients(self, clock: Clock) -> None:
        shield = FloodShield(capacity=3)
        now = clock()
        shield.block(CONTACT, "10.0.0.1", until=now + 1, now=now)
        for last in range(2, 6):
            shield.block(CONTACT, f"10.0.0.{last}", until=now + 60, now=now + 2)

        assert len(shield) == 3
        assert [shield.blocks(CONTACT, f"10.0.0.{last}", now + 2) for last in range(1, 6)] == [
            False,
            False,
            True,
            True,
            True,
        ]
        assert not shield.blocks(CHAT, "10.0.0.5", now + 2)


class TestFailOpen:
    @pytest.mark.parametrize(
        "failure",
        [
            {"code": "ProvisionedThroughputExceededException", "status": 400},
            {"code": "InternalServerError", "status": 500},
            {"raises": EndpointConnectionError(endpoint_url="https://dynamodb.invalid")},
            {"raises": ReadTimeoutError(endpoint_url="https://dynamodb.invalid")},
        ],
        ids=["throttled", "server-error", "unreachable", "timed-out"],
    )
    def test_store_errors_let_requests_through_with_a_metric_and_a_warning(
        self, dynamodb: Any, limiter: RateLimiter, caplog: pytest.LogCaptureFixture, failure: dict[str, Any]
    ) -> None:
        with InjectedError(dynamodb, "UpdateItem", **failure) as injected:
            decisions = [limiter.hit(CONTACT, IP) for _ in range(8)]

        assert all(d.allowed for d in decisions)
        assert injected.calls == 8
        assert decisions[0].headers() == {"RateLimit-Policy": '"contact";q=5;w=60'}
        assert metrics.metric_set["RateLimiterFailOpen"]["Value"] == [1.0] * 8
        warnings = [r for r in caplog.records if r.getMessage() == "rate limiter failing open"]
        assert len(warnings) == 8
        assert {r.levelname for r in warnings} == {"WARNING"}

    @pytest.mark.parametrize(
        "code",
        ["AccessDeniedException", "ResourceNotFoundException", "ValidationException"],
    )
    def test_a_configuration_error_is_not_an_outage_and_does_not_fail_open(
        self, dynamodb: Any, limiter: RateLimiter, code: str
    ) -> None:
        with InjectedError(dynamodb, "UpdateItem", code=code, status=400), pytest.raises(ClientError):
            limiter.hit(CONTACT, IP)

        assert "RateLimiterFailOpen" not in metrics.metric_set

    def test_counting_resumes_when_the_store_recovers(self, dynamodb: Any, limiter: RateLimiter) -> None:
        with InjectedError(dynamodb, "UpdateItem", code="ThrottlingException", status=400):
            hits(limiter, CONTACT, IP, 3)

        assert hits(limiter, CONTACT, IP, 6) == [True] * 5 + [False]


@pytest.mark.usefixtures("fresh_rate_window")
class TestMiddleware:
    """The limiter as a route declares it: ``guards(limited(rule))`` on the route, nothing elsewhere."""

    @pytest.fixture
    def app(self, fresh_container: None) -> Any:
        app = build_resolver()

        @app.post("/api/contact", **guards(limited(CONTACT)))
        def contact() -> dict[str, str]:
            return {"ok": "yes"}

        @app.post("/api/public/chat", **guards(limited(CHAT)))
        def chat() -> dict[str, str]:
            raise HTTPProblem(404, "No such chat session.")

        @app.post("/api/auth/profile", **guards(limited(AUTH), requires()))
        def profile() -> dict[str, str]:
            return {"ok": "yes"}

        @app.post("/api/cache/warmup")
        def warmup() -> dict[str, str]:
            return {"ok": "yes"}

        return app

    def call(self, app: Any, path: str, **event: Any) -> dict[str, Any]:
        result: dict[str, Any] = app.resolve(http_event("POST", path, body={}, **event), FakeContext())
        return result

    def test_a_limiter_without_access_to_its_table_is_a_500_logged_as_an_error(
        self, app: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        with InjectedError(
            aws.client("dynamodb", aws.LIMITER), "UpdateItem", code="AccessDeniedException", status=400
        ):
            response = self.call(app, "/api/contact")

        assert response["statusCode"] == 500
        assert json_body(response)["status"] == 500
        assert [r.levelname for r in caplog.records if r.getMessage() == "unhandled error"] == ["ERROR"]

    def test_allowed_answers_carry_the_ratelimit_fields(self, app: Any) -> None:
        response = self.call(app, "/api/contact")

        assert response["statusCode"] == 200
        assert response["headers"]["RateLimit-Policy"] == '"contact";q=5;w=60'
        assert response["headers"]["RateLimit"].startswith('"contact";r=4;t=')

    def test_over_the_limit_is_a_429_problem_with_retry_after(self, app: Any) -> None:
        for _ in range(5):
            assert self.call(app, "/api/contact")["statusCode"] == 200

        response = self.call(app, "/api/contact")

        assert response["statusCode"] == 429
        assert response["headers"]["Content-Type"] == "application/problem+json"
        assert 1 <= int(response["headers"]["Retry-After"]) <= 60
        assert response["headers"]["RateLimit"].startswith('"contact";r=0;t=')
        body = json_body(response)
        assert body["status"] == 429
        assert body["title"] == "Too Many Requests"
        assert self.call(app, "/api/contact", source_ip="198.51.100.99")["statusCode"] == 200

    def test_a_problem_from_the_route_keeps_the_ratelimit_fields(self, app: Any) -> None:
        response = self.call(app, "/api/public/chat")

        assert response["statusCode"] == 404
        assert response["headers"]["RateLimit"].startswith('"chat";r=9;t=')

    def test_routes_without_a_rule_are_untouched(self, app: Any, dynamodb: Any) -> None:
        with DynamoDBCalls(aws.dynamodb()) as calls:
            responses = [self.call(app, "/api/cache/warmup") for _ in range(30)]

        assert {r["statusCode"] for r in responses} == {200}
        assert not any("RateLimit" in r["headers"] for r in responses)
        assert calls.operations == []

    def test_the_client_ip_is_the_source_ip_never_a_header(self, app: Any) -> None:
        for n in range(5):
            spoofed = {"X-Forwarded-For": f"10.9.9.{n}", "X-Real-IP": f"10.8.8.{n}"}
            assert self.call(app, "/api/contact", headers=spoofed)["statusCode"] == 200

        assert self.call(app, "/api/contact", headers={"X-Forwarded-For": "10.7.7.7"})["statusCode"] == 429

    def test_admins_are_not_limited_and_members_are(self, app: Any) -> None:
        provision()
        admin = [self.call(app, "/api/auth/profile", claims=claims_for(ADMIN)) for _ in range(25)]
        member = [self.call(app, "/api/auth/profile", claims=claims_for(MEMBER)) for _ in range(21)]

        assert {r["statusCode"] for r in admin} == {200}
        assert not any("RateLimit" in r["headers"] for r in admin)
        assert [r["statusCode"] for r in member] == [200] * 20 + [429]
