"""docs/openapi.json: generated from the code, complete for template.yaml, and true to what the code sends.

The document's content is the handlers' business; these tests hold it to the facts that do not depend on
any one handler: every gateway route is there with its security, every error is problem JSON, the rate
limited and cached routes carry their headers, and the bodies the arcturus builders produce are the
ones the document describes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pytest
from aws_lambda_powertools.event_handler.openapi.params import Body
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from arcturus.cache import CacheStatus, TwoTierCache
from arcturus.chat import ChatReply, ChatRequest, LocalEchoModel, PublicChat
from arcturus.contact import (
    IDEMPOTENCY_KEY_PATTERN,
    SINGLE_LINE_PATTERN,
    TEXT_PATTERN,
    ContactMessage,
    idempotency_key,
)
from arcturus.identity import CallerProfile, caller_from
from arcturus.kv import KVNamespace
from arcturus.roles import parse_document
from arcturus.sources import check_services, parse_config
from arcturus.statusboard import ServicesReport, StatusSummary, services_report, status_summary
from arcturus.web.encoder import to_json
from arcturus.web.problem import HTTPProblem, Problem, ValidationProblem
from arcturus.web.resolver import Takes, build_resolver, takes
from local import LocalError
from local.demo_upstream import DemoServer, demo_sources_config, start_demo_upstream
from local.openapi import build, load_function
from local.template import Template
from tests.unit.support import FakeContext, http_event, json_body

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "openapi.json"
SEED = ROOT / "local" / "seed" / "user-roles.json"
PROBLEM = "#/components/schemas/Problem"
Declared = TypeVar("Declared")


def on_the_wire(body: type[Declared], value: object) -> Declared:
    """``value`` as an answer sends it, read back strictly as the ``body`` the route declares (the type
    its schema is made from): a key it does not list, or a value of another type, fails."""
    return TypeAdapter(body).validate_json(to_json(value), strict=True)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return loaded


@pytest.fixture(scope="module")
def routes() -> list[Any]:
    return Template(ROOT / "template.yaml").routes()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


# -- the document and the code ------------------------------------------------------------------------


def test_the_committed_document_is_what_the_code_generates() -> None:
    # The build imports every function with its own environment: a process of its own, as make runs it.
    generated = subprocess.run(
        [sys.executable, "-m", "local", "openapi"], cwd=ROOT, capture_output=True, timeout=120, check=False
    )

    assert generated.returncode == 0, generated.stderr.decode()
    assert generated.stdout.decode() == DOCUMENT.read_text(), "docs/openapi.json is stale: run make openapi"


def test_every_route_of_the_template_is_documented_with_its_method(
    document: dict[str, Any], routes: list[Any]
) -> None:
    documented = {(method, path) for method, path, _ in operations(document)}

    assert documented == {(route.method, route.path) for route in routes}
    assert len(routes) == 11


def test_each_operation_asks_for_what_its_route_checks(document: dict[str, Any], routes: list[Any]) -> None:
    for route in routes:
        operation = document["paths"][route.path][route.method.lower()]

        if route.authorizer is not None:
            assert operation["security"] == [{"jwt": []}], route
            assert {"401", "403"} <= set(operation["responses"]), route
        elif route.path == "/api/cache/warmup":
            assert operation["security"] == [{"warmupSecret": []}]
        else:
            assert operation["security"] == [], route
    assert set(document["components"]["securitySchemes"]) == {"jwt", "warmupSecret"}


def test_each_function_validates_what_its_operations_take(
    document: dict[str, Any], routes: list[Any]
) -> None:
    # build_resolver(takes=...) skips validation where there is nothing to check: a parameter or a body
    # added later to such a function would go unchecked.
    template = Template(ROOT / "template.yaml")
    functions = template.functions()
    needs: dict[str, Takes] = {route.function: Takes.NOTHING for route in routes}
    for route in routes:
        operation = document["paths"][route.path][route.method.lower()]
        parameters = operation.get("parameters", [])
        if operation.get("requestBody") or any(p["in"] != "query" or p.get("required") for p in parameters):
            needs[route.function] = Takes.INPUT
        elif parameters and needs[route.function] is Takes.NOTHING:
            needs[route.function] = Takes.OPTIONAL_QUERY

    built = {name: takes(load_function(template, functions[name]).app) for name in needs}

    assert built == needs
    assert set(built.values()) == set(Takes)  # every kind is in use, so each branch above is checked


def test_every_error_is_problem_json_and_only_the_authorizer_says_otherwise(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, answer in operation["responses"].items():
            if int(status) < 400:
                continue
            content = answer["content"]
            assert "application/problem+json" in content, (method, path, status)
            expected = {"application/problem+json"} | ({"application/json"} if status == "401" else set())
            assert set(content) <= expected, (method, path, status)
        assert {"500", "503"} <= set(operation["responses"]), (method, path)


def test_rate_limited_routes_document_429_and_their_headers(document: dict[str, Any]) -> None:
    limited = [(m, p, op) for m, p, op in operations(document) if "x-rate-limit" in op]

    # The design's table: each route's rule as the route itself declares it.
    assert {(m, p): op["x-rate-limit"] for m, p, op in limited} == {
        ("POST", "/api/auth/profile"): {"name": "auth", "limit": 20, "windowSeconds": 60},
        ("POST", "/api/contact"): {"name": "contact", "limit": 5, "windowSeconds": 60},
        ("POST", "/api/public/chat"): {"name": "chat", "limit": 10, "windowSeconds": 60},
    }
    for method, path, operation in limited:
        too_many = operation["responses"]["429"]
        assert too_many["headers"]["RateLimit"]["required"] is True, (method, path)
        assert too_many["headers"]["RateLimit-Policy"]["required"] is True, (method, path)
        assert too_many["headers"]["Retry-After"] == {"$ref": "#/components/headers/Retry-After"}
    assert document["components"]["headers"]["Retry-After"]["required"] is True


def test_cached_routes_document_x_cache(document: dict[str, Any]) -> None:
    for path in ("/api/status", "/api/services", "/api/dashboard"):
        header = document["paths"][path]["get"]["responses"]["200"]["headers"]["X-Cache"]

        assert header["required"] is True
        assert header["schema"]["enum"] == ["HIT", "STALE", "MISS"]


def test_bodies_parsed_after_authorization_are_documented_and_marked(document: dict[str, Any]) -> None:
    profile = document["paths"]["/api/auth/profile"]["post"]
    roles = document["paths"]["/api/auth/roles"]["put"]

    assert profile["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ProfileUpdate")
    assert roles["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RolesDocument")
    assert roles["parameters"][0]["name"] == "if-match"
    assert {"412", "422", "428"} <= set(roles["responses"])
    for operation in (profile, roles):
        assert operation["x-body-validated-after-authorization"] is True
        assert "415" in operation["responses"]  # the media type is checked first, as everywhere


def test_every_reference_is_defined(document: dict[str, Any]) -> None:
    def references(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from references(value)
        elif isinstance(node, list):
            for value in node:
                yield from references(value)

    for reference in set(references(document)):
        section, name = reference.removeprefix("#/components/").split("/")
        assert name in document["components"][section], reference


# -- the merge's own rules, on a template of our making ----------------------------------------------

FUNCTION = """
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel
from typing_extensions import TypedDict

