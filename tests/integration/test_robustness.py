"""Nothing a client sends takes the server down; API Gateway's limits hold."""

from __future__ import annotations

import base64
import re
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.integration.conftest import LocalServe

pytestmark = pytest.mark.integration

TEN_MB = 10 * 1024 * 1024


def _raw(server: LocalServe, data: bytes) -> bytes:
    """Send raw bytes, return what comes back until the server closes or 2 s of silence."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
        connection.sendall(data)
        connection.settimeout(2)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except TimeoutError:
            pass
        return received


def test_a_body_over_10_mb_is_refused_with_413(fixture_app: LocalServe) -> None:
    head = f"POST /echo/big HTTP/1.1\r\nHost: x\r\nContent-Length: {TEN_MB + 1}\r\n"

    announced = _raw(fixture_app, f"{head}\r\n".encode())
    expecting = _raw(fixture_app, f"{head}Expect: 100-continue\r\n\r\n".encode())

    assert announced.startswith(b"HTTP/1.1 413")
    assert expecting.startswith(b"HTTP/1.1 413")
    assert fixture_app.request("GET", "/echo").status == 200


def test_a_body_of_exactly_10_mb_is_taken(fixture_app: LocalServe) -> None:
    response = fixture_app.request(
        "POST", "/echo/big?summary", headers={"Content-Type": "application/octet-stream"}, body=b"x" * TEN_MB
    )

    assert response.status == 200
    assert response.json() == {"bodyLength": len(base64.b64encode(b"x" * TEN_MB))}


def test_a_chunked_body_is_read(fixture_app: LocalServe) -> None:
    reply = _raw(
        fixture_app,
        b"POST /echo/chunked HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )

    assert reply.startswith(b"HTTP/1.1 200")
    assert b'"body": "hello world"' in reply


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x01 /echo HTTP/1.1\r\n\r\n",
        b"GET /echo HTTP/7.0\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: x\r\nContent-Length: banana\r\n\r\n",
        b"GET /echo HTTP/1.1\r\n" + b"X-Long: " + b"a" * 70000 + b"\r\n\r\n",
        b"POST /echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /__local/nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ],
)
def test_malformed_requests_get_an_error_and_the_server_goes_on(
    fixture_app: LocalServe, garbage: bytes
) -> None:
    reply = _raw(fixture_app, garbage)

    assert re.match(rb"HTTP/1\.[01] [45]\d\d ", reply), reply[:100]
    assert fixture_app.request("GET", "/echo").status == 200


def test_a_hundred_concurrent_connections_are_all_served(fixture_app: LocalServe) -> None:
    connections = [socket.create_connection(("127.0.0.1", fixture_app.port), timeout=20) for _ in range(100)]

    def ask(connection: socket.socket) -> bytes:
        with connection:
            connection.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := connection.recv(65536):
                reply += chunk
            return reply

    with ThreadPoolExecutor(100) as pool:
        replies = list(pool.map(ask, connections))

    assert all(reply.startswith(b"HTTP/1.1 404") for reply in replies)


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "attacker.example:3000"},  # DNS rebinding: a name that resolves to 127.0.0.1
        {"Origin": "https://attacker.example"},  # a page in the developer's browser
        {"Origin": "null"},  # a sandboxed frame or a file:// page
    ],
    ids=["rebound-host", "cross-site-origin", "null-origin"],
)
def test_a_web_page_cannot_use_the_local_endpoints(fixture_app: LocalServe, headers: dict[str, str]) -> None:
    invoked = fixture_app.request("POST", "/__local/invoke/EchoFunction", headers=headers, body="{}")
    health = fixture_app.request("GET", "/__local/health", headers=headers)

    assert (invoked.status, health.status) == (403, 403)
    assert invoked.json()["status"] == 403


@pytest.mark.parametrize(
    "headers",
    [{}, {"Host": "localhost"}, {"Origin": "http://127.0.0.1:3000"}],
    ids=["as-sent", "localhost", "local-origin"],
)
def test_the_local_commands_still_reach_them(fixture_app: LocalServe, headers: dict[str, str]) -> None:
    assert fixture_app.request("GET", "/__local/health", headers=headers).status == 200
