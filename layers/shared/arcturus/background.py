"""Work after the response: Workers' ``ctx.waitUntil`` on Lambda.

Lambda freezes the execution environment as soon as the runtime has posted the response and every
registered extension has asked for its next event. ``supports_wait_until`` registers an *internal*
extension (a thread of the runtime process) through the Extensions API at init; after each invocation
that thread asks for its next event only once the handler returned and the work queued with
``wait_until`` finished, or a deadline passed. Until then the environment stays thawed and the work
runs; the time is billed as part of the invocation.

The queued work starts at once on worker threads (it never delays the response, which the runtime posts
when the handler returns). The hold lasts at most ``HOLD_S`` after the handler returned, and never past
the invocation's own deadline minus a margin, so a stuck task cannot make an invocation time out. Work
still running then is frozen with the environment and resumes when the next invocation thaws it.

Outside Lambda (no ``AWS_LAMBDA_RUNTIME_API``: unit tests, scripts, benchmarks) nothing is registered;
queued work simply runs on the worker threads, and ``drain()`` waits for it.
"""

from __future__ import annotations

import collections
import functools
import http.client
import json
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

from arcturus.observability import logger
from arcturus.settings import settings

__all__ = [
    "DEADLINE_MARGIN_S",
    "EXTENSION_NAME",
    "HOLD_S",
    "WORKERS",
    "ExtensionUnavailable",
    "Handler",
    "PostResponseExtension",
    "WorkQueue",
    "drain",
    "supports_wait_until",
    "wait_until",
]

EXTENSION_NAME: Final = "arcturus-wait-until"
HOLD_S: Final = 10.0
"""The longest an environment is held after a response for queued work."""
DEADLINE_MARGIN_S: Final = 0.5
"""The hold ends this long before the invocation's deadline, so the invocation itself never times out."""
WORKERS: Final = 4
_REGISTER_PATH: Final = "/2020-01-01/extension/register"
_NEXT_PATH: Final = "/2020-01-01/extension/event/next"
_RETRY_S: Final = 1.0
_REMEMBERED_INVOCATIONS: Final = 64

Handler = TypeVar("Handler", bound=Callable[..., Any])