from arcturus.web import problem
from arcturus.web.docs import documented
from arcturus.web.resolver import build_resolver


class {name}(BaseModel):
    value: str


class Undocumented(TypedDict):
    value: str


app = build_resolver()


@app.post("/api/thing", responses={{200: documented({answer}, "The thing.")}})
def thing(body: Annotated[{name}, Body()]) -> dict[str, str]:
    return {{}}
"""

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Layer:
    Type: AWS::Serverless::LayerVersion
    Properties: {{ContentUri: {layer}}}
  ThingFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: thing/
      Handler: app.handler
      Layers: [!Ref Layer]
      Events:
        Post: {{Type: HttpApi, Properties: {{Method: POST, Path: {path}}}}}
"""


def template_of(
    tmp_path: Path, *, name: str = "Thing", path: str = "/api/thing", answer: str = "problem.Problem"
) -> Template:
    (tmp_path / "thing").mkdir()
    (tmp_path / "thing" / "app.py").write_text(FUNCTION.format(name=name, answer=answer))
    (tmp_path / "template.yaml").write_text(TEMPLATE.format(layer=ROOT / "layers" / "shared", path=path))
    return Template(tmp_path / "template.yaml")


def test_a_template_of_our_making_is_documented(tmp_path: Path) -> None:
    document = build(template_of(tmp_path))

    operation = document["paths"]["/api/thing"]["post"]
    assert operation["security"] == []
    assert sorted(operation["responses"]) == ["200", "400", "415", "422", "500", "503"]
    assert {"Thing", "Problem", "ValidationProblem", "FieldError"} == set(document["components"]["schemas"])


