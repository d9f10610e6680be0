"""The emulated JWT authorizer: valid tokens pass with their claims, anything else gets API Gateway's 401."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.authorizer import SigningKey
from tests.integration.conftest import LocalServe

pytestmark = pytest.mark.integration


def _sign(server: LocalServe, claims: dict[str, Any], *, forged: bool = False) -> str:
    """A token signed with the server's own key (or, forged, with another key under the same key id)."""
    key = SigningKey(server.data_dir / "jwt")
    pem = key.private_pem
    if forged:
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = other.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    return jwt.encode(claims, pem, algorithm="RS256", headers={"kid": key.key_id})


def _claims(server: LocalServe, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": "user-1",
        "email": "member@example.com",
        "iss": f"http://127.0.0.1:{server.port}/local-issuer",
        "aud": "arcturus-local",
        "iat": now,
        "exp": now + 600,
    }
    return claims | changes


def test_a_token_from_the_cli_passes_and_its_claims_reach_the_function(fixture_app: LocalServe) -> None:
    token = fixture_app.cli("token", "--email", "member@example.com", "--ttl", "120").stdout.splitlines()[-1]

    response = fixture_app.request("GET", "/private", headers={"Authorization": f"Bearer {token}"})

    assert response.status == 200
    jwt_context = response.json()["event"]["requestContext"]["authorizer"]["jwt"]
    claims = jwt_context["claims"]
    assert claims["email"] == "member@example.com"
    assert claims["aud"] == "arcturus-local"
    assert claims["iss"] == f"http://127.0.0.1:{fixture_app.port}/local-issuer"
    assert int(claims["exp"]) - int(claims["iat"]) == 120
    assert all(isinstance(value, str) for value in claims.values())
    assert jwt_context["scopes"] is None


def test_a_token_without_the_bearer_prefix_passes_too(fixture_app: LocalServe) -> None:
    token = _sign(fixture_app, _claims(fixture_app))

    assert fixture_app.request("GET", "/private", headers={"Authorization": token}).status == 200


@pytest.mark.parametrize(
    "case",
    ["missing", "expired", "forged", "wrong audience", "wrong issuer", "garbage"],
)
def test_a_bad_token_gets_api_gateways_401(fixture_app: LocalServe, case: str) -> None:
    now = int(time.time())
    tokens = {
        "missing": None,
        "expired": lambda: _sign(fixture_app, _claims(fixture_app, iat=now - 7200, exp=now - 3600)),
        "forged": lambda: _sign(fixture_app, _claims(fixture_app), forged=True),
        "wrong audience": lambda: _sign(fixture_app, _claims(fixture_app, aud="someone-else")),
        "wrong issuer": lambda: _sign(fixture_app, _claims(fixture_app, iss="https://issuer.test")),
        "garbage": lambda: "not.a.jwt",
    }
    make = tokens[case]
    headers = {} if make is None else {"Authorization": f"Bearer {make()}"}

    response = fixture_app.request("GET", "/private", headers=headers)

    assert response.status == 401
    assert response.json() == {"message": "Unauthorized"}
