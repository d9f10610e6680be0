"""Post-response work through an internal extension, as Lambda's Extensions API runs it.

At import (init) a thread registers for INVOKE events; for each invocation it waits until the handler
returned, works for HOLD_S more (the environment must stay busy meanwhile), counts the work as done and
only then asks for its next event.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
from typing import Any

HOLD_S = 0.8
_api = os.environ["AWS_LAMBDA_RUNTIME_API"]
_handled = threading.Event()
_done = 0


def _call(
    method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, Any, bytes]:
    connection = http.client.HTTPConnection(_api)
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.headers, response.read()


def _register() -> tuple[int, str]:
    status, headers, _ = _call(
        "POST",
        "/2020-01-01/extension/register",
        {"Lambda-Extension-Name": "fixture"},
        b'{"events": ["INVOKE"]}',
    )
    return status, headers.get("Lambda-Extension-Identifier", "")


def _loop(identifier: str) -> None:
    global _done  # noqa: PLW0603 - the extension and the handler share this module's state
    while True:
        _call("GET", "/2020-01-01/extension/event/next", {"Lambda-Extension-Identifier": identifier})
        _handled.wait()
        _handled.clear()
        time.sleep(HOLD_S)
        _done += 1


_status, _identifier = _register()
threading.Thread(target=_loop, args=(_identifier,), daemon=True).start()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    late_status, _ = _register()
    _handled.set()
    return {"pid": os.getpid(), "done": _done, "registered": _status, "late_registration": late_status}