def test_a_function_model_that_clashes_with_another_of_its_name_is_an_error(tmp_path: Path) -> None:
    # This function's Problem is not the layer's problem details: one name, one schema.
    with pytest.raises(LocalError, match=r"schema Problem from arcturus differs"):
        build(template_of(tmp_path, name="Problem"))


def test_a_reference_to_a_model_nobody_defines_is_an_error(tmp_path: Path) -> None:
    template = template_of(tmp_path, answer="Undocumented")

    with pytest.raises(LocalError, match="Undocumented"):
        build(template)


def test_a_template_route_the_function_does_not_have_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LocalError, match="POST /api/elsewhere"):
        build(template_of(tmp_path, path="/api/elsewhere"))


# -- what the code sends is what the document says ----------------------------------------------------


@pytest.fixture
def upstream() -> Iterator[tuple[DemoServer, str]]:
    server, base_url = start_demo_upstream()
    yield server, base_url
    server.shutdown()


def test_status_and_services_bodies_are_what_the_routes_declare(upstream: tuple[DemoServer, str]) -> None:
    server, base_url = upstream
    server.upstream.set_fault("git", "fail", None)
    checks = check_services(parse_config(json.dumps(demo_sources_config(base_url))))

    summary = status_summary(checks, "2026-01-01T00:00:00Z")
    report = services_report(checks, time.time())

    assert on_the_wire(StatusSummary, summary)["status"] == "degraded"
    parsed = on_the_wire(ServicesReport, report)
    assert {check["status"] for check in parsed["services"]} == {"up", "down"}
    assert [check.get("error") is not None for check in parsed["services"]] == [
        check["status"] == "down" for check in parsed["services"]
    ]


def test_a_key_the_declared_body_does_not_list_fails_its_check() -> None:
    summary = status_summary([], "2026-01-01T00:00:00Z")

    with pytest.raises(ValidationError, match="extra"):
        on_the_wire(StatusSummary, {**summary, "region": "eu-west-1"})


def test_the_caller_and_cache_status_bodies_are_what_the_routes_declare(kv: KVNamespace) -> None:
    document = parse_document(SEED.read_text())
    cache = TwoTierCache(kv)
    cache.put("services", "all", {"services": [], "checkedAt": "2026-01-01T00:00:00Z"})

    for email in document["users"]:
        caller = caller_from(document, email)
        assert caller is not None
        profile = on_the_wire(CallerProfile, caller.profile())
        assert profile["dashboardProfiles"] == list(document["users"][email]["dashboardProfiles"])
    kv.put("session:00000000-0000-4000-8000-000000000000", "{}")
    first = on_the_wire(CacheStatus, cache.status(limit=1))
    last = on_the_wire(CacheStatus, cache.status(cursor=first.get("cursor")))
    assert (first["kvKeys"], first.get("otherKeys"), last["kvKeys"], "cursor" in last) == (
        ["cache:services:all"],
        {"session": 1},
        [],
        False,
    )


