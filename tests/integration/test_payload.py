"""The function gets API Gateway's payload 2.0 event; its result comes back as API Gateway maps it."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.integration.conftest import LocalServe

pytestmark = pytest.mark.integration


def test_the_event_is_a_payload_2_0_event(fixture_app: LocalServe) -> None:
    before = time.time() * 1000
    response = fixture_app.request(
        "POST",
        "/echo/42?b=2&a=1&a=%20x&flag",
        headers=[
            ("Content-Type", "application/json"),
            ("X-Multi", "one"),
            ("X-Multi", "two"),
            ("Cookie", "session=abc; theme=dark"),
            ("User-Agent", "integration-test"),
        ],
        body=json.dumps({"hello": "world"}),
    )
    event = response.json()["event"]

    assert event["version"] == "2.0"
    assert event["rawPath"] == "/echo/42"
    assert event["rawQueryString"] == "b=2&a=1&a=%20x&flag"
    assert event["queryStringParameters"] == {"a": "1, x", "b": "2", "flag": ""}
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert event["headers"]["x-multi"] == "one,two"
    assert event["headers"]["content-type"] == "application/json"
    assert "cookie" not in event["headers"]
    assert event["body"] == '{"hello": "world"}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/echo/42",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "integration-test",
    }
    assert context["routeKey"] == event["routeKey"] == "POST /echo/{id}"
    assert context["stage"] == "$default"
    assert context["requestId"] == response.header("apigw-requestid")
    assert before - 1000 <= context["timeEpoch"] <= time.time() * 1000
    assert "authorizer" not in context


def test_a_binary_body_arrives_base64_encoded(fixture_app: LocalServe) -> None:
    payload = bytes(range(256))

    event = fixture_app.request(
        "POST", "/echo/bin", headers={"Content-Type": "application/octet-stream"}, body=payload
    ).json()["event"]

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


def test_the_function_runs_with_lambdas_environment_and_the_local_resources(fixture_app: LocalServe) -> None:
    body = fixture_app.get_json("/echo")

    env = body["env"]
    assert env["KV_TABLE_NAME"] == "KVTable"
    assert env["GREETING"] == "hello from us-east-1"
    assert env["SECRET_ARN"].startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:Secret-")
    assert env["TOPIC_ARN"] == "arn:aws:sns:us-east-1:123456789012:Topic"
    assert env["TABLE_ARN"] == "arn:aws:dynamodb:us-east-1:123456789012:table/KVTable"
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert env["ARCTURUS_LOCAL"] == "1"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert body["layer"] is True
    assert body["context"]["function_name"] == "EchoFunction"
    assert 0 < body["context"]["remaining_ms"] <= 5000


def test_env_vars_override_declared_variables_of_the_named_function_only(fixture_app: LocalServe) -> None:
    other = fixture_app.get_json("/other")["env"]
    echo = fixture_app.get_json("/echo")["env"]

    assert other["GREETING"] == "hi from env-vars"
    assert other["UNDECLARED"] is None
    assert echo["GREETING"] == "hello from us-east-1"


@pytest.mark.parametrize(
    ("kind", "status", "content_type", "body"),
    [
        ("string", 200, "text/plain; charset=utf-8", b"hello"),
        ("dict", 200, "application/json", b'{"hello": "world"}'),
        ("invalid", 502, "application/json", b'{"message": "Internal Server Error"}'),
        ("raise", 502, "application/json", b'{"message": "Internal Server Error"}'),
    ],
)
def test_results_map_back_like_api_gateway(
    fixture_app: LocalServe, kind: str, status: int, content_type: str, body: bytes
) -> None:
    response = fixture_app.request("GET", f"/shape/{kind}")

    assert (response.status, response.header("content-type"), response.body) == (status, content_type, body)


def test_a_full_result_sets_status_headers_cookies_and_a_binary_body(fixture_app: LocalServe) -> None:
    response = fixture_app.request("GET", "/shape/full")

    assert response.status == 201
    assert response.header("x-one") == "1"
    assert response.header("x-many") == "a,b"
    assert [value for name, value in response.headers if name.lower() == "set-cookie"] == [
        "a=1",
        "b=2; Path=/",
    ]
    assert response.body == b"\x00\x01binary"


def test_cors_headers_are_the_apis_not_the_functions(fixture_app: LocalServe) -> None:
    allowed = fixture_app.request("GET", "/shape/full", headers={"Origin": "http://dashboard.test"})
    other = fixture_app.request("GET", "/shape/full", headers={"Origin": "http://evil.test"})
    preflight = fixture_app.request(
        "OPTIONS",
        "/echo",
        headers={"Origin": "http://dashboard.test", "Access-Control-Request-Method": "GET"},
    )

    assert allowed.header("access-control-allow-origin") == "http://dashboard.test"
    assert allowed.header("access-control-expose-headers") == "x-one"
    assert other.header("access-control-allow-origin") is None
    assert preflight.status == 204
    assert preflight.header("access-control-allow-methods") == "GET,POST"
    assert preflight.header("access-control-max-age") == "600"
