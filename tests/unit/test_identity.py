"""Caller resolution from the JWT authorizer's claims, and the requires() route middleware."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from arcturus import aws
from arcturus.identity import Caller, caller_from, claimed_email, resolve_caller
from arcturus.roles import parse_document
from arcturus.web.encoder import to_json
from arcturus.web.guards import current_caller, requires
from arcturus.web.resolver import build_resolver
from tests.unit.support import (
    ADMIN,
    DEMO,
    MEMBER,
    DynamoDBCalls,
    FakeContext,
    claims_for,
    configure,
    http_event,
    json_body,
    provision,
    roles_document,
)


@pytest.fixture
def provisioned(dynamodb: Any) -> str:
    """The table holds the three users of the original design; the container's store is fresh."""
    return provision()


def guarded(permission: str | None) -> APIGatewayHttpResolver:
    """A resolver with one route behind requires(permission) that echoes the resolved caller."""
    app = build_resolver()

    @app.get("/probe", middlewares=[requires(permission)])
    def probe() -> dict[str, Any]:
        caller = current_caller(app)
        return {"email": caller.email, "role": caller.role, "admin": caller.is_admin}

    return app


def call(app: APIGatewayHttpResolver, claims: dict[str, Any] | None) -> dict[str, Any]:
    result: dict[str, Any] = app.resolve(http_event("GET", "/probe", claims=claims), FakeContext())
    return result


def caller(permissions: tuple[str, ...]) -> Caller:
    return Caller(email="x@example.com", role="r", permissions=permissions, display_name="X")


class TestCaller:
    def test_permits_follows_the_wildcard_rules(self) -> None:
        member = caller(("view:dashboard", "use:*"))

        assert member.permits("view:dashboard")
        assert member.permits("use:chat")
        assert not member.permits("view:status")
        assert not member.is_admin

    def test_star_is_admin_and_permits_everything(self) -> None:
        admin = caller(("*",))

        assert admin.is_admin
        assert admin.permits("manage:roles")
        assert admin.permits("whatever:next")

    def test_manage_star_is_not_admin(self) -> None:
        assert not caller(("manage:*",)).is_admin

    def test_resolved_from_the_document_with_everything_me_shows(self) -> None:
        document = parse_document(roles_document())

        member = caller_from(document, MEMBER)

        assert member is not None
        assert json.loads(to_json(member.profile())) == {
            "email": MEMBER,
            "displayName": "Member",
            "role": "member",
            "permissions": ["view:dashboard", "use:chat", "view:status"],
            "services": ["git", "grafana"],
            "features": ["git", "grafana"],
            "sites": ["git", "grafana"],
            "dashboardProfiles": [
                {"id": "default", "name": "Overview", "widgets": ["system-health", "storage"]}
            ],
        }

    def test_a_missing_display_name_falls_back_to_the_mailbox(self) -> None:
        data = roles_document()
        del data["users"][DEMO]["displayName"]

        resolved = caller_from(parse_document(data), DEMO)

        assert resolved is not None
        assert resolved.display_name == "demo"

    def test_nobody_outside_the_document(self) -> None:
        assert caller_from(parse_document(roles_document()), "stranger@example.com") is None


