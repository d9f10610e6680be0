"""Upstream sources failing under the cached routes and the warmup: timeouts, resets, 5xx, garbage, text
where JSON was due, oversized answers, and the sources configuration itself unreadable.

What DESIGN.md promises: a failing source never overwrites a good value; the stale value keeps being
served (bounded); errors are never cached; with no value to serve the answer is a 503 problem.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

import pytest

from arcturus import aws, background
from arcturus.cache import FRESH_FOR_S, STALE_BOUND_S, container_cache
from arcturus.kv import KVNamespace
from arcturus.sources import MAX_BODY_BYTES
from tests.unit.support import (
    MEMBER,
    SERVER_ERROR,
    WARMUP_SECRET,
    FailingAWS,
    Stack,
    claims_for,
    cold_start,
    configure,
    http_event,
    invoke,
    json_body,
    load_function,
    roles_document,
    stand_up_stack,
)

TIMEOUT_MS = 300
HEALTH_FAULTS = {
    "timeout": f"no answer within {TIMEOUT_MS} ms",
    "reset": "connection dropped mid-answer",
    "garbage": "connection dropped mid-answer",
    "5xx": "HTTP 502",
}
"""Each way an upstream fails to answer, and the reason a caller is given for it."""
FAULTS = HEALTH_FAULTS | {
    "not-json": "answer is not JSON",
    "oversized": f"larger than {MAX_BODY_BYTES} bytes",
}
"""And the answers a widget cannot use (a health check only looks at the status)."""


class _Upstream(BaseHTTPRequestHandler):
    server: FaultyUpstream
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        mode = self.server.answer_for(self.path)
        if mode == "timeout":
            self.server.released.wait(5)
            return
        if mode in ("reset", "garbage"):
            if mode == "garbage":
                self.wfile.write(b"SURPRISE\r\n\r\n")
            # Linger 0: closing sends a TCP reset instead of an orderly end.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        status, body = {
            "5xx": (502, b'{"error": "bad gateway"}'),
            "not-json": (200, b"<html>down for maintenance</html>"),
            "oversized": (200, b"[" + b"1," * MAX_BODY_BYTES + b"1]"),
        }.get(mode, (200, json.dumps({"source": self.path, "good": True}).encode()))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FaultyUpstream(ThreadingHTTPServer):
    """A loopback upstream whose paths answer well until told how to fail; counts the requests."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Upstream)
        self.modes: dict[str, str] = {}
        self.calls: dict[str, int] = {}
        self.released = threading.Event()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._lock = threading.Lock()

    def answer_for(self, path: str) -> str:
        with self._lock:
            self.calls[path] = self.calls.get(path, 0) + 1
            return self.modes.get(path, "ok")

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Resets and abandoned requests are what these tests are about, not errors."""

    def sources(self) -> dict[str, Any]:
        return {
            "services": [
                {"id": "svc", "name": "Service", "url": f"{self.url}/health", "timeoutMs": TIMEOUT_MS}
            ],
            "widgets": {
                widget: {"url": f"{self.url}/widgets/{widget}", "timeoutMs": TIMEOUT_MS}
                for widget in ("storage", "network")
            },
        }


@pytest.fixture
def upstream() -> Iterator[FaultyUpstream]:
    server = FaultyUpstream()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.released.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def stack(dynamodb: Any, upstream: FaultyUpstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    document = roles_document()
    document["users"][MEMBER]["services"] = ["svc"]
    document["users"][MEMBER]["dashboardProfiles"] = [
        {"id": "one", "name": "Storage", "widgets": ["storage"]},
        {"id": "two", "name": "Storage and network", "widgets": ["storage", "network"]},
    ]
    yield stand_up_stack(monkeypatch, upstream.sources(), document)
    background.drain(10)
    cold_start()


def get(function: ModuleType, path: str, **query: str) -> dict[str, Any]:
    return invoke(function, http_event("GET", path, claims=claims_for(MEMBER), query=query or None))


def unavailable(response: dict[str, Any], reason: str) -> None:
    assert response["statusCode"] == 503, response
    assert response["headers"]["Content-Type"] == "application/problem+json"
    assert int(response["headers"]["Retry-After"]) > 0
    body = json_body(response)
    assert body["status"] == 503
    assert reason in body["detail"]


def stored(kv: KVNamespace, key: str) -> Any:
    """What KV holds at ``key`` (the cache's JSON envelope), or None."""
    return kv.get(key, "json")


def cache_as_of(kv: KVNamespace, key: str, data: Any, age_s: float) -> dict[str, Any]:
    """A value some container cached ``age_s`` seconds ago, as the cache stores it."""
    envelope = {"fetchedAt": time.time() - age_s, "data": data}
    kv.put(key, json.dumps(envelope))
    return envelope


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failing_widget_is_503_without_a_value_and_stale_with_one(
    stack: Stack, upstream: FaultyUpstream, fault: str
) -> None:
    kv = KVNamespace.from_env()
    key = "cache:dashboard:storage"
    upstream.modes["/widgets/storage"] = fault

    # Nothing cached: the caller is told why, and the failure is not cached.
    started = time.monotonic()
    nothing = get(load_function("dashboard"), "/api/dashboard", profile="one")
    elapsed = time.monotonic() - started
    unavailable(nothing, FAULTS[fault])
    assert elapsed < TIMEOUT_MS / 1000 + 1
    assert stored(kv, key) is None

    # A good value from before the fault: served as STALE, and still there after the failed refresh.
    good = cache_as_of(kv, key, {"good": "old"}, FRESH_FOR_S["dashboard"] + 60)
    dashboard = load_function("dashboard")
    served = get(dashboard, "/api/dashboard", profile="one")
    background.drain(5)
    asked = upstream.calls["/widgets/storage"]
    again = get(dashboard, "/api/dashboard", profile="one")
    background.drain(5)

    for response in (served, again):
        assert (response["statusCode"], response["headers"]["X-Cache"]) == (200, "STALE")
        assert json_body(response)["widgets"][0]["data"] == {"good": "old"}
    assert stored(kv, key) == good
    # A failed refresh is not retried on the very next request (back-off).
    assert upstream.calls["/widgets/storage"] == asked


def test_a_value_past_the_stale_bound_is_not_served_for_a_failing_source(
    stack: Stack, upstream: FaultyUpstream
) -> None:
    kv = KVNamespace.from_env()
    cache_as_of(kv, "cache:dashboard:storage", {"good": "ancient"}, STALE_BOUND_S + 60)
    upstream.modes["/widgets/storage"] = "5xx"

    unavailable(get(load_function("dashboard"), "/api/dashboard", profile="one"), FAULTS["5xx"])


def test_a_failing_health_endpoint_is_a_down_service_not_an_error(
    stack: Stack, upstream: FaultyUpstream
) -> None:
    kv = KVNamespace.from_env()
    for fault, reason in HEALTH_FAULTS.items():
        upstream.modes["/health"] = fault
        kv.delete("cache:services:all")
        container_cache.cache_clear()  # and forget this container's copies

        status = get(load_function("status"), "/api/status")
        services = get(load_function("services"), "/api/services")

        assert (status["statusCode"], json_body(status)["status"]) == (200, "outage"), fault
        [check] = json_body(services)["services"]
        assert (check["status"], check["error"]) == ("down", reason)


def test_one_failing_widget_does_not_take_the_dashboard_down(stack: Stack, upstream: FaultyUpstream) -> None:
    upstream.modes["/widgets/storage"] = "reset"

    response = get(load_function("dashboard"), "/api/dashboard", profile="two")

    assert (response["statusCode"], response["headers"]["X-Cache"]) == (200, "MISS")
    storage, network = json_body(response)["widgets"]
    assert storage == {"id": "storage", "error": "connection dropped mid-answer"}
    assert network["data"] == {"source": "/widgets/network", "good": True}
    assert stored(KVNamespace.from_env(), "cache:dashboard:storage") is None


def test_the_next_good_answer_replaces_the_stale_value(stack: Stack, upstream: FaultyUpstream) -> None:
    kv = KVNamespace.from_env()
    cache_as_of(kv, "cache:dashboard:storage", {"good": "old"}, FRESH_FOR_S["dashboard"] + 60)
    dashboard = load_function("dashboard")

    stale = get(dashboard, "/api/dashboard", profile="one")
    background.drain(5)
    fresh = get(dashboard, "/api/dashboard", profile="one")

    assert stale["headers"]["X-Cache"] == "STALE"
    assert (fresh["headers"]["X-Cache"], json_body(fresh)["widgets"][0]["data"]["good"]) == ("HIT", True)
    assert stored(kv, "cache:dashboard:storage")["data"]["good"] is True


def test_a_warmup_never_overwrites_a_good_value_with_a_failure(
    stack: Stack, upstream: FaultyUpstream
) -> None:
    kv = KVNamespace.from_env()
    warmup = load_function("cache_warmup")
    event = http_event("POST", "/api/cache/warmup", headers={"Authorization": f"Bearer {WARMUP_SECRET}"})
    assert json_body(invoke(warmup, event))["failed"] == []
    good = stored(kv, "cache:dashboard:storage")

    upstream.modes["/widgets/storage"] = "not-json"
    report = json_body(invoke(warmup, event))

    assert {"source": "dashboard:storage", "error": "answer is not JSON"} in report["failed"]
    assert "dashboard:network" in report["warmed"]
    assert stored(kv, "cache:dashboard:storage") == good


def test_an_unreadable_sources_configuration_serves_stale_or_503(
    stack: Stack, upstream: FaultyUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sources document lives in SSM in production; SSM failing is the upstream failing."""
    name = "/arcturus/test/sources"
    aws.client("ssm").put_parameter(Name=name, Type="String", Value=json.dumps(upstream.sources()))
    configure(monkeypatch, SOURCES_CONFIG=None)
    configure(monkeypatch, SOURCES_PARAMETER=name)
    kv = KVNamespace.from_env()
    status = load_function("status")

    with FailingAWS(aws.client("ssm")).fail("GetParameter", SERVER_ERROR):
        nothing = get(status, "/api/status")
        report = {"services": [], "checkedAt": "2026-01-01T00:00:00Z"}
        old = cache_as_of(kv, "cache:services:all", report, FRESH_FOR_S["services"] + 60)
        served = get(status, "/api/status")
        background.drain(5)

    unavailable(nothing, "did not answer")
    assert (served["statusCode"], served["headers"]["X-Cache"]) == (200, "STALE")
    assert json_body(served)["checkedAt"] == "2026-01-01T00:00:00Z"
    assert stored(kv, "cache:services:all") == old
