"""The cached status routes through ``python -m local serve``: real workers (awslambdaric), the local
Runtime and Extensions API, the embedded AWS, and the demo upstream as the sources.

A server of its own, because its sources document (the ``SourcesConfig`` parameter) points at a demo
upstream this module starts; one worker per function, so consecutive requests meet the same
environment; schedules slowed down so only the test fires the warmup.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from local.demo_upstream import DemoServer, demo_sources_config, start_demo_upstream
from tests.integration.conftest import APP_TEMPLATE, LocalServe

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[DemoServer, str]]:
    server, base_url = start_demo_upstream()
    yield server, base_url
    server.shutdown()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, demo: tuple[DemoServer, str]) -> Iterator[LocalServe]:
    sources = json.dumps(demo_sources_config(demo[1]), separators=(",", ":"))
    server = LocalServe(
        APP_TEMPLATE,
        tmp_path_factory.mktemp("status") / "data",
        "--parameter-overrides",
        f"SourcesConfig={sources}",
        "--max-workers",
        "1",
        "--schedule-scale",
        "1000",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin(served: LocalServe) -> dict[str, str]:
    token = served.cli("token", "--email", "admin@example.com", "--ttl", "900").stdout.splitlines()[-1]
    return {"Authorization": f"Bearer {token}"}


def warm(served: LocalServe, path: str) -> None:
    """Start the route's one environment without touching its cache: a signed-in caller who is not in the
    roles document is refused (403) after the function's init, before it looks at any cached value."""
    token = served.cli("token", "--email", "nobody@example.com", "--ttl", "900").stdout.splitlines()[-1]
    refused = served.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    assert refused.status == 403, refused.body


def calls(demo: tuple[DemoServer, str]) -> int:
    return sum(demo[0].upstream.calls.values())


def test_after_the_warmup_status_is_a_hit_without_upstream_calls(
    served: LocalServe, demo: tuple[DemoServer, str], admin: dict[str, str]
) -> None:
    # Given the schedule's warmup ran (every source asked once)
    before = calls(demo)
    served.cli("warmup")
    asked = calls(demo) - before

    # When the status function answers for the first time
    response = served.request("GET", "/api/status", headers=admin)

    # Then it is a HIT from KV and no source was asked again
    assert asked == 9
    assert response.status == 200, response.body
    assert response.header("X-Cache") == "HIT"
    assert response.json()["services"] == {"total": 5, "up": 5, "down": 0}
    assert calls(demo) - before == asked


def test_a_stale_answer_is_refreshed_after_the_response_while_the_environment_is_held(
    served: LocalServe, demo: tuple[DemoServer, str], admin: dict[str, str]
) -> None:
    # Given a warm services function (its cold start is not what is timed below), a services value past
    # its freshness, and one service that takes 1.5 s to answer
    warm(served, "/api/services")
    old = {"fetchedAt": time.time() - 3000, "data": {"services": [], "checkedAt": "2026-01-01T00:00:00Z"}}
    served.cli("kv", "put", "cache:services:all", json.dumps(old))
    demo[0].upstream.set_fault("git", "slow", 1500)
    git_before = demo[0].upstream.calls["git"]
    try:
        # When the services function is asked
        started = time.monotonic()
        stale = served.request("GET", "/api/services", headers=admin)
        answered = time.monotonic() - started
        # and asked again at once: its only environment is still busy with the refresh
        fresh = served.request("GET", "/api/services", headers=admin)
        waited = time.monotonic() - started
    finally:
        demo[0].upstream.set_fault("git", "ok", None)

    # Then the stale value came back without waiting for the slow source...
    assert (stale.status, stale.header("X-Cache")) == (200, "STALE")
    assert stale.json() == old["data"]
    assert answered < 1.2
    # ...and the second request met the refreshed value from the same environment's memory
    assert (fresh.status, fresh.header("X-Cache")) == (200, "HIT")
    assert [s["id"] for s in fresh.json()["services"]] == ["gateway", "git", "grafana", "media", "nas"]
    assert waited >= 1.4
    assert demo[0].upstream.calls["git"] == git_before + 1
