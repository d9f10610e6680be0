"""Routes come from the template's HttpApi events, matched the way API Gateway matches them."""

from __future__ import annotations

import pytest

from tests.integration.conftest import LocalServe

pytestmark = pytest.mark.integration


def test_an_unknown_route_is_a_404_problem(app: LocalServe) -> None:
    response = app.request("GET", "/api/nothing-here")

    assert response.status == 404
    assert response.header("content-type") == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "no route matches GET /api/nothing-here",
    }


def test_a_known_path_with_another_method_is_not_routed(app: LocalServe) -> None:
    assert app.request("DELETE", "/api/auth/me").status == 404
    assert app.request("GET", "/api/contact").status == 404


def test_a_jwt_route_of_the_template_needs_a_token(app: LocalServe) -> None:
    response = app.request("GET", "/api/auth/me")

    assert response.status == 401
    assert response.json() == {"message": "Unauthorized"}


def test_the_admin_reaches_auth_me_with_a_token_from_the_cli(app: LocalServe) -> None:
    """The issue's done-when: a token from ``python -m local token`` reaches the function."""
    token = app.cli("token", "--email", "admin@example.com").stdout.strip().splitlines()[-1]

    response = app.request("GET", "/api/auth/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status == 200, response.body
    assert response.json()["email"] == "admin@example.com"


def test_the_templates_cors_settings_answer_preflights(app: LocalServe) -> None:
    response = app.request(
        "OPTIONS",
        "/api/auth/me",
        headers={"Origin": "http://elsewhere.test", "Access-Control-Request-Method": "GET"},
    )

    assert response.status == 204
    assert response.header("access-control-allow-origin") == "*"
    assert "authorization" in (response.header("access-control-allow-headers") or "")


def test_path_parameters_are_bound_and_decoded(fixture_app: LocalServe) -> None:
    event = fixture_app.request("POST", "/echo/abc%20def", body="{}").json()["event"]

    assert event["routeKey"] == "POST /echo/{id}"
    assert event["rawPath"] == "/echo/abc%20def"
    assert event["pathParameters"] == {"id": "abc def"}


def test_a_greedy_path_takes_the_rest_and_any_method(fixture_app: LocalServe) -> None:
    event = fixture_app.request("DELETE", "/files/a/b/c.txt").json()["event"]

    assert event["routeKey"] == "ANY /files/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a/b/c.txt"}


def test_a_literal_route_beats_a_greedy_one(fixture_app: LocalServe) -> None:
    body = fixture_app.get_json("/files/special")

    assert body["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "OtherFunction"
    assert body["event"]["routeKey"] == "GET /files/special"


def test_a_greedy_parameter_needs_at_least_one_segment(fixture_app: LocalServe) -> None:
    assert fixture_app.request("GET", "/files").status == 404
    assert fixture_app.request("GET", "/files/").status == 404
