"""Sources: the configuration document, and health checks and widgets against loopback upstreams."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from arcturus import sources
from arcturus.sources import (
    MAX_BODY_BYTES,
    ServiceSource,
    SourceError,
    SourcesConfigInvalid,
    check_service,
    check_services,
    fetch_widget,
    gather,
    load_config,
    parse_config,
    services,
    slowest_timeout_s,
    widgets,
)
from local.demo_upstream import DemoServer, demo_sources_config, start_demo_upstream
from tests.unit.support import configure


@pytest.fixture
def upstream() -> Iterator[tuple[DemoServer, str]]:
    server, base_url = start_demo_upstream()
    yield server, base_url
    server.shutdown()


def service(base_url: str, sid: str = "git", timeout_ms: int = 1000) -> ServiceSource:
    return {"id": sid, "name": sid.title(), "url": f"{base_url}/health/{sid}", "timeoutMs": timeout_ms}


# -- configuration -------------------------------------------------------------------------------------


def test_the_demo_configuration_is_a_valid_document() -> None:
    config = parse_config(json.dumps(demo_sources_config("http://127.0.0.1:8")))

    assert [s["id"] for s in services(config)] == ["gateway", "git", "grafana", "media", "nas"]
    assert set(widgets(config)) == {"system-health", "docker-status", "storage", "network"}
    assert slowest_timeout_s(config) == 3.0


def test_the_snake_case_timeout_earlier_versions_read_is_still_read() -> None:
    config = parse_config('{"services": [{"id": "a", "name": "A", "url": "http://h/", "timeout_ms": 500}]}')

    assert slowest_timeout_s(config) == 0.5


def test_defaults_fill_an_empty_document() -> None:
    config = parse_config('{"services": [], "widgets": {}}')

    assert (services(config), widgets(config), slowest_timeout_s(config)) == ([], {}, 3.0)


@pytest.mark.parametrize(
    ("document", "mentions"),
    [
        ({"services": [{"id": "a", "name": "A", "url": "ftp://host/x"}]}, "http(s) URL"),
        ({"services": [{"id": "a", "name": "A", "url": "http://h/", "timeoutMs": 60_000}]}, "timeoutMs"),
        ({"services": [{"id": "a", "name": "A", "url": "http://h/"}] * 2}, "unique"),
        ({"services": [{"id": "Bad Id", "name": "A", "url": "http://h/"}]}, "id"),
        ({"widgets": {"weather": {"url": "http://h/"}}}, "weather"),
        ({"widgets": {}, "extra": 1}, "extra"),
    ],
)
def test_invalid_documents_are_refused_with_the_reason(document: dict[str, Any], mentions: str) -> None:
    with pytest.raises(SourcesConfigInvalid, match="invalid") as caught:
        parse_config(json.dumps(document))

    assert mentions in str(caught.value)


def test_config_comes_from_the_environment_first(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, SOURCES_CONFIG=json.dumps(demo_sources_config("http://127.0.0.1:9")))
    configure(monkeypatch, SOURCES_PARAMETER="/never/read")

    assert len(services(load_config())) == 5


def test_config_comes_from_the_ssm_parameter_and_is_cached(
    monkeypatch: pytest.MonkeyPatch, aws_env: None
) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    name = f"/arcturus/test-{uuid.uuid4().hex}/sources"
    ssm.put_parameter(Name=name, Type="String", Value=json.dumps(demo_sources_config("http://127.0.0.1:9")))
    configure(monkeypatch, SOURCES_CONFIG=None)
    configure(monkeypatch, SOURCES_PARAMETER=name)

    first = load_config()
    ssm.put_parameter(Name=name, Type="String", Value='{"services": []}', Overwrite=True)

    # Within the parameter cache's max age the container keeps its copy (no SSM call per request)
    assert load_config() == first
    assert len(services(first)) == 5


def test_missing_configuration_is_an_error(monkeypatch: pytest.MonkeyPatch, aws_env: None) -> None:
    configure(monkeypatch, SOURCES_CONFIG=None)
    configure(monkeypatch, SOURCES_PARAMETER=None)
    with pytest.raises(SourcesConfigInvalid, match="neither"):
        load_config()

    configure(monkeypatch, SOURCES_PARAMETER=f"/missing-{uuid.uuid4().hex}")
    with pytest.raises(SourcesConfigInvalid, match="could not be read"):
        load_config()


# -- health checks -------------------------------------------------------------------------------------


def test_a_healthy_service_is_up_with_its_status_code_and_latency(upstream: tuple[DemoServer, str]) -> None:
    _, base_url = upstream

    checked = check_service(service(base_url))

    assert checked["status"] == "up"
    assert checked["statusCode"] == 200
    assert 0 <= checked["latencyMs"] < 1000
    assert checked["checkedAt"].endswith("Z")
    assert "error" not in checked


def test_a_failing_service_is_down_with_its_status_code(upstream: tuple[DemoServer, str]) -> None:
    server, base_url = upstream
    server.upstream.set_fault("git", "fail", None)

    checked = check_service(service(base_url))

    assert (checked["status"], checked["statusCode"], checked["error"]) == ("down", 503, "HTTP 503")


def test_a_slow_service_is_down_after_its_timeout(upstream: tuple[DemoServer, str]) -> None:
    server, base_url = upstream
    server.upstream.set_fault("git", "slow", 3000)
    started = time.monotonic()

    checked = check_service(service(base_url, timeout_ms=300))

    assert time.monotonic() - started < 1.5
    assert (checked["status"], checked["statusCode"]) == ("down", None)
    assert checked["error"] == "no answer within 300 ms"


def test_an_unreachable_service_is_down() -> None:
    checked = check_service({"id": "gone", "name": "Gone", "url": "http://127.0.0.1:9/health"})

    assert (checked["status"], checked["error"]) == ("down", "connection failed")


def test_a_service_whose_host_name_does_not_resolve_is_down_with_that_reason() -> None:
    # .invalid never resolves (RFC 2606); urllib3 1.26 and 2.x report it differently.
    checked = check_service({"id": "typo", "name": "Typo", "url": "http://status.example.invalid/"})

    assert (checked["status"], checked["error"]) == ("down", "host name not found")


def test_checks_reuse_pooled_connections(upstream: tuple[DemoServer, str]) -> None:
    server, base_url = upstream
    pool = sources._http.connection_from_url(base_url)
    before = pool.num_connections

    for _ in range(10):
        assert check_service(service(base_url))["status"] == "up"

    assert pool.num_connections - before == 1
    assert server.upstream.calls["git"] == 10


def test_services_are_checked_at_once_so_the_slowest_timeout_bounds_the_run(
    upstream: tuple[DemoServer, str],
) -> None:
    server, base_url = upstream
    for sid in ("gateway", "git", "grafana", "media"):
        server.upstream.set_fault(sid, "slow", 3000)
    config = parse_config(
        json.dumps(
            {
                "services": [
                    {"id": sid, "name": sid, "url": f"{base_url}/health/{sid}", "timeoutMs": 400}
                    for sid in ("gateway", "git", "grafana", "media", "nas")
                ]
            }
        )
    )
    started = time.monotonic()

    checks = check_services(config)

    elapsed = time.monotonic() - started
    assert elapsed < 1.0  # four 400 ms timeouts one after the other would take 1.6 s
    assert [c["id"] for c in checks] == ["gateway", "git", "grafana", "media", "nas"]
    assert [c["status"] for c in checks] == ["down"] * 4 + ["up"]


# -- widgets -------------------------------------------------------------------------------------------


def test_a_widget_answers_its_json(upstream: tuple[DemoServer, str]) -> None:
    _, base_url = upstream

    data = fetch_widget("docker-status", {"url": f"{base_url}/widgets/docker-status"})

    assert data["running"] + data["stopped"] == len(data["containers"])


def test_a_failing_widget_is_a_source_error(upstream: tuple[DemoServer, str]) -> None:
    server, base_url = upstream
    server.upstream.set_fault("storage", "fail", None)

    with pytest.raises(SourceError) as caught:
        fetch_widget("storage", {"url": f"{base_url}/widgets/storage"})

    assert (caught.value.source, caught.value.reason) == ("dashboard:storage", "HTTP 503")


def test_an_error_answer_does_not_poison_the_pooled_connection(upstream: tuple[DemoServer, str]) -> None:
    server, base_url = upstream
    server.upstream.set_fault("storage", "fail", None)

    for _ in range(5):
        with pytest.raises(SourceError, match="HTTP 503"):
            fetch_widget("storage", {"url": f"{base_url}/widgets/storage"})
        assert "hosts" in fetch_widget("system-health", {"url": f"{base_url}/widgets/system-health"})
        assert check_service(service(base_url))["status"] == "up"


class _OddUpstream(BaseHTTPRequestHandler):
    """Answers that are not usable widget data: text, and a body past the size limit."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = b"<html>maintenance</html>" if self.path == "/text" else b"[" + b"1," * MAX_BODY_BYTES + b"1]"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def odd_upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OddUpstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(("path", "reason"), [("/text", "not JSON"), ("/huge", "larger than")])
def test_unusable_widget_answers_are_source_errors(odd_upstream: str, path: str, reason: str) -> None:
    for _ in range(3):  # and the connection that carried an unread rest is not reused
        with pytest.raises(SourceError, match=reason):
            fetch_widget("network", {"url": odd_upstream + path})


def test_gather_reports_each_outcome_and_gives_up_at_its_deadline() -> None:
    release = threading.Event()

    def fails() -> int:
        raise SourceError("b", "broken")

    started = time.monotonic()
    results = gather({"a": lambda: 1, "b": fails, "c": lambda: release.wait(5)}, timeout_s=0.3)
    release.set()

    assert time.monotonic() - started < 1.0
    assert results["a"] == 1
    assert isinstance(results["b"], SourceError)
    assert isinstance(results["c"], SourceError)
    assert str(results["c"]) == "c: no answer within 300 ms"