def test_chat_replies_are_what_the_route_declares(kv: KVNamespace) -> None:
    reply = PublicChat(kv, LocalEchoModel()).answer("Hello.")

    assert on_the_wire(ChatReply, reply)["sessionId"] == reply["sessionId"]


class Thing(BaseModel):
    name: str


def resolver_answer(**request: Any) -> dict[str, Any]:
    """What the shared resolver answers on a route that takes a JSON ``Thing`` (and may raise)."""
    app = build_resolver()

    @app.post("/things")
    def things(thing: Annotated[Thing, Body()]) -> dict[str, str]:
        if thing.name == "teapot":
            raise HTTPProblem(418, "Short and stout.")
        return {"name": thing.name}

    answer: dict[str, Any] = app.resolve(http_event("POST", "/things", **request), FakeContext())
    return answer


@pytest.mark.parametrize(
    ("request_", "status", "model"),
    [
        ({"body": {"name": "teapot"}}, 418, Problem),
        ({"body": {"nom": "x"}}, 422, ValidationProblem),
        ({"body": "name=x", "headers": {"content-type": "text/plain"}}, 415, Problem),
        # Powertools would parse these, or crash (500) on a multipart type without its boundary.
        (
            {"body": "name=x", "headers": {"content-type": "application/x-www-form-urlencoded"}},
            415,
            Problem,
        ),
        ({"body": "--x\r\n", "headers": {"content-type": "multipart/form-data"}}, 415, Problem),
    ],
    ids=["problem", "invalid", "text", "form", "multipart without boundary"],
)
def test_errors_are_the_documented_problems(
    request_: dict[str, Any], status: int, model: type[Problem]
) -> None:
    answer = resolver_answer(**request_)

    assert answer["statusCode"] == status
    assert answer["headers"]["Content-Type"] == "application/problem+json"
    on_the_wire(model, json_body(answer))


def test_json_bodies_with_a_charset_are_still_read() -> None:
    answer = resolver_answer(
        body=json.dumps({"name": "x"}), headers={"content-type": "application/json; charset=utf-8"}
    )

    assert (answer["statusCode"], json_body(answer)) == (200, {"name": "x"})


# -- the patterns the document shows say what the validators check --------------------------------------


@settings(max_examples=60, derandomize=True, database=None)
@given(
    name=st.from_regex(SINGLE_LINE_PATTERN, fullmatch=True).filter(lambda s: len(s.strip()) <= 100),
    message=st.from_regex(TEXT_PATTERN, fullmatch=True).filter(lambda s: len(s.strip()) <= 5000),
)
def test_a_contact_message_the_document_allows_is_accepted(name: str, message: str) -> None:
    ContactMessage(name=name, email="visitor@example.com", message=message)


@pytest.mark.parametrize("name", ["line\nbreak", "tab\tbed", " ", "bell\x07"])
def test_a_name_the_document_refuses_is_refused(name: str) -> None:
    assert not re.fullmatch(SINGLE_LINE_PATTERN, name)
    with pytest.raises(ValidationError):
        ContactMessage(name=name, email="visitor@example.com", message="hello")


@settings(max_examples=40, derandomize=True, database=None)
@given(st.from_regex(IDEMPOTENCY_KEY_PATTERN, fullmatch=True))
def test_an_idempotency_key_the_document_allows_is_accepted(key: str) -> None:
    assert idempotency_key(key) == key


CHAT_MESSAGE = ChatRequest.model_json_schema()["properties"]["message"]["pattern"]


@settings(max_examples=60, derandomize=True, database=None)
@given(st.text(max_size=50))
def test_a_chat_message_is_accepted_exactly_when_the_document_allows_it(message: str) -> None:
    try:
        ChatRequest(message=message)
    except ValidationError:
        accepted = False
    else:
        accepted = True

    assert accepted == bool(re.search(CHAT_MESSAGE, message)), repr(message)
