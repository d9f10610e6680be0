"""Identity and the roles document over HTTP, through the local runtime's authorizer and workers.

Tokens for the seeded users come from ``python -m local token``; the extra users a test adds get
tokens signed the same way, in process. Tests that change the shared server's roles document only add
users of their own and put the document back as they found it. Each test posts from its own loopback
addresses (``127.0.4.x``), so the per-IP limit on ``POST /api/auth/*`` never counts another test's
requests.

Each function's workers keep the roles document in memory for up to 60 s, so a user a test adds is
only certain to be known to a function that has not read the document since: the profile test below
runs before anything in this session calls ``POST /api/auth/profile`` for a provisioned user.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local.authorizer import LOCAL_AUDIENCE, JwtConfig, SigningKey, local_issuer
from tests.integration.conftest import LocalServe, Response

pytestmark = pytest.mark.integration

ADMIN, MEMBER, DEMO = "admin@example.com", "member@example.com", "demo@example.com"
STRANGER = "stranger@example.com"


@pytest.fixture(scope="module")
def tokens(app: LocalServe) -> dict[str, str]:
    """A token per seeded user (and one for an unprovisioned email), from the CLI a developer uses."""
    return {
        email: app.cli("token", "--email", email, "--ttl", "900").stdout.splitlines()[-1]
        for email in (ADMIN, MEMBER, DEMO, STRANGER)
    }


def signed(app: LocalServe, email: str) -> str:
    """A token for ``email`` from the server's own signing key, for users a test provisions."""
    config = JwtConfig(local_issuer(app.port), [LOCAL_AUDIENCE])
    return SigningKey(app.data_dir / "jwt").token(config, email, 900)


