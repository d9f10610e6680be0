"""The cache warmup: POST /api/cache/warmup with its bearer secret and the EventBridge schedule, in process,
on moto (KV, Secrets Manager), against the demo upstream over loopback HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest

from arcturus.kv import KVNamespace
from arcturus.roles import roles_store
from arcturus.secrets import bearer_matches, bearer_token
from arcturus.settings import SettingsError
from local.demo_upstream import DemoServer, demo_sources_config, start_demo_upstream
from tests.unit.support import (
    ADMIN,
    claims_for,
    cold_start,
    configure,
    http_event,
    invoke,
    json_body,
    load_function,
    provision,
    roles_document,
)

SECRET = "warm-me-up-0123456789abcdefghijklmnopqrstuvwx"
TIMEOUT_MS = 500
ALL_WARMED = [
    "services",
    "dashboard:system-health",
    "dashboard:docker-status",
    "dashboard:storage",
    "dashboard:network",
    "roles",
]


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoServer]:
    """The demo sources, every one with a 500 ms timeout so slow ones are cut short quickly."""
    server, base_url = start_demo_upstream()
    config = demo_sources_config(base_url)
    for source in [*config["services"], *config["widgets"].values()]:
        source["timeoutMs"] = TIMEOUT_MS
    configure(monkeypatch, SOURCES_CONFIG=json.dumps(config))
    yield server
    server.shutdown()


@pytest.fixture
def kv(dynamodb: Any, upstream: DemoServer, monkeypatch: pytest.MonkeyPatch) -> KVNamespace:
    cold_start()
    provision()
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secrets.create_secret(Name="arcturus-warmup-test", SecretString=SECRET)["ARN"]
    configure(monkeypatch, CACHE_WARMUP_SECRET_ARN=arn)
    return KVNamespace.from_env()


@pytest.fixture
def warmup(kv: KVNamespace) -> ModuleType:
    return load_function("cache_warmup")


def post(module: ModuleType, authorization: str | None) -> dict[str, Any]:
    headers = {"Authorization": authorization} if authorization is not None else None
    return invoke(module, http_event("POST", "/api/cache/warmup", headers=headers))


def scheduled_event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-30T08:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/warmup"],
        "detail": {},
    }


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", f"Basic {SECRET}", "Bearer wrong", f"Bearer {SECRET}x", f"Bearer {SECRET[:-1]}"],
)
def test_warmup_needs_the_bearer_secret(
    warmup: ModuleType, upstream: DemoServer, authorization: str | None
) -> None:
    response = post(warmup, authorization)

    assert response["statusCode"] == 401
    assert response["headers"]["WWW-Authenticate"].startswith("Bearer")
    assert json_body(response)["status"] == 401
    assert sum(upstream.upstream.calls.values()) == 0


def test_warmup_writes_every_entry(warmup: ModuleType, kv: KVNamespace, upstream: DemoServer) -> None:
    response = post(warmup, f"Bearer {SECRET}")

    body = json_body(response)
    assert response["statusCode"] == 200
    assert (body["warmed"], body["failed"]) == (ALL_WARMED, [])
    assert body["durationMs"] < 2000
    assert kv.list(prefix="cache:")["keys"] == [
        {"name": f"cache:{kind}", "expiration": pytest.approx(time.time() + 3600, abs=5)}
        for kind in (
            "dashboard:docker-status",
            "dashboard:network",
            "dashboard:storage",
            "dashboard:system-health",
            "services:all",
        )
    ]
    # every source was asked exactly once
    assert set(upstream.upstream.calls.values()) == {1}
    assert len(upstream.upstream.calls) == 9


def test_one_failing_and_one_slow_source_hold_up_nobody(
    warmup: ModuleType, kv: KVNamespace, upstream: DemoServer
) -> None:
    # Given a good storage value from an earlier run, then storage failing and git hanging for 5 s
    post(warmup, f"Bearer {SECRET}")
    before = json.loads(kv.get("cache:dashboard:storage"))
    upstream.upstream.set_fault("storage", "fail", None)
    upstream.upstream.set_fault("git", "slow", 5000)
    upstream.upstream.set_fault("network", "slow", 5000)
    started = time.monotonic()

    # When the warmup runs
    body = json_body(post(warmup, f"Bearer {SECRET}"))

    # Then it takes about one timeout (not three), reports the failures and warms everything else
    elapsed = time.monotonic() - started
    assert elapsed < 1.2
    assert body["durationMs"] < 1200
    assert body["failed"] == [
        {"source": "service:git", "error": f"no answer within {TIMEOUT_MS} ms"},
        {"source": "dashboard:storage", "error": "HTTP 503"},
        {"source": "dashboard:network", "error": f"no answer within {TIMEOUT_MS} ms"},
    ]
    assert body["warmed"] == [
        "services",
        "dashboard:system-health",
        "dashboard:docker-status",
        "roles",
    ]
    # and the failing source's earlier value is left as it was
    assert json.loads(kv.get("cache:dashboard:storage")) == before
    services = json.loads(kv.get("cache:services:all"))["data"]["services"]
    assert [s["id"] for s in services if s["status"] == "down"] == ["git"]


def test_the_schedule_runs_the_same_warmup(warmup: ModuleType, kv: KVNamespace) -> None:
    from tests.unit.support import FakeContext

    result = warmup.handler(scheduled_event(), FakeContext("cache-warmup"))

    assert (result["warmed"], result["failed"]) == (ALL_WARMED, [])
    assert kv.get("cache:services:all") is not None


def test_after_warmup_status_is_a_hit_without_upstream_calls(
    warmup: ModuleType, kv: KVNamespace, upstream: DemoServer
) -> None:
    from tests.unit.support import FakeContext

    warmup.handler(scheduled_event(), FakeContext("cache-warmup"))
    asked = sum(upstream.upstream.calls.values())
    cold_start()  # the status function runs in a container of its own

    status = invoke(load_function("status"), http_event("GET", "/api/status", claims=claims_for(ADMIN)))
    services = invoke(load_function("services"), http_event("GET", "/api/services", claims=claims_for(ADMIN)))
    dashboard = invoke(
        load_function("dashboard"), http_event("GET", "/api/dashboard", claims=claims_for(ADMIN))
    )

    assert [r["headers"]["X-Cache"] for r in (status, services, dashboard)] == ["HIT", "HIT", "HIT"]
    assert json_body(status)["status"] == "operational"
    assert sum(upstream.upstream.calls.values()) == asked


def test_warmup_refreshes_the_roles_document(warmup: ModuleType, kv: KVNamespace) -> None:
    assert "late@example.com" not in roles_store().document()["users"]
    document, version = roles_store().read_with_version()
    # another container adds a user; this container's copy is still fresh and does not know yet
    roles_store().replace(roles_document("late@example.com"), version)
    roles_store.cache_clear()
    assert "late@example.com" not in document["users"]
    stale_copy = roles_store()
    stale_copy.document()
    kv.put("data:user-roles", json.dumps(roles_document("later@example.com")))

    post(warmup, f"Bearer {SECRET}")

    assert "later@example.com" in stale_copy.document()["users"]


def test_bearer_tokens_are_parsed_strictly() -> None:
    assert bearer_token("bearer abc") == "abc"
    assert bearer_token("Bearer   abc  ") == "abc"
    assert bearer_token("Token abc") is None
    assert bearer_token(None) is None
    assert bearer_matches("Bearer abc", "abc")
    assert not bearer_matches("Bearer abd", "abc")
    assert not bearer_matches("Bearer ", "")


@pytest.mark.usefixtures("kv")
def test_a_function_missing_its_secret_fails_its_init_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(monkeypatch, CACHE_WARMUP_SECRET_ARN=None)

    with pytest.raises(SettingsError, match="CACHE_WARMUP_SECRET_ARN is not set"):
        load_function("cache_warmup")