class TestClaims:
    def test_the_email_claim_is_lower_cased(self) -> None:
        event = http_event("GET", "/x", claims={"email": "Member@Example.COM", "email_verified": "true"})

        assert claimed_email(event) == MEMBER
        assert claimed_email(APIGatewayProxyEventV2(event)) == MEMBER

    @pytest.mark.parametrize(
        "claims",
        [
            None,
            {},
            {"sub": "abc"},
            {"email": ""},
            {"email": 42},
            {"email": MEMBER},
            {"email": MEMBER, "email_verified": "false"},
            {"email": MEMBER, "email_verified": False},
            {"email": MEMBER, "email_verified": "0"},
            {"email": MEMBER, "email_verified": "no"},
            {"email": MEMBER, "email_verified": ""},
            {"email": MEMBER, "email_verified": " false"},
            {"email": MEMBER, "email_verified": 1},
            {"email": "\u212aate@example.com", "email_verified": "true"},
            {"email": "m\u00e9mber@example.com", "email_verified": "true"},
            {"email": "  member@example.com ", "email_verified": "true"},
            {"email": "member@example.com\n", "email_verified": "true"},
        ],
        ids=repr,
    )
    def test_no_usable_email(self, claims: dict[str, Any] | None) -> None:
        assert claimed_email(http_event("GET", "/x", claims=claims)) is None

    @pytest.mark.parametrize("verified", ["true", True])
    def test_a_verified_email_is_used(self, verified: Any) -> None:
        event = http_event("GET", "/x", claims={"email": MEMBER, "email_verified": verified})

        assert claimed_email(event) == MEMBER

    def test_an_issuer_without_the_verified_claim_is_trusted_only_when_configured(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Cloudflare Access sends no email_verified: the JwtRequireEmailVerified=false deployments.
        configure(monkeypatch, REQUIRE_EMAIL_VERIFIED="false")

        assert claimed_email(http_event("GET", "/x", claims={"email": MEMBER})) == MEMBER
        unverified = {"email": MEMBER, "email_verified": "false"}
        assert claimed_email(http_event("GET", "/x", claims=unverified)) is None


class TestRequires:
    def test_no_claims_is_401_with_a_bearer_challenge(self, provisioned: str) -> None:
        response = call(guarded(None), None)

        assert response["statusCode"] == 401
        assert response["headers"]["Content-Type"] == "application/problem+json"
        assert response["headers"]["WWW-Authenticate"].startswith("Bearer")
        assert json_body(response)["status"] == 401

    def test_a_token_without_an_email_claim_is_401(self, provisioned: str) -> None:
        response = call(guarded(None), {"sub": "abc", "client_id": "x"})

        assert response["statusCode"] == 401
        assert "ID token" in json_body(response)["detail"]

    def test_a_valid_token_for_an_unprovisioned_email_is_403(self, provisioned: str) -> None:
        response = call(guarded(None), claims_for("stranger@example.com"))

        assert response["statusCode"] == 403
        assert (
            json_body(response)["detail"] == "stranger@example.com is not provisioned in the roles document."
        )

    def test_a_caller_without_the_permission_is_403(self, provisioned: str) -> None:
        response = call(guarded("manage:roles"), claims_for(DEMO))

        assert response["statusCode"] == 403
        assert json_body(response)["detail"] == "Role 'demo' does not grant 'manage:roles'."

    @pytest.mark.parametrize(
        ("email", "permission"),
        [(DEMO, "view:status"), (MEMBER, "use:chat"), (ADMIN, "manage:roles"), (MEMBER, None)],
    )
    def test_a_permitted_caller_reaches_the_route_with_its_caller(
        self, provisioned: str, email: str, permission: str | None
    ) -> None:
        response = call(guarded(permission), claims_for(email.upper()))

        assert response["statusCode"] == 200
        assert json.loads(response["body"])["email"] == email

    def test_a_warm_request_reads_dynamodb_zero_times(self, provisioned: str) -> None:
        app = guarded("view:status")
        call(app, claims_for(MEMBER))

        with DynamoDBCalls(aws.dynamodb()) as calls:
            for email in (MEMBER, DEMO, ADMIN, "stranger@example.com"):
                call(app, claims_for(email))

        assert calls.operations == []

    def test_the_caller_does_not_leak_into_the_next_request(self, provisioned: str) -> None:
        app = guarded(None)
        call(app, claims_for(ADMIN))

        assert "caller" not in app.context
        assert call(app, None)["statusCode"] == 401

    def test_current_caller_outside_requires_is_a_bug(self) -> None:
        with pytest.raises(RuntimeError, match="without the requires"):
            current_caller(build_resolver())


class TestResolveCaller:
    def test_resolves_a_provisioned_caller(self, provisioned: str) -> None:
        resolved = resolve_caller(http_event("GET", "/x", claims=claims_for(ADMIN)))

        assert resolved is not None
        assert resolved.is_admin

    @pytest.mark.parametrize("claims", [None, {"email": "stranger@example.com"}])
    def test_none_when_there_is_nobody_to_resolve(
        self, provisioned: str, claims: dict[str, Any] | None
    ) -> None:
        assert resolve_caller(http_event("GET", "/x", claims=claims)) is None
