"""What the local runtime's HTTP listeners share: a threaded server that survives any client, and bodies.

A client hanging up mid-response is normal for a server (a curl interrupted, a runtime process killed
on timeout), so it is not worth a traceback; anything else still prints one and the server goes on.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ListenerServer(ThreadingHTTPServer):
    """One thread per connection, a listen backlog of 128, quiet about clients that went away."""

    daemon_threads = True
    request_queue_size = 128

    def serve_forever(self, poll_interval: float = 0.1) -> None:
        """Check for shutdown every 0.1 s rather than 0.5 s: stopping (a worker, the serve) is quicker."""
        super().serve_forever(poll_interval)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class BodyError(Exception):
    """The request body cannot be read: ``status`` says why (400 malformed, 413 too large)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def declared_length(handler: BaseHTTPRequestHandler) -> int | None:
    """The Content-Length the client announced (None without one); BodyError when it is not a number."""
    value = handler.headers.get("Content-Length")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise BodyError(400, "Content-Length is not a number")
    return int(value)


def read_body(handler: BaseHTTPRequestHandler, limit: int) -> bytes:
    """The request body (Content-Length or chunked), at most ``limit`` bytes, else BodyError 413."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        return _read_chunked(handler, limit)
    length = declared_length(handler) or 0
    if length > limit:
        raise BodyError(413, f"the body is larger than {limit} bytes")
    body = handler.rfile.read(length)
    if len(body) != length:
        raise BodyError(400, "the body ended before its Content-Length")
    return body


def _read_chunked(handler: BaseHTTPRequestHandler, limit: int) -> bytes:
    body = bytearray()
    while True:
        line = handler.rfile.readline(1024).split(b";", 1)[0].strip()
        try:
            size = int(line, 16)
        except ValueError:
            raise BodyError(400, "malformed chunked body") from None
        if size == 0:
            while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        if len(body) + size > limit:
            raise BodyError(413, f"the body is larger than {limit} bytes")
        body += handler.rfile.read(size)
        handler.rfile.readline(1024)
