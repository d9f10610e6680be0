"""The public routes over HTTP through the local runtime: per-IP limits across its workers, the chat.

The local runtime takes ``sourceIp`` from the client socket, so each test speaks from its own loopback
address (127.0.0.x, bound with ``source_address``) to have its own counters.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.integration.conftest import LocalServe, Response

pytestmark = pytest.mark.integration

MESSAGE = {"name": "Ada Lovelace", "email": "ada@example.org", "message": "Hello over loopback."}
WINDOW_S = 60
SAFE_MARGIN_S = 15.0


def post(
    app: LocalServe, path: str, body: Any, *, ip: str, headers: dict[str, str] | None = None
) -> Response:
    """POST ``body`` as JSON from the loopback address ``ip``."""
    connection = http.client.HTTPConnection("127.0.0.1", app.port, timeout=60, source_address=(ip, 0))
    try:
        connection.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        answer = connection.getresponse()
        return Response(answer.status, answer.getheaders(), answer.read())
    finally:
        connection.close()


def inside_one_window() -> None:
    """Wait for the next window when the current one is about to end, so a burst is counted in one window."""
    left = WINDOW_S - time.time() % WINDOW_S
    if left < SAFE_MARGIN_S:
        time.sleep(left + 0.1)


def test_fifty_concurrent_contact_posts_from_one_ip_let_exactly_five_through(app: LocalServe) -> None:
    inside_one_window()
    barrier = threading.Barrier(50)

    def send(_: int) -> Response:
        barrier.wait()
        return post(app, "/api/contact", MESSAGE, ip="127.0.0.2")

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(send, range(50)))

    statuses = [answer.status for answer in answers]
    assert statuses.count(202) == 5, statuses
    assert statuses.count(429) == 45, statuses
    for answer in answers:
        assert answer.header("RateLimit-Policy") == '"contact";q=5;w=60'
        if answer.status == 429:
            assert 1 <= int(answer.header("Retry-After") or "0") <= WINDOW_S
            assert answer.header("Content-Type") == "application/problem+json"
            assert answer.json()["status"] == 429
        else:
            assert uuid.UUID(answer.json()["id"])

    # Another address is not affected, and the chat is counted apart from the contact form.
    assert post(app, "/api/contact", MESSAGE, ip="127.0.0.3").status == 202
    chat = post(app, "/api/public/chat", {"message": "hi"}, ip="127.0.0.2")
    assert (chat.header("RateLimit") or "").startswith('"chat";r=9;')


def test_a_retried_contact_post_with_an_idempotency_key_gets_the_first_answer(app: LocalServe) -> None:
    key = {"Idempotency-Key": str(uuid.uuid4())}

    first = post(app, "/api/contact", MESSAGE, ip="127.0.0.4", headers=key)
    retry = post(app, "/api/contact", MESSAGE, ip="127.0.0.4", headers=key)

    assert first.status == retry.status == 202
    assert first.json() == retry.json()


def test_a_chat_conversation_over_http(app: LocalServe) -> None:
    first = post(app, "/api/public/chat", {"message": "Hello"}, ip="127.0.0.5")
    assert first.status == 200, first.body
    session_id = first.json()["sessionId"]

    second = post(app, "/api/public/chat", {"message": "Again", "sessionId": session_id}, ip="127.0.0.5")

    assert second.status == 200
    assert second.json()["sessionId"] == session_id
    assert second.json()["reply"] == "[local echo model] Message 2 of this conversation: Again"
    unknown = post(app, "/api/public/chat", {"message": "hi", "sessionId": str(uuid.uuid4())}, ip="127.0.0.5")
    assert unknown.status == 404
    invalid = post(app, "/api/public/chat", {"message": "hi", "sessionId": "nope"}, ip="127.0.0.5")
    assert invalid.status == 422