def call(
    app: LocalServe,
    method: str,
    path: str,
    token: str | None,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    ip: str = "127.0.4.1",
) -> Response:
    """One request from the loopback address ``ip`` with ``token`` as the bearer."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    payload = None
    if body is not None:
        payload = body if isinstance(body, str) else json.dumps(body)
        sent.setdefault("Content-Type", "application/json")
    connection = http.client.HTTPConnection("127.0.0.1", app.port, timeout=60, source_address=(ip, 0))
    try:
        connection.request(method, path, body=payload, headers=sent)
        answer = connection.getresponse()
        return Response(answer.status, answer.getheaders(), answer.read())
    finally:
        connection.close()


def read_roles(app: LocalServe, tokens: dict[str, str]) -> tuple[dict[str, Any], str]:
    response = call(app, "GET", "/api/auth/roles", tokens[ADMIN])
    assert response.status == 200, response.body
    etag = response.header("ETag")
    assert etag is not None
    return response.json(), etag


def with_users(document: dict[str, Any], emails: list[str]) -> dict[str, Any]:
    """``document`` plus member-role users for ``emails``, written out as the API shows them."""
    users = {
        email: {
            "email": email,
            "role": "member",
            "displayName": email.partition("@")[0],
            "services": [],
            "features": [],
            "sites": [],
            "dashboardProfiles": [],
        }
        for email in emails
    }
    return document | {"users": document["users"] | users}


@pytest.fixture
def restore_roles(app: LocalServe, tokens: dict[str, str]) -> Iterator[dict[str, Any]]:
    """The document as the test found it; put back afterwards, whatever the test did to it."""
    original, _ = read_roles(app, tokens)
    yield original
    _, etag = read_roles(app, tokens)
    response = call(app, "PUT", "/api/auth/roles", tokens[ADMIN], body=original, headers={"If-Match": etag})
    assert response.status == 200, response.body


# Every authenticated route and who may call it, per DESIGN.md's permissions.
ROUTES = [
    ("GET", "/api/auth/me", {ADMIN, MEMBER, DEMO}),
    ("GET", "/api/auth/roles", {ADMIN}),
    ("GET", "/api/cache/status", {ADMIN}),
    ("GET", "/api/status", {ADMIN, MEMBER, DEMO}),
    ("GET", "/api/services", {ADMIN, MEMBER, DEMO}),
    ("GET", "/api/dashboard", {ADMIN, MEMBER, DEMO}),
]


@pytest.mark.parametrize(("method", "path", "allowed"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_each_user_on_each_route(
    app: LocalServe, tokens: dict[str, str], method: str, path: str, allowed: set[str]
) -> None:
    for email in (ADMIN, MEMBER, DEMO, STRANGER):
        response = call(app, method, path, tokens[email])

        if email in allowed:
            # Past identity: what the route answers then is its own tests' business.
            assert response.status not in (401, 403), (email, response.status, response.body)
        else:
            assert response.status == 403, (email, response.status, response.body)
            assert response.header("Content-Type") == "application/problem+json"
            assert response.json()["status"] == 403

    unauthenticated = call(app, method, path, None)
    assert unauthenticated.status == 401
    assert unauthenticated.json() == {"message": "Unauthorized"}


@pytest.mark.parametrize(
    ("email", "role", "permissions"),
    [
        (ADMIN, "admin", ["*"]),
        (MEMBER, "member", ["view:dashboard", "use:chat", "view:status"]),
        (DEMO, "demo", ["view:dashboard", "view:status"]),
    ],
)
def test_me_is_the_resolved_profile(
    app: LocalServe, tokens: dict[str, str], email: str, role: str, permissions: list[str]
) -> None:
    body = call(app, "GET", "/api/auth/me", tokens[email]).json()

    assert (body["email"], body["role"], body["permissions"]) == (email, role, permissions)
    assert body["dashboardProfiles"][0]["id"] == "default"


def test_put_needs_if_match_and_refuses_a_stale_one(
    app: LocalServe, tokens: dict[str, str], restore_roles: dict[str, Any]
) -> None:
    document, etag = read_roles(app, tokens)
    changed = with_users(document, ["put-check@example.com"])

    missing = call(app, "PUT", "/api/auth/roles", tokens[ADMIN], body=changed)
    written = call(app, "PUT", "/api/auth/roles", tokens[ADMIN], body=changed, headers={"If-Match": etag})
    stale = call(app, "PUT", "/api/auth/roles", tokens[ADMIN], body=document, headers={"If-Match": etag})

    assert missing.status == 428
    assert written.status == 200
    assert written.header("ETag") not in (None, etag)
    assert stale.status == 412
    assert read_roles(app, tokens) == (changed, written.header("ETag"))


def test_an_invalid_document_is_422_naming_the_field(
    app: LocalServe, tokens: dict[str, str], restore_roles: dict[str, Any]
) -> None:
    document, etag = read_roles(app, tokens)
    broken = json.loads(json.dumps(document))
    broken["users"][DEMO]["role"] = "guest"

    response = call(app, "PUT", "/api/auth/roles", tokens[ADMIN], body=broken, headers={"If-Match": etag})

    assert response.status == 422
    assert response.header("Content-Type") == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == [f"users.{DEMO}.role"]
    assert read_roles(app, tokens) == (document, etag)


def test_twenty_concurrent_puts_with_one_etag_have_exactly_one_winner(
    app: LocalServe, tokens: dict[str, str], restore_roles: dict[str, Any]
) -> None:
    document, etag = read_roles(app, tokens)
    bodies = [with_users(document, [f"editor{i:02}@example.com"]) for i in range(20)]
    start = threading.Barrier(20)

    def put(index: int) -> Response:
        start.wait()
        headers = {"If-Match": etag}
        return call(app, "PUT", "/api/auth/roles", tokens[ADMIN], body=bodies[index], headers=headers)

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(put, range(20)))

    assert sorted(response.status for response in responses) == [200] + [412] * 19
    winner = next(i for i, response in enumerate(responses) if response.status == 200)
    assert read_roles(app, tokens) == (bodies[winner], responses[winner].header("ETag"))


def test_twenty_users_saving_their_profiles_at_once_are_all_saved(
    app: LocalServe, tokens: dict[str, str], restore_roles: dict[str, Any]
) -> None:
    users = [f"saver{i:02}@example.com" for i in range(20)]
    document, etag = read_roles(app, tokens)
    added = call(
        app,
        "PUT",
        "/api/auth/roles",
        tokens[ADMIN],
        body=with_users(document, users),
        headers={"If-Match": etag},
    )
    assert added.status == 200
    user_tokens = [signed(app, email) for email in users]
    start = threading.Barrier(len(users))

    def save(index: int) -> Response:
        profiles = [{"id": f"p{index}", "name": f"Saver {index}", "widgets": ["network", "storage"]}]
        start.wait()
        return call(
            app,
            "POST",
            "/api/auth/profile",
            user_tokens[index],
            body={"dashboardProfiles": profiles},
            ip=f"127.0.4.{10 + index}",
        )

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        responses = list(pool.map(save, range(len(users))))

    assert [response.status for response in responses] == [200] * len(users), [r.body for r in responses]
    stored, _ = read_roles(app, tokens)
    saved = [stored["users"][email]["dashboardProfiles"][0]["id"] for email in users]
    assert saved == [f"p{i}" for i in range(len(users))]
    assert {k: v for k, v in stored["users"].items() if k not in users} == document["users"]


def test_an_invalid_profile_is_422_and_the_stranger_is_403(app: LocalServe, tokens: dict[str, str]) -> None:
    bad = {"dashboardProfiles": [{"id": "x", "name": "X", "widgets": ["crypto-miner"]}]}

    invalid = call(app, "POST", "/api/auth/profile", tokens[DEMO], body=bad, ip="127.0.4.2")
    stranger = call(app, "POST", "/api/auth/profile", tokens[STRANGER], body=bad, ip="127.0.4.2")

    assert invalid.status == 422
    assert invalid.json()["errors"][0]["field"] == "dashboardProfiles.0.widgets.0"
    assert stranger.status == 403
