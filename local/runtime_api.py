"""Lambda's Runtime API and Extensions API for one execution environment (one worker process).

The worker runs ``python -m awslambdaric <handler>`` with ``AWS_LAMBDA_RUNTIME_API`` pointing at this
server, so handlers run under the same runtime client as in AWS. The state machine is Lambda's:

- init ends when the runtime and every registered extension have asked for their next event;
  extensions may register only before that (an internal extension does it while the module imports);
- an invocation goes to the runtime and, as an INVOKE event, to each extension at the same time;
- the caller gets the result as soon as the runtime posts it, but the environment stays busy (no new
  invocation, ``/invocation/next`` unanswered) until every extension has asked for its next event again;
- past the deadline (10 s for init, then the function's timeout) the environment is killed.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

from local.httpserver import BodyError, ListenerServer, read_body

INIT_TIMEOUT = 10.0
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
"""Lambda's synchronous response payload limit."""

Kind = Literal["ok", "error", "timeout", "crash"]


@dataclass(frozen=True)
class Result:
    kind: Kind
    body: bytes = b""


class Invocation:
    """One request to a function: its payload, and the result once the environment produced one."""

    def __init__(self, payload: bytes, timeout: float, function_arn: str) -> None:
        self.request_id = str(uuid.uuid4())
        self.payload = payload
        self.timeout = timeout
        self.function_arn = function_arn
        self.trace_id = (
            f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"
        )
        self.deadline_ms = 0
        self.result: Result | None = None
        self.done = threading.Event()

    def finish(self, result: Result) -> None:
        if self.result is None:
            self.result = result
            self.done.set()


@dataclass
class _Extension:
    name: str
    events: frozenset[str]
    ready: bool = False
    """Waiting in /event/next with nothing left to do for the last invocation."""
    queue: deque[dict[str, Any]] = field(default_factory=deque)


