"""Workers behave like Lambda execution environments: warm, isolated, one invocation at a time.

The fixture server runs at most two workers per function.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.integration.conftest import LocalServe

pytestmark = pytest.mark.integration


def _concurrently(server: LocalServe, paths: list[str]) -> tuple[list[Any], float]:
    started = time.monotonic()
    with ThreadPoolExecutor(len(paths)) as pool:
        bodies = list(pool.map(server.get_json, paths))
    return bodies, time.monotonic() - started


def test_a_warm_worker_keeps_its_module_state_and_functions_do_not_share_one(fixture_app: LocalServe) -> None:
    first = fixture_app.get_json("/echo")
    second = fixture_app.get_json("/echo")
    other = fixture_app.get_json("/other")

    assert second["pid"] == first["pid"]
    assert second["count"] == first["count"] + 1
    assert other["pid"] != first["pid"]
    assert other["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "OtherFunction"


def test_concurrent_invocations_get_their_own_workers_and_queue_beyond_the_cap(
    fixture_app: LocalServe,
) -> None:
    cold, _ = _concurrently(fixture_app, ["/sleep/1", "/sleep/1"])
    warm, elapsed = _concurrently(fixture_app, ["/sleep/1", "/sleep/1"])
    queued, queued_elapsed = _concurrently(fixture_app, ["/sleep/0.5"] * 3)

    workers = {body["pid"] for body in cold}
    assert len(workers) == 2
    assert {body["pid"] for body in warm} == workers
    assert elapsed < 1.8
    assert {body["pid"] for body in queued} == workers
    assert queued_elapsed >= 1.0


def test_a_timed_out_invocation_is_a_504_and_its_worker_is_replaced(fixture_app: LocalServe) -> None:
    before = fixture_app.get_json("/sleep/0")

    started = time.monotonic()
    response = fixture_app.request("GET", "/sleep/5")
    elapsed = time.monotonic() - started
    after = {fixture_app.get_json("/sleep/0")["pid"] for _ in range(3)}

    assert response.status == 504
    assert response.header("content-type") == "application/problem+json"
    assert response.json()["title"] == "Gateway Timeout"
    assert 2.0 <= elapsed < 4.0
    assert before["pid"] not in after


def test_a_crashed_worker_is_a_502_and_the_next_invocation_gets_a_new_one(fixture_app: LocalServe) -> None:
    before = fixture_app.get_json("/crash/ok")

    crashed = fixture_app.request("GET", "/crash/exit")
    after = fixture_app.get_json("/crash/ok")

    assert crashed.status == 502
    assert crashed.json() == {"message": "Internal Server Error"}
    assert after["pid"] != before["pid"]


def test_a_handler_exception_is_a_502_and_the_worker_stays(fixture_app: LocalServe) -> None:
    before = fixture_app.get_json("/crash/ok")

    failed = fixture_app.request("GET", "/crash/raise")
    after = fixture_app.get_json("/crash/ok")

    assert failed.status == 502
    assert after["pid"] == before["pid"]


def test_an_extension_holds_its_environment_after_the_response(fixture_app: LocalServe) -> None:
    """The response does not wait for post-response work, but the environment stays busy until the
    internal extension asks for its next event (AfterFunction holds it 0.8 s after each invocation)."""
    first = fixture_app.get_json("/after")
    time.sleep(1.0)

    started = time.monotonic()
    warm = fixture_app.get_json("/after")
    answered_in = time.monotonic() - started
    while_held = fixture_app.get_json("/after")
    time.sleep(1.0)
    later = fixture_app.get_json("/after")

    assert first["registered"] == 200
    assert first["late_registration"] == 403
    assert warm["pid"] == first["pid"]
    assert warm["done"] == 1
    assert answered_in < 0.6
    assert while_held["pid"] != first["pid"]
    assert later["pid"] == first["pid"]
    assert later["done"] == 2