class WorkQueue:
    """Worker threads running queued tasks, and a way to wait until none is left."""

    def __init__(self, workers: int = WORKERS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wait-until")
        self._pending = 0
        self._idle = threading.Condition()

    def submit(self, task: Callable[[], object]) -> None:
        """Run ``task`` on a worker thread; its exceptions are logged, never raised to the caller."""
        with self._idle:
            self._pending += 1
        self._pool.submit(self._run, task)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every submitted task finished (True) or ``timeout`` seconds passed (False)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    @property
    def pending(self) -> int:
        return self._pending

    def _run(self, task: Callable[[], object]) -> None:
        try:
            task()
        except Exception:
            logger.exception(
                "post-response task failed", extra={"task": getattr(task, "__name__", repr(task))}
            )
        finally:
            with self._idle:
                self._pending -= 1
                if self._pending == 0:
                    self._idle.notify_all()


class _FinishedInvocations:
    """Request ids whose handler returned, remembered briefly: the INVOKE event may arrive after that."""

    def __init__(self) -> None:
        self._ids: collections.deque[str] = collections.deque(maxlen=_REMEMBERED_INVOCATIONS)
        self._changed = threading.Condition()

    def add(self, request_id: str) -> None:
        with self._changed:
            self._ids.append(request_id)
            self._changed.notify_all()

    def wait_for(self, request_id: str, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: request_id in self._ids, max(0.0, timeout))


class ExtensionUnavailable(RuntimeError):
    """The Extensions API refused or could not be reached."""


class PostResponseExtension:
    """The internal extension that holds the environment until queued work is done.

    ``register()`` must run during init, before the runtime first asks for an invocation: the
    Extensions API refuses registrations after that. ``start()`` then runs the event loop on a daemon
    thread. The handler reports its end with ``handler_finished(request_id)``.
    """

    def __init__(
        self,
        runtime_api: str,
        queue: WorkQueue,
        *,
        name: str = EXTENSION_NAME,
        hold_s: float = HOLD_S,
        margin_s: float = DEADLINE_MARGIN_S,
    ) -> None:
        self._api = runtime_api
        self._queue = queue
        self._name = name
        self._hold_s = hold_s
        self._margin_s = margin_s
        self._finished = _FinishedInvocations()
        self._identifier: str | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def register(self) -> None:
        """Register for INVOKE events (internal extensions cannot receive SHUTDOWN)."""
        status, headers, body = self._call(
            "POST",
            _REGISTER_PATH,
            body=json.dumps({"events": ["INVOKE"]}).encode(),
            headers={"Lambda-Extension-Name": self._name, "Content-Type": "application/json"},
            timeout=5.0,
        )
        identifier = headers.get("lambda-extension-identifier")
        if status != 200 or not identifier:
            raise ExtensionUnavailable(f"extension registration answered {status}: {body[:200]!r}")
        self._identifier = identifier
        logger.debug("post-response extension registered", extra={"extension": self._name})

    def start(self) -> None:
        """Run the event loop on a daemon thread (after ``register``)."""
        if self._identifier is None:
            raise RuntimeError("register() the extension before start()")
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def handler_finished(self, request_id: str) -> None:
        """The handler of ``request_id`` returned (or raised): the hold may now wait for its work."""
        self._finished.add(request_id)

    def _loop(self) -> None:
        while True:
            try:
                event = self._next_event()
            except ConnectionRefusedError:
                # The Runtime API is gone: the environment (or the test that served it) is shutting down.
                logger.debug("Extensions API gone; post-response extension stops")
                return
            except (OSError, http.client.HTTPException, ExtensionUnavailable, ValueError) as error:
                logger.warning(
                    "post-response extension could not get its next event; retrying",
                    extra={"error": repr(error)},
                )
                time.sleep(_RETRY_S)
                continue
            if event.get("eventType") == "SHUTDOWN":
                return
            self._hold(event)

    def _next_event(self) -> dict[str, Any]:
        # No timeout: the call blocks for as long as the environment is frozen between invocations.
        status, _, body = self._call(
            "GET", _NEXT_PATH, headers={"Lambda-Extension-Identifier": self._identifier or ""}, timeout=None
        )
        if status != 200:
            raise ExtensionUnavailable(f"event/next answered {status}: {body[:200]!r}")
        event: dict[str, Any] = json.loads(body)
        return event

    def _hold(self, event: Mapping[str, Any]) -> None:
        """Return once the invocation's handler finished and its queued work is done, or at the deadline."""
        deadline = float(event.get("deadlineMs") or 0) / 1000 - self._margin_s
        request_id = str(event.get("requestId") or "")
        if not self._finished.wait_for(request_id, deadline - time.time()):
            # Still in the handler at the deadline: Lambda ends the invocation either way.
            return
        until = min(deadline, time.time() + self._hold_s)
        if not self._queue.wait_idle(max(0.0, until - time.time())):
            logger.warning(
                "post-response work outlived its hold; it resumes when the next invocation thaws it",
                extra={"requestId": request_id, "pending": self._queue.pending},
            )

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str],
        timeout: float | None,
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self._api, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=dict(headers))
            response = connection.getresponse()
            data = response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            connection.close()


_queue = WorkQueue()


def wait_until(task: Callable[[], object]) -> None:
    """Run ``task`` without delaying the response; under Lambda the environment is held until it is done.

    The task starts at once on a worker thread. Its exceptions are logged and swallowed: post-response
    work has nobody left to answer to.
    """
    _queue.submit(task)


def drain(timeout: float | None = None) -> bool:
    """Wait until every queued task finished (True) or ``timeout`` passed (False); for tests and scripts."""
    return _queue.wait_idle(timeout)


@functools.cache
def _extension(runtime_api: str) -> PostResponseExtension | None:
    """Register and start this process's extension once (None when the Extensions API refuses)."""
    extension = PostResponseExtension(runtime_api, _queue)
    try:
        extension.register()
    except (OSError, http.client.HTTPException, ExtensionUnavailable):
        # Degrade, don't fail init: queued work still runs, but may be frozen until the next invocation.
        logger.exception(
            "post-response extension not registered; queued work may wait for the next invocation"
        )
        return None
    extension.start()
    return extension


def supports_wait_until(handler: Handler) -> Handler:
    """Wrap a Lambda handler so work it queues with ``wait_until`` completes after its response.

    Call it at module level (init): under a Runtime API it registers the extension then, which is the
    only time Lambda accepts it. The request id the handler reports must be the INVOKE event's
    (``context.aws_request_id``).
    """
    runtime_api = settings().runtime_api
    extension = _extension(runtime_api) if runtime_api else None

    @functools.wraps(handler)
    def wrapped(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        finally:
            request_id = getattr(context, "aws_request_id", None)
            if extension is not None and request_id:
                extension.handler_finished(str(request_id))

    return wrapped  # type: ignore[return-value]