def _error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class ExecutionEnvironment:
    """The Runtime/Extensions API state of one environment, guarded by its pool's condition.

    ``kill`` stops the worker process; it is called without the lock held.
    """

    def __init__(self, cond: threading.Condition, kill: Callable[[str], None], info: dict[str, str]) -> None:
        self._cond = cond
        self._kill = kill
        self.info = info
        self.initialized = False
        self.dead = False
        self.inflight: Invocation | None = None
        self._delivered = False
        self._extensions: dict[str, _Extension] = {}
        self._timer: threading.Timer | None = None

    @property
    def available(self) -> bool:
        """Free for a new invocation (the caller holds the condition)."""
        return not self.dead and self.inflight is None

    def _invoke_subscribers(self) -> list[_Extension]:
        return [ext for ext in self._extensions.values() if "INVOKE" in ext.events]

    # -- the pool's side (condition held) -----------------------------------------------------------

    def assign(self, invocation: Invocation) -> None:
        self.inflight = invocation
        self._delivered = False
        self._arm(INIT_TIMEOUT, invocation, "did not take the invocation in time (init over 10 s?)")
        self._cond.notify_all()

    def mark_dead(self, reason: Result) -> None:
        """The process is gone: fail what it had in hand with ``reason``."""
        self.dead = True
        if self._timer is not None:
            self._timer.cancel()
        if self.inflight is not None:
            self.inflight.finish(reason)
            self.inflight = None
        self._cond.notify_all()

    def _arm(self, seconds: float, invocation: Invocation, why: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(seconds, self._expire, (invocation, why))
        self._timer.daemon = True
        self._timer.start()

    def _expire(self, invocation: Invocation, why: str) -> None:
        with self._cond:
            if self.inflight is not invocation or self.dead:
                return
            self.mark_dead(Result("timeout"))
        self._kill(why)

    def _release_if_done(self) -> None:
        invocation = self.inflight
        done = invocation is not None and invocation.result is not None
        if done and all(ext.ready for ext in self._invoke_subscribers()):
            self.inflight = None
            if self._timer is not None:
                self._timer.cancel()
            self._cond.notify_all()

    # -- the Runtime API ------------------------------------------------------------------------------

    def next_invocation(self) -> Invocation | None:
        """Block until there is an invocation to run (None once the environment is dead)."""
        with self._cond:
            self.initialized = True
            self._cond.notify_all()
            while not self.dead and not (
                self.inflight is not None
                and not self._delivered
                and all(ext.ready for ext in self._invoke_subscribers())
            ):
                self._cond.wait()
            if self.dead or self.inflight is None:
                return None
            invocation = self.inflight
            self._delivered = True
            invocation.deadline_ms = int((time.time() + invocation.timeout) * 1000)
            event = {
                "eventType": "INVOKE",
                "deadlineMs": invocation.deadline_ms,
                "requestId": invocation.request_id,
                "invokedFunctionArn": invocation.function_arn,
                "tracing": {"type": "X-Amzn-Trace-Id", "value": invocation.trace_id},
            }
            for ext in self._invoke_subscribers():
                ext.ready = False
                ext.queue.append(event)
            self._arm(invocation.timeout, invocation, f"timed out after {invocation.timeout:g} s")
            self._cond.notify_all()
            return invocation

    def post_result(self, request_id: str, result: Result) -> tuple[int, bytes]:
        """The runtime's /response or /error for ``request_id``: (status, body) to answer it."""
        with self._cond:
            invocation = self.inflight
            if invocation is None or not self._delivered or invocation.request_id != request_id:
                return 400, _error_body("InvalidRequestID", f"no invocation {request_id} in progress")
            if invocation.result is not None:
                return 400, _error_body("InvalidStateTransition", "the invocation already has a result")
            if len(result.body) > MAX_RESPONSE_BYTES:
                message = f"Response payload size ({len(result.body)} bytes) exceeded maximum allowed"
                invocation.finish(Result("error", _error_body("Function.ResponseSizeTooLarge", message)))
                self._release_if_done()
                return 413, _error_body("RequestEntityTooLarge", message)
            invocation.finish(result)
            self._release_if_done()
            return 202, b'{"status":"OK"}'

    def post_init_error(self, body: bytes) -> None:
        """Init failed: the invocation waiting for this environment fails with the runtime's error."""
        with self._cond:
            self.mark_dead(Result("error", body))
        self._kill("failed to initialise")

    # -- the Extensions API ---------------------------------------------------------------------------

    def register(self, name: str, events: list[str]) -> str | None:
        """A new extension's identifier, or None once init is over (registration is closed then)."""
        with self._cond:
            if self.initialized or self.dead:
                return None
            identifier = str(uuid.uuid4())
            self._extensions[identifier] = _Extension(name, frozenset(events))
            return identifier

    def next_event(self, identifier: str) -> dict[str, Any] | None:
        """Block until the extension's next event; None for an unknown extension or a dead environment."""
        with self._cond:
            ext = self._extensions.get(identifier)
            if ext is None:
                return None
            if not ext.queue:
                ext.ready = True
                self._release_if_done()
                self._cond.notify_all()
            while not ext.queue and not self.dead:
                self._cond.wait()
            return ext.queue.popleft() if ext.queue else None


_RESULT = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    server: RuntimeAPIServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the gateway logs requests, the worker logs the function's output."""

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        env = self.server.environment
        if self.path == "/2018-06-01/runtime/invocation/next":
            invocation = env.next_invocation()
            if invocation is None:
                self._answer(410, _error_body("EnvironmentStopped", "the environment is shutting down"))
                return
            self._answer(
                200,
                invocation.payload,
                {
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                    "Lambda-Runtime-Trace-Id": invocation.trace_id,
                },
            )
        elif self.path == "/2020-01-01/extension/event/next":
            event = env.next_event(self.headers.get("Lambda-Extension-Identifier", ""))
            if event is None:
                self._answer(403, _error_body("Extension.UnknownExtensionIdentifier", "unknown or stopped"))
            else:
                self._answer(200, json.dumps(event).encode())
        else:
            self._answer(404, _error_body("NotFound", self.path))

    def do_POST(self) -> None:
        try:
            body = read_body(self, MAX_RESPONSE_BYTES * 2)
        except BodyError as error:
            self.close_connection = True
            self._answer(error.status, _error_body("InvalidRequest", error.detail))
            return
        env = self.server.environment
        matched = _RESULT.match(self.path)
        if matched:
            request_id, what = matched.groups()
            self._answer(*env.post_result(request_id, Result("ok" if what == "response" else "error", body)))
        elif self.path == "/2018-06-01/runtime/init/error":
            env.post_init_error(body)
            self._answer(202, b'{"status":"OK"}')
        elif self.path == "/2020-01-01/extension/register":
            self._register(body)
        elif self.path in ("/2020-01-01/extension/init/error", "/2020-01-01/extension/exit/error"):
            self._answer(202, b'{"status":"OK"}')
        else:
            self._answer(404, _error_body("NotFound", self.path))

    def _register(self, body: bytes) -> None:
        name = self.headers.get("Lambda-Extension-Name")
        try:
            events = json.loads(body or b"{}").get("events", [])
        except (ValueError, AttributeError):
            events = None
        if not name or not isinstance(events, list) or not set(events) <= {"INVOKE", "SHUTDOWN"}:
            self._answer(400, _error_body("InvalidRequest", "need Lambda-Extension-Name and events"))
            return
        identifier = self.server.environment.register(name, events)
        if identifier is None:
            self._answer(403, _error_body("Extension.RegistrationClosed", "extensions register during init"))
            return
        payload = json.dumps(self.server.environment.info).encode()
        self._answer(200, payload, {"Lambda-Extension-Identifier": identifier})


class RuntimeAPIServer(ListenerServer):
    """The Runtime and Extensions API of one environment, on a free loopback port."""

    def __init__(self, environment: ExecutionEnvironment) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.environment = environment

    @property
    def address(self) -> str:
        """``host:port`` for AWS_LAMBDA_RUNTIME_API."""
        return f"127.0.0.1:{self.server_address[1]}"
