"""DynamoDB failing under every route: throttled, 5xx, timing out, connections reset or hanging.

The faults sit where the network would be (``FailingAWS``), so botocore's own retries run as they would
against DynamoDB, and a refused write never lands. What DESIGN.md promises, checked route by route:

- a store that stays down is a 503 problem with ``Retry-After``, never a 500 and never a bare body,
  and it comes inside the functions' 10 s timeout (a Lambda timeout is API Gateway's bare 500);
- a flaky store (failed attempts that a retry gets past) is invisible to the caller;
- identity fails closed (503, not 200, not 403), the rate limiter fails open (allowed, counted);
- cached routes keep answering from memory (HIT, STALE), and a miss still asks the source;
- no write is lost or half-done: the old value, document, ETag or conversation stays whole.
"""

from __future__ import annotations

import copy
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError, SSLError

from arcturus import aws, background
from arcturus.cache import Entry, cache_key, container_cache
from arcturus.errors import StoreUnavailable
from arcturus.kv import CHUNK_BYTES, KVNamespace
from arcturus.ratelimit import container_limiter
from arcturus.roles import ROLES_KEY, RolesStore, roles_store
from local.demo_upstream import DemoServer, demo_sources_config, start_demo_upstream
from tests.conftest import TABLE
from tests.unit.support import (
    ADMIN,
    ANSWER_LOST,
    CONTACT,
    SERVER_ERROR,
    STORE_FAULTS,
    THROTTLED,
    TIMEOUT,
    FailingAWS,
    Fault,
    Stack,
    claims_for,
    cold_start,
    http_event,
    invoke,
    json_body,
    load_function,
    roles_document,
    route_requests,
    stand_up_stack,
)

FUNCTION_TIMEOUT_S = 10
"""template.yaml's Globals.Function.Timeout: past it Lambda kills the invocation and API Gateway answers
a bare 500, so every failure below must be answered before it."""
_RETRIES = aws.CLIENT_CONFIG.retries
ATTEMPTS = _RETRIES.get("total_max_attempts") or _RETRIES["max_attempts"] + 1
"""Requests botocore sends for one call before it gives up (``max_attempts`` counts only the retries)."""
LIMITER_ATTEMPTS = aws.PURPOSE_CONFIG[aws.LIMITER].retries["total_max_attempts"]
"""The same for the rate limiter's counter, which has a shorter budget of its own."""
OPERATIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "BatchWriteItem", "Query")
SSL_FAILURE = Fault(
    "tls", raises=lambda url: SSLError(endpoint_url=url, error="EOF in violation of protocol")
)


@pytest.fixture
def upstream() -> Iterator[DemoServer]:
    server, _ = start_demo_upstream()
    yield server
    server.shutdown()


