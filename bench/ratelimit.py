"""Rate limiting: DynamoDB writes per request when allowed, denied and flooded, and per public request.

The limiter rows drive ``RateLimiter.hit`` for ``POST /api/contact`` (5 per 60 s) inside one window; a
"container" is a limiter with its own flood shield. The route rows call the contact and chat functions
in-process (the limiter plus the route's own work). Every DynamoDB request is counted with a botocore
event hook on the client that does the work (in-process moto); WCU are estimated by ``DynamoMeter``.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from collections.abc import Callable
from typing import Any

import boto3

from arcturus.kv import KVNamespace
from arcturus.ratelimit import RateLimiter, Rule
from bench.aws import TABLE, handler_output_discarded, kv_table
from bench.meter import DynamoMeter, function_clients
from tests.conftest import Clock
from tests.unit.support import InjectedError, Mailbox, cold_start, http_event, invoke, load_function

CONTACT = Rule("contact", limit=5, window_s=60)  # as functions/contact declares it
IPS = (f"192.0.2.{n}" for n in itertools.count(1))
MESSAGE = {"name": "Ada Lovelace", "email": "ada@example.org", "message": "Benchmarking the contact form."}


def _row(scenario: str, requests: int, allowed: int, meter: DynamoMeter) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "requests": requests,
        "allowed": allowed,
        "DynamoDB writes": meter.writes,
        "writes/request": round(meter.writes / requests, 3),
        "reads": meter.total - meter.writes,
        "WCU": round(meter.wcu, 1),
    }


def _limiter_rows(client: Any) -> list[dict[str, Any]]:
    clock = Clock(1_700_000_040 + 5)  # early in a window: every burst below stays inside it
    kv = KVNamespace(TABLE, client=client, clock=clock)
    meter = DynamoMeter(client)
    rows = []

    def measure(scenario: str, containers: list[RateLimiter], requests: int, ip: str) -> None:
        meter.reset()
        hits = [containers[n % len(containers)].hit(CONTACT, ip) for n in range(requests)]
        rows.append(_row(scenario, requests, sum(hit.allowed for hit in hits), meter))

    ip = next(IPS)
    container = RateLimiter(kv, clock=clock)
    measure("allowed (1st-5th request of the window)", [container], 5, ip)
    measure("denied, same container (flood shield)", [container], 1, ip)
    measure(
        "denied, another container (first time it sees the client)", [RateLimiter(kv, clock=clock)], 1, ip
    )
    measure("flood: 1,000 requests, 1 container", [RateLimiter(kv, clock=clock)], 1000, next(IPS))
    measure(
        "flood: 1,000 requests, 4 containers round-robin",
        [RateLimiter(kv, clock=clock) for _ in range(4)],
        1000,
        next(IPS),
    )
    with InjectedError(client, "UpdateItem", code="ThrottlingException", status=400) as failing:
        measure("store throttled: fail open", [container], 10, next(IPS))
    # Each request tried its one UpdateItem; a throttled request stores nothing and consumes no capacity.
    rows[-1] |= {"DynamoDB writes": f"{failing.calls} attempted, 0 stored", "WCU": 0.0}
    return rows


def _route_rows() -> list[dict[str, Any]]:
    mailbox = Mailbox(boto3.client("sns"), boto3.client("sqs"), "contact-bench")
    os.environ["CONTACT_TOPIC_ARN"] = mailbox.topic_arn
    os.environ["CHAT_PROVIDER"] = "local"
    cold_start()
    contact, chat = load_function("contact"), load_function("chat")
    meter = DynamoMeter(*function_clients())  # the client the functions use
    rows = []

    def measure(scenario: str, call: Callable[[], dict[str, Any]], requests: int = 1) -> Any:
        meter.reset()
        answers = [call() for _ in range(requests)]
        rows.append(_row(scenario, requests, sum(a["statusCode"] < 400 for a in answers), meter))
        return answers[-1]

    ip = next(IPS)
    measure(
        "POST /api/contact, allowed",
        lambda: invoke(contact, http_event("POST", "/api/contact", body=MESSAGE)),
    )
    keyed = http_event("POST", "/api/contact", body=MESSAGE, headers={"Idempotency-Key": str(uuid.uuid4())})
    measure("POST /api/contact with Idempotency-Key, first", lambda: invoke(contact, keyed))
    measure("POST /api/contact with Idempotency-Key, retry", lambda: invoke(contact, keyed))
    flood = http_event("POST", "/api/contact", body=MESSAGE, source_ip=ip)
    measure("POST /api/contact, 100 from one IP", lambda: invoke(contact, flood), requests=100)
    first = measure(
        "POST /api/public/chat, new session",
        lambda: invoke(chat, http_event("POST", "/api/public/chat", body={"message": "hi"})),
    )
    session = {"message": "again", "sessionId": json.loads(first["body"])["sessionId"]}
    measure(
        "POST /api/public/chat, next message",
        lambda: invoke(chat, http_event("POST", "/api/public/chat", body=session, source_ip=next(IPS))),
    )
    return rows


def run() -> list[dict[str, Any]]:
    with kv_table() as client, handler_output_discarded():
        return _limiter_rows(client) + _route_rows()
