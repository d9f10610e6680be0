"""Malformed events, every route: a 4xx problem (or the route's normal answer), never a 500, a crash or a
stack trace.

API Gateway always sends a well-formed HTTP API 2.0 event; these come from direct invokes (``python -m
local invoke -e``, the console's test button, an integration left on payload format 1.0) and from
clients sending bodies that are not what the route reads.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from arcturus import background
from arcturus.kv import KVNamespace
from arcturus.observability import logger
from local.demo_upstream import demo_sources_config, start_demo_upstream
from tests.unit.support import (
    FakeContext,
    Stack,
    cold_start,
    http_event,
    json_body,
    load_function,
    route_requests,
    stand_up_stack,
)

Event = dict[str, Any]
Mutation = Callable[[Event], Any]
BODY_ROUTES = frozenset(
    {"POST /api/auth/profile", "PUT /api/auth/roles", "POST /api/contact", "POST /api/public/chat"}
)


def _without(*path: str) -> Mutation:
    def mutate(event: Event) -> Event:
        parent = event
        for name in path[:-1]:
            parent = parent[name]
        del parent[path[-1]]
        return event

    return mutate


def _body(raw: str, *, content_type: str | None = None, base64_encoded: bool = False) -> Mutation:
    def mutate(event: Event) -> Event:
        event["body"], event["isBase64Encoded"] = raw, base64_encoded
        if content_type:
            event["headers"]["content-type"] = content_type
        return event

    return mutate


def _with_unknown_field(event: Event) -> Event:
    body = json.loads(event.get("body") or "{}")
    event["body"] = json.dumps(body | {"unexpected": True})
    return event


NOT_AN_EVENT: dict[str, Mutation] = {
    "no requestContext": _without("requestContext"),
    "no requestContext.http": _without("requestContext", "http"),
    "no http method": _without("requestContext", "http", "method"),
    "no source ip": _without("requestContext", "http", "sourceIp"),
    "no rawPath": _without("rawPath"),
    "an empty event": lambda event: {},
    "a list, not an object": lambda event: [event],
    "base64 flag, body not base64": _body("%%% not base64 %%%", base64_encoded=True),
    "base64 of bytes that are not UTF-8": _body(base64.b64encode(b"\xff\xfe{").decode(), base64_encoded=True),
}
"""What no route can read: 400 on every route."""

UNREADABLE_BODY: dict[str, Mutation] = {
    "no body": lambda event: {name: value for name, value in event.items() if name != "body"},
    "body not JSON": _body("{not json"),
    "body a list": _body("[1, 2]"),
    "body a number": _body("42"),
    "body a string": _body('"hello"'),
    "body null": _body("null"),
    "body nested 100000 deep": _body("[" * 100_000 + "]" * 100_000),
    # Past Python's 4,300-digit limit on int(str), json.loads raises a bare ValueError.
    "an integer of 5000 digits": _body('{"name": ' + "9" * 5000 + ', "message": ' + "9" * 5000 + "}"),
    "an integer of 5000 digits, top level": _body("1" * 5000),
    "body of 5 MB": _body(json.dumps({"message": "x" * 5_000_000})),
    "body as text/plain": _body('{"message": "hi"}', content_type="text/plain"),
    "body form-encoded": _body("message=hi", content_type="application/x-www-form-urlencoded"),
    "unknown field": _with_unknown_field,
}
"""Bodies a body-reading route refuses with a 4xx (the others ignore the body)."""

ODD_BUT_READABLE: dict[str, Mutation] = {
    "headers missing": _without("headers"),
    "headers null": lambda event: event | {"headers": None},
    "no version": _without("version"),
    "no query string": _without("rawQueryString"),
}
"""Events that lack what API Gateway always sends, but that a route can still answer."""


@pytest.fixture
def stack(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    server, base_url = start_demo_upstream()
    yield stand_up_stack(monkeypatch, demo_sources_config(base_url))
    background.drain(10)
    server.shutdown()
    cold_start()


def answer(function: Any, event: Any) -> dict[str, Any]:
    """What the handler returned: an HTTP API answer with a status code."""
    response: dict[str, Any] = function.handler(event, FakeContext(function.__name__))
    assert isinstance(response.get("statusCode"), int), response
    return response


def is_problem(response: dict[str, Any]) -> bool:
    """Whether ``response`` is RFC 9457 problem JSON of its own status, with no stack trace."""
    if response["headers"].get("Content-Type") != "application/problem+json":
        return False
    body = json_body(response)
    return body.get("status") == response["statusCode"] and "Traceback" not in response["body"]


def expected(route: str, case: str, status: int) -> bool:
    """Whether ``status`` is an acceptable answer of ``route`` to malformed ``case``."""
    if case in NOT_AN_EVENT:
        return status == 400
    if case in UNREADABLE_BODY and route in BODY_ROUTES:
        return 400 <= status < 500
    return status < 500


def test_no_malformed_event_gets_a_500_or_a_stack_trace(stack: Stack) -> None:
    mutations = NOT_AN_EVENT | UNREADABLE_BODY | ODD_BUT_READABLE
    wrong: list[tuple[str, str, int | str]] = []
    for route, (directory, well_formed) in route_requests(stack.roles_version).items():
        function = load_function(directory)
        for number, (case, mutate) in enumerate(mutations.items()):
            event = copy.deepcopy(well_formed)
            # One client address per case, so no case spends another's rate-limit quota.
            event["requestContext"]["http"]["sourceIp"] = f"203.0.113.{number + 1}"
            try:
                response = answer(function, mutate(event))
            except Exception as error:  # an invocation error: API Gateway answers a bare 500
                wrong.append((route, case, f"raised {type(error).__name__}"))
                continue
            status = response["statusCode"]
            if not expected(route, case, status) or (status >= 400 and not is_problem(response)):
                wrong.append((route, case, status))

    assert wrong == []


def test_a_malformed_contact_post_stores_and_sends_nothing(stack: Stack) -> None:
    directory, well_formed = route_requests(stack.roles_version)["POST /api/contact"]
    function = load_function(directory)

    for name, mutate in (NOT_AN_EVENT | UNREADABLE_BODY).items():
        answer(function, mutate(copy.deepcopy(well_formed)))
        assert KVNamespace.from_env().list(prefix="contact:")["keys"] == [], name

    assert stack.mailbox.received() == []


def test_each_log_line_names_its_own_request(stack: Stack) -> None:
    status = load_function("status")
    context = FakeContext("arcturus-status")
    first, second = http_event("GET", "/api/status"), http_event("GET", "/api/status")
    for event in (first, second):
        del event["rawPath"]  # unreadable: the handler logs a warning before it answers 400
    written = io.StringIO()  # the function's log lines, as the logger writes them
    copy_of_lines = logging.StreamHandler(written)
    copy_of_lines.setFormatter(logger.registered_formatter)
    logger.addHandler(copy_of_lines)
    try:
        for event in (first, second, ["not", "an", "event"]):
            assert status.handler(event, context)["statusCode"] == 400
    finally:
        logger.handlers.remove(copy_of_lines)
    lines = [json.loads(line) for line in written.getvalue().splitlines()]

    assert [line["message"] for line in lines] == ["unreadable event"] * 3
    assert [line.get("correlation_id") for line in lines] == [
        first["requestContext"]["requestId"],
        second["requestContext"]["requestId"],
        None,  # not the previous request's
    ]
    # cold_start is Powertools' own, once per process: here, whichever test ran a handler first.
    assert {line["function_name"] for line in lines} == {"arcturus-status"}
    assert isinstance(lines[0]["cold_start"], bool)
    assert [line["cold_start"] for line in lines[1:]] == [False, False]
