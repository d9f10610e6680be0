"""Post-response work against a Runtime API and Extensions API served over loopback HTTP.

``LambdaService`` below plays the Lambda service with AWS's semantics: internal extensions register
during init (refused once the runtime asked for its first invocation); an invocation is handed to the
runtime and to every extension at once; the environment counts as busy until the runtime *and* every
extension asked for their next event again. The runtime side is played by a loop in the test (for the
edge cases) and by the real ``awslambdaric`` runtime client in a subprocess (end to end).
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from arcturus import background
from arcturus.background import PostResponseExtension, WorkQueue
from tests.unit.support import configure

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class _Party:
    """The runtime or one extension: whether it waits in ``next`` and what it has been handed."""

    waiting: bool = False
    inbox: collections.deque[dict[str, Any]] = field(default_factory=collections.deque)


class LambdaService:
    """The Runtime API and Extensions API of one execution environment, on a loopback port."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.runtime = _Party()
        self.extensions: dict[str, _Party] = {}
        self.events: list[tuple[float, str, str]] = []
        self.responses: dict[str, Any] = {}
        self.stopping = False
        self.initialized = False
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                service.post(self, body)

            def do_GET(self) -> None:
                service.get(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, what: str, detail: str = "") -> None:
        with self.changed:
            self.events.append((time.monotonic(), what, detail))
            self.changed.notify_all()

    def times(self, what: str, detail: str | None = None) -> list[float]:
        with self.changed:
            return [t for t, w, d in self.events if w == what and (detail is None or d == detail)]

    # -- the platform's side -----------------------------------------------------------------------

    def invoke(self, payload: Any, *, deadline_s: float = 5.0) -> str:
        """Hand an invocation to the runtime and every extension once the environment is idle."""
        with self.changed:
            if not self.changed.wait_for(self._idle, timeout=10):
                raise AssertionError("the environment never became idle")
            request_id = str(uuid.uuid4())
            deadline_ms = int((time.time() + deadline_s) * 1000)
            self.runtime.inbox.append(
                {"requestId": request_id, "deadlineMs": deadline_ms, "payload": payload}
            )
            for party in self.extensions.values():
                party.inbox.append(
                    {"eventType": "INVOKE", "requestId": request_id, "deadlineMs": deadline_ms}
                )
            self.changed.notify_all()
        return request_id

    def wait_idle(self, timeout: float = 10.0) -> float:
        """The moment the runtime and every extension were back in ``next`` (the environment may freeze)."""
        with self.changed:
            if not self.changed.wait_for(self._idle, timeout=timeout):
                raise AssertionError("the environment stayed busy")
            return time.monotonic()

    def _idle(self) -> bool:
        parties = [self.runtime, *self.extensions.values()]
        return all(p.waiting and not p.inbox for p in parties)

    def stop(self) -> None:
        with self.changed:
            self.stopping = True
            self.changed.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # -- the HTTP side -----------------------------------------------------------------------------

    def post(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        path = request.path
        if path == "/2020-01-01/extension/register":
            name = request.headers.get("Lambda-Extension-Name") or ""
            if self.initialized or json.loads(body) != {"events": ["INVOKE"]} or not name:
                self.record("register-refused", name)
                return _answer(request, 403, {"errorType": "Extension.InvalidRegistration"})
            identifier = str(uuid.uuid4())
            with self.changed:
                self.extensions[identifier] = _Party()
            self.record("register", name)
            return _answer(
                request, 200, {"functionName": "test"}, {"Lambda-Extension-Identifier": identifier}
            )
        if path.startswith("/2018-06-01/runtime/invocation/") and path.endswith("/response"):
            request_id = path.split("/")[4]
            self.responses[request_id] = json.loads(body)
            self.record("response", request_id)
            return _answer(request, 202, {"status": "OK"})
        if path == "/test/mark":
            self.record(json.loads(body)["what"])
            return _answer(request, 200, {})
        self.record("unexpected", path)
        return _answer(request, 404, {"errorType": "NotFound"})

    def get(self, request: BaseHTTPRequestHandler) -> None:
        if request.path == "/2018-06-01/runtime/invocation/next":
            with self.changed:
                self.initialized = True
            item = self._wait_next(self.runtime, "runtime-next", "")
            if item is None:
                return None
            headers = {
                "Lambda-Runtime-Aws-Request-Id": item["requestId"],
                "Lambda-Runtime-Deadline-Ms": str(item["deadlineMs"]),
                "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:test",
                "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
            }
            return _answer(request, 200, item["payload"], headers)
        if request.path == "/2020-01-01/extension/event/next":
            identifier = request.headers.get("Lambda-Extension-Identifier") or ""
            party = self.extensions.get(identifier)
            if party is None:
                return _answer(request, 403, {"errorType": "Extension.UnknownExtensionIdentifier"})
            event = self._wait_next(party, "extension-next", identifier)
            return None if event is None else _answer(request, 200, event)
        return _answer(request, 404, {"errorType": "NotFound"})

    def _wait_next(self, party: _Party, what: str, detail: str) -> dict[str, Any] | None:
        with self.changed:
            party.waiting = True
            self.events.append((time.monotonic(), what, detail))
            self.changed.notify_all()
            self.changed.wait_for(lambda: bool(party.inbox) or self.stopping)
            if self.stopping:
                return None
            party.waiting = False
            return party.inbox.popleft()


def _answer(
    request: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(body).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.end_headers()
    request.wfile.write(data)


@pytest.fixture
def service() -> Iterator[LambdaService]:
    lambda_service = LambdaService()
    yield lambda_service
    lambda_service.stop()


class _Context:
    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id


def run_runtime(
    service: LambdaService, handler: Callable[[Any, Any], Any], invocations: int
) -> threading.Thread:
    """Play the runtime: ask for invocations over HTTP, call ``handler``, post its response."""

    def loop() -> None:
        for _ in range(invocations + 1):
            request = urllib.request.Request(f"http://{service.address}/2018-06-01/runtime/invocation/next")
            try:
                with urllib.request.urlopen(request) as answer:  # noqa: S310 - the loopback service
                    request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
                    event = json.loads(answer.read())
            except OSError:
                return
            result = handler(event, _Context(request_id))
            urllib.request.urlopen(
                urllib.request.Request(
                    f"http://{service.address}/2018-06-01/runtime/invocation/{request_id}/response",
                    data=json.dumps(result).encode(),
                    method="POST",
                )
            ).close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def test_environment_is_held_until_the_queued_work_finished(
    service: LambdaService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a handler that queues 0.3 s of work, wrapped at init under a Runtime API
    configure(monkeypatch, AWS_LAMBDA_RUNTIME_API=service.address)
    done: list[float] = []

    def work() -> None:
        time.sleep(0.3)
        done.append(time.monotonic())

    def handler(event: Any, context: Any) -> dict[str, Any]:
        background.wait_until(work)
        return {"ok": event["n"]}

    wrapped = background.supports_wait_until(handler)
    assert service.times("register")
    assert not service.times("runtime-next")
    run_runtime(service, wrapped, invocations=1)

    # When Lambda invokes the function
    request_id = service.invoke({"n": 1})
    idle_at = service.wait_idle()

    # Then the response went out before the work finished, and the environment stayed busy until it had
    response_at = service.times("response", request_id)[0]
    assert service.responses[request_id] == {"ok": 1}
    assert len(done) == 1
    assert response_at < done[0] <= idle_at
    assert done[0] - response_at > 0.2


def test_handler_that_returns_before_the_invoke_event_arrives_still_holds(
    service: LambdaService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an extension whose INVOKE event is read only after the handler already returned
    queue = WorkQueue()
    extension = PostResponseExtension(service.address, queue, name="late-reader")
    extension.register()
    service.record("init-done")
    finished: list[float] = []
    queue.submit(lambda: (time.sleep(0.2), finished.append(time.monotonic())))
    extension.handler_finished("early")

    # When the event for that request is handed over and the extension starts reading
    with service.changed:
        identifier = next(iter(service.extensions))
        service.extensions[identifier].inbox.append(
            {"eventType": "INVOKE", "requestId": "early", "deadlineMs": int((time.time() + 5) * 1000)}
        )
    extension.start()

    # Then it still waits for the queued work before asking for its next event
    with service.changed:
        assert service.changed.wait_for(lambda: len(service.times("extension-next", identifier)) >= 2, 5)
    assert finished
    assert finished[0] <= service.times("extension-next", identifier)[1]


def test_hold_ends_at_the_invocation_deadline(
    service: LambdaService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given queued work far longer than the invocation may last
    configure(monkeypatch, AWS_LAMBDA_RUNTIME_API=service.address)
    release = threading.Event()

    def handler(event: Any, context: Any) -> str:
        background.wait_until(lambda: release.wait(10))
        return "answered"

    wrapped = background.supports_wait_until(handler)
    run_runtime(service, wrapped, invocations=1)

    # When the invocation has 1.5 s until its deadline
    started = time.monotonic()
    request_id = service.invoke({}, deadline_s=1.5)
    idle_at = service.wait_idle()

    # Then the extension lets go half a second before the deadline, with the work still running
    assert service.responses[request_id] == "answered"
    assert 0.7 < idle_at - started < 1.4
    assert not release.is_set()
    release.set()
    assert background.drain(5)


def test_hold_is_capped_after_the_handler_returned(service: LambdaService) -> None:
    # Given an extension holding at most 0.3 s
    queue = WorkQueue()
    extension = PostResponseExtension(service.address, queue, hold_s=0.3)
    extension.register()
    extension.start()
    release = threading.Event()

    def handler(event: Any, context: Any) -> str:
        queue.submit(lambda: release.wait(10))
        try:
            return "ok"
        finally:
            extension.handler_finished(context.aws_request_id)

    run_runtime(service, handler, invocations=1)

    # When an invocation with plenty of time queues endless work
    service.invoke({}, deadline_s=30)
    started = time.monotonic()
    idle_at = service.wait_idle()

    # Then the environment is released after the cap, not the deadline
    assert idle_at - started < 1.5
    release.set()
    assert queue.wait_idle(5)


def test_every_invocation_is_held_for_its_own_work(
    service: LambdaService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a handler that queues work on every call
    configure(monkeypatch, AWS_LAMBDA_RUNTIME_API=service.address)
    done: list[int] = []

    def handler(event: Any, context: Any) -> int:
        background.wait_until(lambda: (time.sleep(0.1), done.append(event["n"])))
        return int(event["n"])

    run_runtime(service, background.supports_wait_until(handler), invocations=3)

    # When three invocations follow each other
    for n in range(3):
        service.invoke({"n": n})
        service.wait_idle()
        # Then each one's work finished before the environment went idle
        assert done == list(range(n + 1))


def test_registration_after_init_is_refused_and_work_still_runs(
    service: LambdaService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a runtime that already asked for its first invocation (init is over)
    run_runtime(service, lambda event, context: "late", invocations=0)
    with service.changed:
        assert service.changed.wait_for(lambda: service.initialized, 5)
    configure(monkeypatch, AWS_LAMBDA_RUNTIME_API=service.address)
    done = threading.Event()

    # When a handler is wrapped now
    wrapped = background.supports_wait_until(lambda event, context: background.wait_until(done.set))

    # Then the extension is refused (logged, not raised) and queued work still runs
    assert service.times("register-refused")
    wrapped({}, _Context("r1"))
    assert done.wait(5)


def test_without_a_runtime_api_work_runs_on_worker_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no Runtime API (a plain process)
    configure(monkeypatch, AWS_LAMBDA_RUNTIME_API=None)
    results: list[str] = []
    caller = threading.get_ident()
    threads: list[int] = []

    def handler(event: Any, context: Any) -> str:
        background.wait_until(lambda: (threads.append(threading.get_ident()), results.append(event)))
        background.wait_until(lambda: 1 / 0)  # a failing task is logged and does not stop the others
        return "ok"

    # When the wrapped handler runs
    assert background.supports_wait_until(handler)("e", _Context("r")) == "ok"

    # Then the work ran on another thread and drain() waited for it
    assert background.drain(5)
    assert results == ["e"]
    assert threads
    assert threads[0] != caller


def test_awslambdaric_runtime_end_to_end(service: LambdaService, tmp_path: Path) -> None:
    # Given a function module run by the real Lambda runtime interface client
    (tmp_path / "slow_after.py").write_text(
        "import json, os, time, urllib.request\n"
        "from arcturus import background\n"
        "def mark(what):\n"
        "    url = 'http://' + os.environ['AWS_LAMBDA_RUNTIME_API'] + '/test/mark'\n"
        "    urllib.request.urlopen(urllib.request.Request(url, data=json.dumps({'what': what}).encode(),"
        " method='POST')).close()\n"
        "def work():\n"
        "    time.sleep(0.4)\n"
        "    mark('work-done')\n"
        "def _handler(event, context):\n"
        "    background.wait_until(work)\n"
        "    return {'echo': event}\n"
        "handler = background.supports_wait_until(_handler)\n"
    )
    env = {
        **os.environ,
        "AWS_LAMBDA_RUNTIME_API": service.address,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "shared"), str(tmp_path)]),
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "POWERTOOLS_TRACE_DISABLED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "awslambdaric", "slow_after.handler"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        # When the environment finished init and is invoked twice
        first = service.invoke({"n": 1})
        idle_first = service.wait_idle()
        second = service.invoke({"n": 2})
        idle_second = service.wait_idle()
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode(errors="replace")

    # Then the extension registered before the runtime's first request for work
    assert service.times("register")[0] < service.times("runtime-next")[0], output
    # And each response left at once while the environment stayed busy until that invocation's work was done
    assert service.responses[first] == {"echo": {"n": 1}}
    assert service.responses[second] == {"echo": {"n": 2}}
    work_done = service.times("work-done")
    assert len(work_done) == 2, output
    assert service.times("response", first)[0] < work_done[0] <= idle_first
    assert service.times("response", second)[0] < work_done[1] <= idle_second
