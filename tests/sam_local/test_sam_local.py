"""``sam local invoke`` and ``sam local start-api`` run the build against the embedded AWS.

Every function answers its sample event in Docker, through the real Runtime Interface Emulator that SAM
CLI ships, with the data of ``serve --aws-only``: an answer that needs the roles document or the table
proves that ``--env-vars`` reached the functions' AWS clients (a function that talks to real AWS answers
503 here). start-api serves the public routes; it does not emulate the HTTP API's JWT authorizer, so a
signed-in route sees no claims and answers 401 (README: "sam local").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import free_port
from tests.sam_local.conftest import SAM, SamLocal
from tests.sample_events import SAMPLES, SampleEvent

START_API_TIMEOUT_S = 120


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: sample.event)
def test_sam_local_invoke_answers_every_sample_event(sam_local: SamLocal, sample: SampleEvent) -> None:
    event = sam_local.events / f"{sample.event}.json"
    event.write_text(json.dumps(sample.payload(sam_local.warmup_secret)))

    done = subprocess.run(
        [SAM, "local", "invoke", sample.function, "--event", str(event), *sam_local.options()],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, done.stderr[-3000:]
    sample.check(json.loads(lines[-1]))


def _containers() -> set[str]:
    listed = subprocess.run(["docker", "ps", "-aq"], capture_output=True, text=True, check=True).stdout
    return set(listed.split())


@pytest.fixture(scope="module")
def api(sam_local: SamLocal) -> Iterator[str]:
    """``sam local start-api`` on a free loopback port, its containers kept warm and removed after."""
    port = free_port()
    before = _containers()
    process = subprocess.Popen(
        [
            SAM,
            "local",
            "start-api",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--warm-containers",
            "LAZY",
            *sam_local.options(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_API_TIMEOUT_S
        while True:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                urllib.request.urlopen(f"{url}/api/none", timeout=5)  # noqa: S310 - loopback
            except urllib.error.HTTPError:
                break  # it answers (404 or 403 for a path with no route)
            except OSError:
                assert time.monotonic() < deadline, "sam local start-api did not come up"
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        leftover = sorted(_containers() - before)
        if leftover:
            subprocess.run(["docker", "rm", "-f", *leftover], capture_output=True, check=False)


def _call(url: str, method: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - loopback
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_start_api_serves_the_contact_form(api: str) -> None:
    status, body = _call(
        f"{api}/api/contact", "POST", {"name": "Ada", "email": "ada@example.org", "message": "Hello"}
    )

    assert (status, sorted(body)) == (202, ["id"])


def test_start_api_serves_the_chat_twice_in_one_session(api: str) -> None:
    first_status, first = _call(f"{api}/api/public/chat", "POST", {"message": "Hello"})
    second_status, second = _call(
        f"{api}/api/public/chat", "POST", {"message": "And again", "sessionId": first["sessionId"]}
    )

    assert (first_status, second_status) == (200, 200)
    assert "Message 2" in second["reply"]


def test_start_api_serves_the_warmup_with_its_bearer_secret(api: str, sam_local: SamLocal) -> None:
    status, body = _call(
        f"{api}/api/cache/warmup", "POST", headers={"Authorization": f"Bearer {sam_local.warmup_secret}"}
    )

    assert (status, body["failed"]) == (200, [])


def test_start_api_does_not_emulate_the_jwt_authorizer(api: str) -> None:
    # SAM CLI skips HTTP API JWT authorizers: the function gets no claims and refuses the call itself.
    status, body = _call(f"{api}/api/auth/me", "GET", headers={"Authorization": "Bearer not-checked"})

    assert status == 401
    assert body["status"] == 401
