"""GET /api/status, /api/services, /api/dashboard and /api/cache/status in process, on moto, against the
demo upstream over loopback HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from arcturus import background
from arcturus.cache import FRESH_FOR_S, STALE_BOUND_S, container_cache
from arcturus.kv import KVNamespace
from local.demo_upstream import DemoServer, demo_sources_config, start_demo_upstream
from tests.unit.support import (
    ADMIN,
    DEMO,
    MEMBER,
    DynamoDBCalls,
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

GUEST = "guest@example.com"


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoServer]:
    server, base_url = start_demo_upstream()
    configure(monkeypatch, SOURCES_CONFIG=json.dumps(demo_sources_config(base_url)))
    yield server
    server.shutdown()


@pytest.fixture
def kv(dynamodb: Any, upstream: DemoServer) -> KVNamespace:
    """A fresh container: the three users of the original design plus a guest without status rights,
    and profiles to choose from."""
    cold_start()
    document = roles_document()
    document["roles"]["guest"] = {"permissions": ["use:chat"]}
    document["users"][GUEST] = {"email": GUEST, "role": "guest"}
    document["users"][ADMIN]["dashboardProfiles"] = [
        {"id": "default", "name": "Command Center", "widgets": list(demo_sources_config("")["widgets"])},
        {"id": "disks", "name": "Disks", "widgets": ["storage"]},
    ]
    document["users"][DEMO]["dashboardProfiles"] = []
    provision(document)
    return KVNamespace.from_env()


def get(module: ModuleType, path: str, email: str | None = ADMIN, **query: str) -> dict[str, Any]:
    claims = claims_for(email) if email else None
    return invoke(module, http_event("GET", path, claims=claims, query=query or None))


def upstream_calls(server: DemoServer) -> int:
    return sum(server.upstream.calls.values())


def emitted_metrics(stdout: str) -> dict[str, float]:
    """The metrics the handlers flushed (CloudWatch embedded metric format lines), summed by name."""
    totals: dict[str, float] = {}
    for line in stdout.splitlines():
        if '"_aws"' not in line:
            continue
        record = json.loads(line)
        for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(record[metric["Name"]])
    return totals


def store_old(kv: KVNamespace, key: str, data: Any, age_s: float) -> None:
    """A value some container cached ``age_s`` seconds ago (as the cache stores it)."""
    kv.put(key, json.dumps({"fetchedAt": time.time() - age_s, "data": data}))


# -- /api/status and /api/services ---------------------------------------------------------------------


def test_status_misses_once_then_hits_without_upstream_or_dynamodb(
    kv: KVNamespace, upstream: DemoServer
) -> None:
    status = load_function("status")

    first = get(status, "/api/status")
    calls_after_first = upstream_calls(upstream)
    with DynamoDBCalls(container_cache()._kv._table._client) as dynamo:  # type: ignore[attr-defined]
        second = get(status, "/api/status", MEMBER)

    assert (first["statusCode"], first["headers"]["X-Cache"]) == (200, "MISS")
    assert json_body(first)["status"] == "operational"
    assert json_body(first)["services"] == {"total": 5, "up": 5, "down": 0}
    assert calls_after_first == 5
    assert (second["statusCode"], second["headers"]["X-Cache"]) == (200, "HIT")
    # One shared value; the member's summary covers the two services their grant lists.
    assert json_body(second)["services"] == {"total": 2, "up": 2, "down": 0}
    assert json_body(second)["checkedAt"] == json_body(first)["checkedAt"]
    assert upstream_calls(upstream) == 5
    assert dynamo.operations == []


def test_status_reports_down_services(kv: KVNamespace, upstream: DemoServer) -> None:
    upstream.upstream.set_fault("media", "fail", None)

    body = json_body(get(load_function("status"), "/api/status"))

    assert body["status"] == "degraded"
    assert body["services"] == {"total": 5, "up": 4, "down": 1}
    assert body["down"] == [{"id": "media", "name": "Jellyfin", "error": "HTTP 503"}]


@pytest.mark.parametrize(
    ("email", "visible"),
    [(ADMIN, ["gateway", "git", "grafana", "media", "nas"]), (MEMBER, ["git", "grafana"]), (DEMO, [])],
)
def test_a_caller_sees_only_the_services_their_grant_lists(
    kv: KVNamespace, upstream: DemoServer, email: str, visible: list[str]
) -> None:
    upstream.upstream.set_fault("media", "fail", None)
    upstream.upstream.set_fault("git", "fail", None)

    services = json_body(get(load_function("services"), "/api/services", email))
    status = json_body(get(load_function("status"), "/api/status", email))

    assert [check["id"] for check in services["services"]] == visible
    down = [service for service in ("git", "media") if service in visible]
    assert [entry["id"] for entry in status["down"]] == down
    assert status["services"] == {"total": len(visible), "up": len(visible) - len(down), "down": len(down)}
    assert status["status"] == ("unknown" if not visible else "degraded")


def test_services_lists_every_health_check(kv: KVNamespace, upstream: DemoServer) -> None:
    upstream.upstream.set_fault("nas", "fail", None)

    response = get(load_function("services"), "/api/services", ADMIN)

    assert response["headers"]["X-Cache"] == "MISS"
    checks = {c["id"]: c for c in json_body(response)["services"]}
    assert list(checks) == ["gateway", "git", "grafana", "media", "nas"]
    assert (checks["git"]["status"], checks["git"]["statusCode"]) == ("up", 200)
    assert (checks["nas"]["status"], checks["nas"]["statusCode"]) == ("down", 503)


@pytest.mark.parametrize(
    ("function", "path", "email", "status"),
    [
        ("status", "/api/status", None, 401),
        ("status", "/api/status", GUEST, 403),
        ("status", "/api/status", "stranger@example.com", 403),
        ("services", "/api/services", GUEST, 403),
        ("dashboard", "/api/dashboard", GUEST, 403),
        ("cache_status", "/api/cache/status", MEMBER, 403),
        ("cache_status", "/api/cache/status", None, 401),
    ],
)
@pytest.mark.usefixtures("kv")
def test_routes_need_their_permission(
    upstream: DemoServer, function: str, path: str, email: str | None, status: int
) -> None:
    response = get(load_function(function), path, email)

    assert response["statusCode"] == status
    assert response["headers"]["Content-Type"] == "application/problem+json"
    assert upstream_calls(upstream) == 0


def test_a_stale_status_is_answered_then_refreshed_after_the_response(
    kv: KVNamespace, upstream: DemoServer
) -> None:
    down = {"id": "git", "name": "Gitea", "status": "down", "statusCode": None, "latencyMs": 9, "error": "x"}
    old = {"services": [down], "checkedAt": "2026-01-01T00:00:00Z"}
    store_old(kv, "cache:services:all", old, FRESH_FOR_S["services"] + 30)
    status = load_function("status")

    stale = get(status, "/api/status")
    assert background.drain(10)
    fresh = get(status, "/api/status")

    assert (stale["headers"]["X-Cache"], json_body(stale)) == (
        "STALE",
        {
            "status": "outage",
            "services": {"total": 1, "up": 0, "down": 1},
            "down": [{"id": "git", "name": "Gitea", "error": "x"}],
            "averageLatencyMs": None,
            "checkedAt": "2026-01-01T00:00:00Z",
        },
    )
    assert upstream_calls(upstream) == 5
    assert fresh["headers"]["X-Cache"] == "HIT"
    assert json_body(fresh)["status"] == "operational"


# -- /api/dashboard ------------------------------------------------------------------------------------


def test_dashboard_shows_the_first_profile_by_default(kv: KVNamespace, upstream: DemoServer) -> None:
    dashboard = load_function("dashboard")

    first = get(dashboard, "/api/dashboard")
    second = get(dashboard, "/api/dashboard")

    body = json_body(first)
    assert (first["headers"]["X-Cache"], second["headers"]["X-Cache"]) == ("MISS", "HIT")
    assert body["profile"] == {"id": "default", "name": "Command Center"}
    assert [p["id"] for p in body["profiles"]] == ["default", "disks"]
    assert [w["id"] for w in body["widgets"]] == ["system-health", "docker-status", "storage", "network"]
    assert all(w["cache"] == "MISS" and "data" in w for w in body["widgets"])
    assert len(body["widgets"][0]["data"]["hosts"]) == 3
    assert upstream_calls(upstream) == 4


def test_dashboard_profile_is_chosen_by_query(kv: KVNamespace, upstream: DemoServer) -> None:
    dashboard = load_function("dashboard")

    chosen = json_body(get(dashboard, "/api/dashboard", profile="disks"))
    unknown = get(dashboard, "/api/dashboard", profile="nope")

    assert [w["id"] for w in chosen["widgets"]] == ["storage"]
    assert unknown["statusCode"] == 404
    assert "default, disks" in json_body(unknown)["detail"]


def test_dashboard_without_profiles_is_empty(kv: KVNamespace, upstream: DemoServer) -> None:
    response = get(load_function("dashboard"), "/api/dashboard", DEMO)

    assert response["statusCode"] == 200
    assert json_body(response) == {"profile": None, "profiles": [], "widgets": []}
    assert upstream_calls(upstream) == 0


def test_a_failing_widget_is_reported_beside_the_others(
    kv: KVNamespace, upstream: DemoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    upstream.upstream.set_fault("network", "fail", None)

    response = get(load_function("dashboard"), "/api/dashboard")

    assert response["statusCode"] == 200
    widgets = {w["id"]: w for w in json_body(response)["widgets"]}
    assert widgets["network"] == {"id": "network", "error": "HTTP 503"}
    assert "data" in widgets["storage"]
    assert emitted_metrics(capsys.readouterr().out) == {"SourceError": 1, "CacheMiss": 3}


def test_a_failing_widget_keeps_its_stale_value_until_the_bound(
    kv: KVNamespace, upstream: DemoServer
) -> None:
    good = {"pools": [{"name": "tank", "health": "ONLINE"}]}
    store_old(kv, "cache:dashboard:storage", good, FRESH_FOR_S["dashboard"] + 60)
    upstream.upstream.set_fault("storage", "fail", None)
    dashboard = load_function("dashboard")

    stale = get(dashboard, "/api/dashboard", profile="disks")
    assert background.drain(10)

    # the good value is served, the failed refresh does not replace it
    assert stale["headers"]["X-Cache"] == "STALE"
    assert json_body(stale)["widgets"][0]["data"] == good
    assert json.loads(kv.get("cache:dashboard:storage"))["data"] == good
    assert upstream.upstream.calls["storage"] == 1


def test_past_the_bound_a_failing_source_is_a_503_and_is_not_cached(
    kv: KVNamespace, upstream: DemoServer
) -> None:
    store_old(kv, "cache:dashboard:storage", {"pools": []}, STALE_BOUND_S + 60)
    upstream.upstream.set_fault("storage", "fail", None)
    dashboard = load_function("dashboard")

    failed = get(dashboard, "/api/dashboard", profile="disks")
    upstream.upstream.set_fault("storage", "ok", None)
    recovered = get(dashboard, "/api/dashboard", profile="disks")

    assert failed["statusCode"] == 503
    assert failed["headers"]["Retry-After"] == "30"
    assert json_body(failed)["title"] == "Source unavailable"
    assert "HTTP 503" in json_body(failed)["detail"]
    assert (recovered["statusCode"], recovered["headers"]["X-Cache"]) == (200, "MISS")


def test_dashboard_query_is_validated(kv: KVNamespace, upstream: DemoServer) -> None:
    response = get(load_function("dashboard"), "/api/dashboard", profile="x" * 65)

    assert response["statusCode"] == 422


def test_dashboard_query_is_validated_when_only_the_parsed_parameters_carry_it(
    kv: KVNamespace, upstream: DemoServer
) -> None:
    # A hand-made event may give queryStringParameters without rawQueryString: still validated.
    event = http_event("GET", "/api/dashboard", claims=claims_for(ADMIN))
    event["queryStringParameters"] = {"profile": "x" * 65}

    assert invoke(load_function("dashboard"), event)["statusCode"] == 422


# -- /api/cache/status ---------------------------------------------------------------------------------


def test_cache_status_counts_memory_and_lists_the_cache_and_roles_keys(
    kv: KVNamespace, upstream: DemoServer
) -> None:
    cache_status = load_function("cache_status")
    empty = json_body(get(cache_status, "/api/cache/status"))
    get(load_function("status"), "/api/status")
    get(load_function("dashboard"), "/api/dashboard", profile="disks")

    filled = json_body(get(cache_status, "/api/cache/status"))

    assert empty == {
        "memoryCache": {"keys": 0, "oldestEntry": None, "newestEntry": None},
        "kvKeys": ["data:user-roles"],
        "otherKeys": {},
        "otherKeysComplete": True,
    }
    assert filled["memoryCache"]["keys"] == 2
    assert filled["memoryCache"]["oldestEntry"].endswith("Z")
    assert filled["kvKeys"] == ["cache:dashboard:storage", "cache:services:all", "data:user-roles"]


def test_cache_status_never_names_sessions_visitors_or_messages(
    kv: KVNamespace, upstream: DemoServer
) -> None:
    # A chat session id is a bearer token for that chat; rate: keys hold visitors' addresses.
    secret_keys = [
        "session:6f1c1f0e-3c1b-4b7e-9a53-2b8f6f0c9d11",
        "ai:conversation:6f1c1f0e-3c1b-4b7e-9a53-2b8f6f0c9d11",
        "rate:chat:198.51.100.7:1767225600",
        "contact:2026-01-01T00:00:00.000Z:6f1c1f0e",
    ]
    for key in secret_keys:
        kv.put(key, "{}")

    response = get(load_function("cache_status"), "/api/cache/status")

    body = json_body(response)
    assert not any(key in response["body"] for key in secret_keys)
    assert body["otherKeys"] == {"ai": 1, "contact": 1, "rate": 1, "session": 1}
    assert body["otherKeysComplete"] is True


def test_cache_status_refuses_a_made_up_cursor(kv: KVNamespace) -> None:
    response = get(load_function("cache_status"), "/api/cache/status", cursor="made-up")

    assert (response["statusCode"], json_body(response)["status"]) == (400, 400)