@pytest.fixture
def stack(dynamodb: Any, upstream: DemoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    base_url = f"http://127.0.0.1:{upstream.server_address[1]}"
    yield stand_up_stack(monkeypatch, demo_sources_config(base_url))
    background.drain(10)
    cold_start()


def unavailable(response: dict[str, Any]) -> None:
    """``response`` is a 503 problem (RFC 9457 fields, no stack trace) that says when to retry."""
    assert response["statusCode"] == 503, response
    assert response["headers"]["Content-Type"] == "application/problem+json"
    assert int(response["headers"]["Retry-After"]) >= 1
    assert "Traceback" not in response["body"]
    body = json_body(response)
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == 503


def call(route: str, stack: Stack, function: ModuleType | None = None) -> dict[str, Any]:
    directory, event = route_requests(stack.roles_version)[route]
    return invoke(function or load_function(directory), copy.deepcopy(event))


def emitted(capsys: pytest.CaptureFixture[str]) -> set[str]:
    """Names of the metrics the handlers flushed so far (CloudWatch embedded metric format)."""
    names = set()
    for line in capsys.readouterr().out.splitlines():
        if '"_aws"' in line:
            record = json.loads(line)
            names |= {metric["Name"] for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    return names


def warm_roles(stack: Stack) -> None:
    """A request that leaves this container's roles copy fresh (as any recent request does)."""
    assert call("GET /api/auth/me", stack)["statusCode"] == 200


# -- every route, cold container -----------------------------------------------------------------------


def outcome(route: str, response: dict[str, Any], dynamodb: FailingAWS) -> str | None:
    """What is wrong with ``route``'s answer to a store that stays down (None: nothing)."""
    if any(count % ATTEMPTS for count in dynamodb.attempts.values()) or not dynamodb.attempts:
        return f"not {ATTEMPTS} attempts per call: {dict(dynamodb.attempts)}"
    if route == "POST /api/cache/warmup":
        # The warmup reports what it could not write; nothing was warmed.
        report = json_body(response)
        failed = {failure["source"] for failure in report.get("failed", [])}
        ok = response["statusCode"] == 200 and report["warmed"] == [] and "roles" in failed
        return None if ok else f"{response['statusCode']} {report}"
    try:
        unavailable(response)
    except AssertionError:
        return f"{response['statusCode']} {response['headers']} {response['body'][:200]}"
    return None


@pytest.mark.parametrize("fault", [THROTTLED, SERVER_ERROR, TIMEOUT], ids=lambda fault: fault.name)
def test_a_store_that_stays_down_is_a_503_problem_on_every_route(stack: Stack, fault: Fault) -> None:
    """Each route in a new container (nothing cached) while every DynamoDB request fails."""
    wrong = {}
    for index, (route, (directory, event)) in enumerate(route_requests(stack.roles_version).items()):
        if index:
            cold_start()
        function = load_function(directory)
        with FailingAWS(aws.dynamodb()).fail(None, fault) as dynamodb:
            response = invoke(function, event)
        if (problem := outcome(route, response, dynamodb)) is not None:
            wrong[route] = problem

    assert wrong == {}


def test_a_flaky_store_is_invisible_on_every_route(stack: Stack) -> None:
    """Each route in a new container whose first call of each DynamoDB operation is throttled, then
    times out, then succeeds: botocore's retries hide both failures from the caller."""
    wrong = {}
    for route in route_requests(stack.roles_version):
        # Nothing cached, so every route calls DynamoDB. The clients are kept: retries that succeed
        # give their quota back, and a new client per route would only cost time.
        for container_wide in (roles_store, container_cache, container_limiter):
            container_wide.cache_clear()
        # Earlier routes may have changed the roles document: the PUT sends its current ETag.
        _, version = RolesStore(KVNamespace.from_env()).read_with_version()
        directory, event = route_requests(str(version))[route]
        function = load_function(directory)
        with FailingAWS(aws.dynamodb()) as dynamodb:
            for operation in OPERATIONS:
                dynamodb.fail(operation, THROTTLED, times=1).fail(operation, TIMEOUT, times=1)
            response = invoke(function, event)
        report = json_body(response) if route == "POST /api/cache/warmup" else {}
        if (
            response["statusCode"] not in (200, 202)
            or report.get("failed")
            or {2} != set(dynamodb.failed.values())
        ):
            wrong[route] = (response["statusCode"], dict(dynamodb.failed), response["body"][:200])

    assert wrong == {}


def test_a_tls_failure_is_a_store_failure_not_a_500(stack: Stack) -> None:
    with FailingAWS(aws.dynamodb()) as dynamodb:
        dynamodb.fail(None, SSL_FAILURE)
        response = call("GET /api/auth/me", stack)

    unavailable(response)
    assert dynamodb.attempts["GetItem"] == ATTEMPTS


def test_a_misconfiguration_is_a_loud_500_problem_not_a_retry_later(stack: Stack) -> None:
    """A denied read or a missing secret will not heal by retrying: it is logged as an error and
    answered 500 (still problem JSON, still no stack trace), where an outage is a 503."""
    denied = Fault("denied", code="AccessDeniedException", status=400)
    missing = Fault("missing", code="ResourceNotFoundException", status=400)
    with FailingAWS(aws.dynamodb()).fail(None, denied) as dynamodb:
        me = call("GET /api/auth/me", stack)
    with FailingAWS(aws.client("secretsmanager")).fail(None, missing):
        warmup = call("POST /api/cache/warmup", stack)

    for response in (me, warmup):
        assert response["statusCode"] == 500, response
        assert response["headers"]["Content-Type"] == "application/problem+json"
        assert "Traceback" not in response["body"]
    assert dynamodb.attempts["GetItem"] == 1


def test_the_warmup_secret_unavailable_is_a_503(stack: Stack) -> None:
    warmup = load_function("cache_warmup")
    for fault in (THROTTLED, SERVER_ERROR, TIMEOUT):
        with FailingAWS(aws.client("secretsmanager")).fail(None, fault) as secrets:
            unavailable(call("POST /api/cache/warmup", stack, warmup))
        assert secrets.attempts["GetSecretValue"] == ATTEMPTS, fault


class _SilentEndpoint:
    """A TCP endpoint that takes connections and requests and never answers (a hung DynamoDB)."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self._socket.settimeout(0.1)
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._open.append(connection)

    def close(self) -> None:
        self._stop.set()
        for connection in self._open:
            connection.close()
        self._socket.close()


@pytest.fixture
def hung_dynamodb(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """DynamoDB (and only DynamoDB) is a real endpoint that never answers, for a new container."""
    endpoint = _SilentEndpoint()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint.url)
    cold_start()
    yield
    endpoint.close()


@pytest.mark.usefixtures("hung_dynamodb")
def test_a_hung_store_is_answered_503_inside_the_function_timeout(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The worst path: the limiter's counter (fails open) and then the route's own write both hang."""
    contact = load_function("contact")

    started = time.monotonic()
    response = call("POST /api/contact", stack, contact)
    elapsed = time.monotonic() - started

    unavailable(response)
    assert elapsed < FUNCTION_TIMEOUT_S - 1, f"answered after {elapsed:.1f} s"
    assert {"RateLimiterFailOpen", "StoreUnavailable"} <= emitted(capsys)
    assert stack.mailbox.received() == []


# -- identity fails closed, the limiter fails open -----------------------------------------------------


def test_a_warm_container_keeps_answering_who_you_are_without_the_store(stack: Stack) -> None:
    me = load_function("auth_me")
    before = call("GET /api/auth/me", stack, me)

    with FailingAWS(aws.dynamodb()) as dynamodb:
        dynamodb.fail(None, SERVER_ERROR)
        during = call("GET /api/auth/me", stack, me)

    assert (during["statusCode"], json_body(during)) == (200, json_body(before))
    assert dynamodb.attempts == {}


def test_the_rate_limiter_fails_open_when_its_counter_cannot_be_written(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    for route in ("POST /api/contact", "POST /api/public/chat"):
        with FailingAWS(aws.client("dynamodb", aws.LIMITER)) as dynamodb:
            dynamodb.fail("UpdateItem", THROTTLED, key_prefix="rate:")
            response = call(route, stack)

        assert response["statusCode"] in (200, 202), route
        assert dynamodb.failed["UpdateItem"] == LIMITER_ATTEMPTS
        # Unchecked, so no remaining count is claimed; the policy is still announced.
        assert "RateLimit" not in response["headers"]
        assert "RateLimit-Policy" in response["headers"]
        assert "RateLimiterFailOpen" in emitted(capsys)


# -- cached routes keep answering ----------------------------------------------------------------------


def test_cached_values_in_memory_are_served_while_the_store_is_down(
    stack: Stack, upstream: DemoServer
) -> None:
    services = load_function("services")
    warm_roles(stack)
    assert call("GET /api/services", stack, services)["headers"]["X-Cache"] == "MISS"
    status = load_function("status")
    asked = sum(upstream.upstream.calls.values())

    with FailingAWS(aws.dynamodb()) as dynamodb:
        dynamodb.fail(None, TIMEOUT)
        hit = call("GET /api/services", stack, services)
        attempts_for_hit = sum(dynamodb.attempts.values())
        # Then the checks as this container fetched them 7 minutes ago, last compared with KV 2 minutes ago.
        now = time.time()
        stale = {"services": [], "checkedAt": "earlier"}
        container_cache().memory.put(cache_key("services", "all"), Entry(stale, now - 420, now - 120, 64))
        served_stale = call("GET /api/status", stack, status)
        background.drain(5)

    assert (hit["statusCode"], hit["headers"]["X-Cache"]) == (200, "HIT")
    assert attempts_for_hit == 0
    assert (served_stale["statusCode"], served_stale["headers"]["X-Cache"]) == (200, "STALE")
    assert json_body(served_stale)["checkedAt"] == "earlier"
    # The refresh after the response found KV down and backed off: the upstream was not asked.
    assert sum(upstream.upstream.calls.values()) == asked


def test_a_miss_while_the_store_is_down_still_asks_the_source(stack: Stack) -> None:
    """KV is asked once for the value(s) and once per key for the refresh lease; then it is left alone
    (no write of the fetched value, no lease to release) and the value is kept in memory."""
    kv_requests = {
        "GET /api/status": {"GetItem": ATTEMPTS, "UpdateItem": ATTEMPTS},
        "GET /api/dashboard": {"BatchGetItem": ATTEMPTS, "UpdateItem": 2 * ATTEMPTS},
    }
    warm_roles(stack)
    for route, expected in kv_requests.items():
        function = load_function(route_requests(stack.roles_version)[route][0])

        with FailingAWS(aws.dynamodb()) as dynamodb:
            dynamodb.fail(None, THROTTLED)
            miss = call(route, stack, function)
            again = call(route, stack, function)

        assert (miss["statusCode"], miss["headers"]["X-Cache"]) == (200, "MISS"), miss
        if route == "GET /api/dashboard":
            assert all("data" in widget for widget in json_body(miss)["widgets"])
        assert dynamodb.attempts == expected
        assert (again["statusCode"], again["headers"]["X-Cache"]) == (200, "HIT")


def test_the_cache_status_is_a_503_while_kv_cannot_be_listed(stack: Stack) -> None:
    function = load_function("cache_status")
    warm_roles(stack)

    with FailingAWS(aws.dynamodb()) as dynamodb:
        dynamodb.fail("Query", SERVER_ERROR)
        response = call("GET /api/cache/status", stack, function)

    unavailable(response)


# -- no write lost or half-done: the roles document ----------------------------------------------------


def roles(function: ModuleType) -> tuple[dict[str, Any], str]:
    """The roles document and its ETag, as an administrator reads them."""
    response = invoke(function, http_event("GET", "/api/auth/roles", claims=claims_for(ADMIN)))
    assert response["statusCode"] == 200
    return json_body(response), response["headers"]["ETag"]


def put_roles(function: ModuleType, document: dict[str, Any], etag: str) -> dict[str, Any]:
    return invoke(
        function,
        http_event(
            "PUT", "/api/auth/roles", body=document, headers={"If-Match": etag}, claims=claims_for(ADMIN)
        ),
    )


def test_a_roles_put_that_fails_leaves_the_document_and_its_etag(stack: Stack) -> None:
    function = load_function("auth_roles")
    document, etag = roles(function)

    for fault in STORE_FAULTS:
        with FailingAWS(aws.dynamodb()) as dynamodb:
            dynamodb.fail("UpdateItem", fault)
            response = put_roles(function, roles_document("new@example.com"), etag)

        unavailable(response)
        assert roles(function) == (document, etag), fault
    cold_start()
    assert roles(load_function("auth_roles")) == (document, etag)


def test_a_roles_put_whose_answer_was_lost_is_not_a_false_conflict(stack: Stack) -> None:
    """DynamoDB wrote, the answer timed out, botocore sent the same conditional write again."""
    function = load_function("auth_roles")
    _, etag = roles(function)
    edited = roles_document("new@example.com")

    with FailingAWS(aws.dynamodb()) as dynamodb:
        dynamodb.fail("UpdateItem", ANSWER_LOST, times=1)
        response = put_roles(function, edited, etag)

    assert response["statusCode"] == 200, response
    assert dynamodb.attempts["UpdateItem"] == 2
    assert roles(function) == (edited, response["headers"]["ETag"])
    # The ETag it answered is the stored one: the next edit goes through with it.
    assert (
        put_roles(function, roles_document("other@example.com"), response["headers"]["ETag"])["statusCode"]
        == 200
    )


def test_a_profile_save_that_fails_changes_nothing(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    function = load_function("auth_profile")
    me = load_function("auth_me")
    before = json_body(call("GET /api/auth/me", stack, me))
    stored = KVNamespace.from_env().get(ROLES_KEY, "json")

    with (
        FailingAWS(aws.dynamodb()) as dynamodb,
        FailingAWS(aws.client("dynamodb", aws.LIMITER)) as limiter,
    ):
        dynamodb.fail(None, THROTTLED)
        limiter.fail(None, THROTTLED)
        response = call("POST /api/auth/profile", stack, function)

    unavailable(response)
    # The limiter failed open first; the save itself is what answered 503.
    assert limiter.attempts == {"UpdateItem": LIMITER_ATTEMPTS}
    assert dynamodb.attempts == {"UpdateItem": ATTEMPTS}
    assert "RateLimiterFailOpen" in emitted(capsys)
    assert KVNamespace.from_env().get(ROLES_KEY, "json") == stored
    assert json_body(call("GET /api/auth/me", stack, me)) == before


# -- no write lost or half-done: contact ---------------------------------------------------------------


def contact_records() -> list[dict[str, Any]]:
    kv = KVNamespace.from_env()
    return [kv.get(key["name"], "json") for key in kv.list(prefix="contact:")["keys"]]


def post_contact(function: ModuleType, key: str | None = None, *, ip: str = "198.51.100.7") -> dict[str, Any]:
    headers = {"Idempotency-Key": key} if key else None
    return invoke(function, http_event("POST", "/api/contact", body=CONTACT, headers=headers, source_ip=ip))


def test_a_contact_message_that_cannot_be_stored_is_503_and_never_sent(stack: Stack) -> None:
    contact = load_function("contact")

    for number, fault in enumerate(STORE_FAULTS):
        with FailingAWS(aws.dynamodb()) as dynamodb:
            dynamodb.fail("UpdateItem", fault, key_prefix="contact:")
            response = post_contact(contact, ip=f"203.0.113.{number + 1}")

        unavailable(response)
        assert contact_records() == [], fault
    assert stack.mailbox.received() == []


def test_a_contact_message_that_cannot_be_announced_is_kept_and_accepted(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    contact = load_function("contact")

    accepted = []
    for fault in (SERVER_ERROR, TIMEOUT):
        with FailingAWS(aws.client("sns")).fail("Publish", fault) as sns:
            response = post_contact(contact)
            background.drain(30)  # the notification is published after the response

        assert response["statusCode"] == 202, fault
        assert sns.attempts["Publish"] == ATTEMPTS
        assert "ContactNotifyFailed" in emitted(capsys)
        accepted.append(json_body(response)["id"])
    assert sorted(record["id"] for record in contact_records()) == sorted(accepted)
    assert stack.mailbox.received() == []


def test_a_keyed_contact_retry_after_a_store_failure_is_taken_once(stack: Stack) -> None:
    contact = load_function("contact")

    with FailingAWS(aws.dynamodb()) as dynamodb:
        # The idempotency record goes in first; then the message itself cannot be stored.
        dynamodb.fail("UpdateItem", THROTTLED, key_prefix="contact:")
        failed = post_contact(contact, key="retry-me")
    retried = post_contact(contact, key="retry-me")
    repeated = post_contact(contact, key="retry-me")

    unavailable(failed)
    assert retried["statusCode"] == 202, retried
    assert json_body(repeated) == json_body(retried)
    assert [record["id"] for record in contact_records()] == [json_body(retried)["id"]]
    assert len(stack.mailbox.received()) == 1


# -- no write lost or half-done: chat ------------------------------------------------------------------


def chat(
    function: ModuleType, message: str, session_id: str | None = None, *, ip: str = "198.51.100.7"
) -> dict[str, Any]:
    body = {"message": message} | ({"sessionId": session_id} if session_id else {})
    return invoke(function, http_event("POST", "/api/public/chat", body=body, source_ip=ip))


def conversation(session_id: str) -> list[str]:
    stored = KVNamespace.from_env().get(f"ai:conversation:{session_id}", "json")
    return [turn["text"] for turn in stored["turns"]] if stored else []


def test_a_chat_message_that_cannot_be_stored_leaves_the_conversation_as_it_was(stack: Stack) -> None:
    function = load_function("chat")
    session_id = json_body(chat(function, "first"))["sessionId"]
    before = conversation(session_id)

    for number, fault in enumerate(STORE_FAULTS):
        ip = f"203.0.113.{number + 1}"  # each fault from its own address: no case meets the limit
        with FailingAWS(aws.dynamodb()) as dynamodb:
            dynamodb.fail("UpdateItem", fault, key_prefix="ai:conversation:")
            failed_new = chat(function, "a new session", ip=ip)
            failed_next = chat(function, "second", session_id, ip=ip)

        unavailable(failed_new)
        unavailable(failed_next)
        assert conversation(session_id) == before, fault
    kv = KVNamespace.from_env()
    assert len(kv.list(prefix="ai:conversation:")["keys"]) == len(kv.list(prefix="session:")["keys"]) == 1


def test_a_chat_turn_that_was_stored_is_answered_even_if_its_session_record_is_not(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The conversation is the record; the session record beside it is bookkeeping. Answering 503 after
    the turn landed would make the visitor send it again, and the conversation would hold it twice."""
    function = load_function("chat")
    session_id = json_body(chat(function, "first"))["sessionId"]

    with FailingAWS(aws.dynamodb()) as dynamodb:
        dynamodb.fail("UpdateItem", SERVER_ERROR, key_prefix="session:")
        response = chat(function, "second", session_id)

    assert response["statusCode"] == 200, response
    assert conversation(session_id)[-2] == "second"
    assert conversation(session_id).count("second") == 1
    assert "ChatSessionNotRecorded" in emitted(capsys)


def test_a_chat_turn_whose_answer_was_lost_is_stored_once_and_answered(stack: Stack) -> None:
    function = load_function("chat")
    session_id = json_body(chat(function, "first"))["sessionId"]

    with FailingAWS(aws.dynamodb()) as dynamodb:
        dynamodb.fail("UpdateItem", ANSWER_LOST, times=1, key_prefix="ai:conversation:")
        response = chat(function, "second", session_id)

    assert response["statusCode"] == 200, response
    assert conversation(session_id).count("second") == 1


# -- no write lost or half-done: chunked KV values -----------------------------------------------------


def chunk_items(dynamodb: Any) -> list[str]:
    pages = dynamodb.get_paginator("scan").paginate(TableName=TABLE, ProjectionExpression="pk, sk")
    items = [item for page in pages for item in page["Items"]]
    return sorted(item["sk"]["S"] for item in items if "#chunk#" in item["pk"]["S"])


def incompressible(size: int, seed: int) -> bytes:
    """Bytes that zlib cannot shrink, so they take ``size / CHUNK_BYTES`` chunks."""
    return random.Random(seed).randbytes(size)


def test_a_chunked_write_whose_switch_fails_keeps_the_old_value_and_leaves_no_chunks(
    kv: KVNamespace, dynamodb: Any
) -> None:
    old, new = incompressible(2 * CHUNK_BYTES + 1, 1), incompressible(3 * CHUNK_BYTES + 1, 2)
    kv.put("big", old)
    chunks_before = chunk_items(dynamodb)

    for fault in STORE_FAULTS:
        with FailingAWS(dynamodb).fail("UpdateItem", fault), pytest.raises(StoreUnavailable):
            kv.put("big", new)

        assert kv.get("big", "bytes") == old, fault
        assert chunk_items(dynamodb) == chunks_before


def test_a_chunked_write_that_fails_midway_keeps_the_old_value_and_leaves_no_chunks(
    dynamodb: Any,
) -> None:
    """More than 25 chunks take two BatchWriteItem requests; the second one stays throttled through
    every attempt, then DynamoDB recovers in time for the clean-up."""
    kv = KVNamespace.from_env()
    kv.put("big", b"small old value")

    with (
        FailingAWS(aws.dynamodb()).fail("BatchWriteItem", THROTTLED, after=1, times=ATTEMPTS),
        pytest.raises(StoreUnavailable),
    ):
        kv.put("big", incompressible(26 * CHUNK_BYTES, 3))

    assert kv.get("big", "bytes") == b"small old value"
    assert chunk_items(dynamodb) == []


def test_a_chunked_read_that_fails_is_an_error_never_part_of_a_value(kv: KVNamespace, dynamodb: Any) -> None:
    kv.put("big", incompressible(2 * CHUNK_BYTES + 1, 4))

    with FailingAWS(dynamodb).fail("BatchGetItem", SERVER_ERROR), pytest.raises(StoreUnavailable):
        kv.get("big", "bytes")


def test_a_retried_blip_in_a_chunked_write_stores_the_whole_value(kv: KVNamespace, dynamodb: Any) -> None:
    value = incompressible(2 * CHUNK_BYTES + 1, 5)

    with FailingAWS(dynamodb) as failing:
        failing.fail("BatchWriteItem", SERVER_ERROR, times=1)
        failing.fail("UpdateItem", THROTTLED, times=1)
        kv.put("big", value)

    assert kv.get("big", "bytes") == value
    assert len(chunk_items(dynamodb)) == 3


def chunk_versions(dynamodb: Any) -> set[str]:
    return {name.partition("#")[0] for name in chunk_items(dynamodb)}


@pytest.mark.parametrize("size", [3 * CHUNK_BYTES + 1, 100], ids=["chunked", "inline"])
def test_a_put_whose_answer_was_lost_keeps_its_value_and_drops_only_the_replaced_chunks(
    kv: KVNamespace, dynamodb: Any, size: int
) -> None:
    old, new = incompressible(2 * CHUNK_BYTES + 1, 6), incompressible(size, 7)
    kv.put("big", old)
    old_version = kv.get_with_version("big")[1]

    # The head switch (the request after the chunks, when there are any) lands; its answer is lost and
    # botocore sends it again.
    head_switch = 1 if size > CHUNK_BYTES else 0
    with FailingAWS(dynamodb).fail(None, ANSWER_LOST, times=1, after=head_switch):
        kv.put("big", new)

    assert kv.get("big", "bytes") == new
    assert old_version not in chunk_versions(dynamodb), "the replaced version's chunks are orphaned"
    assert len(chunk_items(dynamodb)) == (4 if size > CHUNK_BYTES else 0)


def test_a_compare_and_set_whose_answer_was_lost_drops_only_the_replaced_chunks(
    kv: KVNamespace, dynamodb: Any
) -> None:
    kv.put("big", incompressible(2 * CHUNK_BYTES + 1, 8))
    _, version = kv.get_with_version("big")
    new = incompressible(3 * CHUNK_BYTES + 1, 9)

    with FailingAWS(dynamodb).fail(None, ANSWER_LOST, times=1, after=1):
        new_version = kv.put_if_version("big", new, version)

    assert kv.get_with_version("big", "bytes") == (new, new_version)
    assert chunk_versions(dynamodb) == {new_version}


def test_a_delete_whose_answer_was_lost_leaves_no_chunks(kv: KVNamespace, dynamodb: Any) -> None:
    kv.put("big", incompressible(2 * CHUNK_BYTES + 1, 10))

    with FailingAWS(dynamodb).fail("DeleteItem", ANSWER_LOST, times=1):
        kv.delete("big")

    assert kv.get("big") is None
    assert chunk_items(dynamodb) == []


def test_a_retry_never_restores_a_value_a_later_writer_replaced(kv: KVNamespace, dynamodb: Any) -> None:
    """Writer A's head switch lands, its answer is lost; writer B replaces A's value before A's client
    retries. A's retry must not bring its own value back over B's (whose writer deleted A's chunks)."""
    kv.put("big", incompressible(2 * CHUNK_BYTES + 1, 11))
    a_value, b_value = incompressible(2 * CHUNK_BYTES + 1, 12), incompressible(2 * CHUNK_BYTES + 1, 13)
    other = KVNamespace(TABLE, kv.namespace, client=boto3.client("dynamodb", region_name="us-east-1"))

    def overtaken(url: str) -> Exception:
        other.put("big", b_value)  # B writes while A waits for its lost answer
        return ReadTimeoutError(endpoint_url=url, error="injected")

    lost_then_overtaken = Fault("answer lost, then overtaken", raises=overtaken, lands=True)
    with FailingAWS(dynamodb).fail(None, lost_then_overtaken, times=1, after=1):
        kv.put("big", a_value)

    assert kv.get("big", "bytes") == b_value
    assert len(chunk_items(dynamodb)) == 3
