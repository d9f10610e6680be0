"""Routes on new Lambda execution environments: ``python -m bench.container <result.json> "<route>"...``.

Each route gets a new process that has never imported arcturus, so nothing another route cached (AWS
clients, the roles store, the parameters and secrets caches, the rate limiter's shield) leaks into it:
a new container. In it, in-process moto holds the template's resources, created by ``local.provision``
as the local runtime creates them (the KV table, the warmup secret, the sources parameter pointing at
the demo upstream on loopback, the contact topic), and the KV namespace holds the local runtime's seed
(the roles document). The environment is the function's, from template.yaml, as Lambda sets it, except
that tracing is off (no X-Ray daemon to send to) and the chat answers with the local echo model (moto
has no Bedrock Converse).

Then the function is imported (init), invoked once (cold), ``SETTLE`` times more, and timed for
``WARM_S`` seconds (``WARM_MIN`` to ``WARM_MAX`` requests), each request alternating with the bare
resolver (``bench/bare``) so both see the same machine. Requests are the sample events under events/
(body, query, caller; a member saves the profile, as an administrator is not rate limited), each from
its own client IP, as from many visitors, so every limited request pays its counter. DynamoDB requests
are counted by ``DynamoMeter`` on the function's client, post-response work included (Lambda bills it).
Handler output goes to stdout, which the caller discards, as Lambda ships it to its log pipe.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from moto import mock_aws

from bench.meter import DynamoMeter, function_clients
from local import ROOT
from local.demo_upstream import demo_sources_config, start_demo_upstream
from local.deployment import seed
from local.intrinsics import REGION
from local.provision import provision
from local.template import FunctionSpec, Template
from local.workers import lambda_environment

TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
SETTLE = 3
WARM_S = 1.0
WARM_MIN = 30
WARM_MAX = 300
DRAIN_S = 30.0
FIRST_CLIENT_IP = int(ipaddress.IPv4Address("10.0.0.1"))
CACHED_ROUTES = ("GET /api/auth/me", "GET /api/status", "GET /api/services", "GET /api/dashboard")
"""The routes a warm container answers from memory: what the warm and cold targets are about."""
TRACING = "BENCH_TRACING"
"""Set (to anything) in the environment: measure with tracing on, as ``Tracing: Active`` deploys it."""


@dataclass(frozen=True)
class Route:
    """An HTTP route or a schedule of a function, as template.yaml declares it."""

    key: str
    """``GET /api/auth/me``, or ``schedule rate(5 minutes)``."""
    function: str
    directory: str
    method: str | None = None
    path: str | None = None
    signed_in: bool = False
    rule: str | None = None


def routes(template: Template) -> list[Route]:
    """Every route of the template, then every enabled schedule, in template order."""
    functions = template.functions()
    found = [
        Route(
            f"{route.method} {route.path}",
            route.function,
            functions[route.function].code_dir.name,
            method=route.method,
            path=route.path,
            signed_in=route.authorizer is not None,
        )
        for route in template.routes()
    ]
    found += [
        Route(
            f"schedule {schedule.expression}",
            schedule.function,
            functions[schedule.function].code_dir.name,
            rule=schedule.rule_name,
        )
        for schedule in template.schedules()
        if schedule.enabled
    ]
    return found


class _InProcessAWS:
    """The in-process moto account, in the shape ``local.provision`` creates resources on."""

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)


@dataclass(frozen=True)
class Setup:
    """What preparing a request needs: the KV namespace on a client of its own (the meter sees only the
    function's requests) and the warmup secret's value."""

    kv: Any
    warmup_secret: str


def _samples() -> dict[str, dict[str, Any]]:
    """The sample events under events/, by route key (``GET /api/x``) or schedule rule name."""
    samples: dict[str, dict[str, Any]] = {}
    for path in sorted(EVENTS.glob("*.json")):
        event = json.loads(path.read_text())
        if "routeKey" in event:
            samples[event["routeKey"]] = event
        for resource in event.get("resources", []):
            samples[resource.rpartition(":rule/")[2]] = event
    return samples


def sample_requests(route: Route, setup: Setup) -> Iterator[dict[str, Any]]:
    """Endless requests for ``route``: its sample event's content (the samples sign in as the
    administrator), with what a sample cannot hold filled in (the current ETag for a roles PUT, the
    warmup secret)."""
    from arcturus.roles import RolesStore
    from tests.unit.support import ADMIN, MEMBER, claims_for, http_event

    sample = _samples().get(route.rule or route.key)
    if route.rule is not None:
        if sample is None:
            raise LookupError(f"no sample event under events/ for the schedule {route.rule}")
        while True:
            yield json.loads(json.dumps(sample))
    sample = sample or {}
    body = json.loads(sample["body"]) if sample.get("body") else None
    claims = sample.get("requestContext", {}).get("authorizer", {}).get("jwt", {}).get("claims", {})
    email = claims.get("email", ADMIN)
    if route.key == "POST /api/auth/profile":
        email = MEMBER  # most callers: an administrator's save skips the rate limit and its write
    for n in itertools.count():
        headers = {}
        if route.key == "PUT /api/auth/roles":
            document, revision = RolesStore(setup.kv).read_with_version()
            body, headers["If-Match"] = document, f'"{revision}"'
        if route.key == "POST /api/cache/warmup":
            headers["Authorization"] = f"Bearer {setup.warmup_secret}"
        yield http_event(
            str(route.method),
            str(route.path),
            body=body,
            query=sample.get("queryStringParameters"),
            headers=headers,
            claims=claims_for(email) if route.signed_in else None,
            source_ip=str(ipaddress.IPv4Address(FIRST_CLIENT_IP + n)),
        )


def check_answer(route: Route, result: dict[str, Any]) -> None:
    """Only successful requests are worth measuring: stop at the first that is not."""
    status = result.get("statusCode", 200)
    if not 200 <= status < 300 or result.get("failed"):
        raise RuntimeError(f"{route.key} answered {status}: {result.get('body', result)}")


class _Container:
    def __init__(self, route: Route, module: ModuleType, setup: Setup) -> None:
        from bench.bare import app as bare
        from tests.unit.support import http_event

        self.route, self.module, self.bare = route, module, bare
        self.requests = sample_requests(route, setup)
        self.bare_request = lambda: http_event("GET", "/ping")

    def invoke(self, handler: Callable[..., dict[str, Any]], event: dict[str, Any]) -> tuple[float, Any]:
        """(milliseconds, result) of one invocation; the event and context are built beforehand."""
        from tests.unit.support import FakeContext

        context = FakeContext(self.route.function)
        if os.environ.get(TRACING):  # a new trace per invocation, as Lambda sets it before the handler runs
            os.environ["_X_AMZN_TRACE_ID"] = _trace_id()
        started = time.perf_counter()
        result = handler(event, context)
        return (time.perf_counter() - started) * 1000, result

    def request(self) -> float:
        """One request to the function, its post-response work waited for (outside the time)."""
        from arcturus import background

        elapsed, result = self.invoke(self.module.handler, next(self.requests))
        background.drain(DRAIN_S)
        check_answer(self.route, result)
        return elapsed

    def warm(self) -> tuple[list[float], list[float]]:
        """Handler times of the function and of the bare resolver, alternating."""
        own: list[float] = []
        bare: list[float] = []
        deadline = time.monotonic() + WARM_S
        while len(own) < WARM_MIN or (len(own) < WARM_MAX and time.monotonic() < deadline):
            bare.append(self.invoke(self.bare.handler, self.bare_request())[0])
            own.append(self.request())
        return own, bare


def _usage(meter: DynamoMeter, requests: int = 1) -> dict[str, Any]:
    """DynamoDB requests, by operation, and capacity units per request."""
    return {
        "requests": round(meter.total / requests, 3),
        "operations": {op: round(n / requests, 3) for op, n in sorted(meter.requests.items())},
        "rcu": round(meter.rcu / requests, 3),
        "wcu": round(meter.wcu / requests, 3),
    }


def lambda_variables(template: Template, spec: FunctionSpec, refs: dict[str, Any]) -> dict[str, str]:
    """The environment Lambda gives ``spec`` (the local runtime's rendering of it, without its local
    endpoint), its template variables resolved with ``refs`` for the resources' ``!Ref`` values."""
    variables = template.resolver(refs, {}).resolve(spec.environment)
    environment = lambda_environment(spec, variables, "")
    for local_only in ("AWS_ENDPOINT_URL", "ARCTURUS_LOCAL"):
        environment.pop(local_only, None)
    return environment


def _trace_id() -> str:
    """A new sampled X-Ray trace header, as Lambda gives each invocation under ``Tracing: Active``."""
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=1"


def _environment(template: Template, route: Route, refs: dict[str, Any]) -> dict[str, str]:
    """The function's Lambda environment with the local chat model, and no tracing unless ``TRACING``
    is set: then every request is sampled, its segments sent over UDP to the X-Ray daemon's address
    (nobody listens: the SDK's work is all on this side)."""
    environment = lambda_variables(template, template.functions()[route.function], refs)
    if os.environ.get(TRACING):
        environment["_X_AMZN_TRACE_ID"] = _trace_id()
    else:
        environment["POWERTOOLS_TRACE_DISABLED"] = "1"
    if "CHAT_PROVIDER" in environment:
        environment["CHAT_PROVIDER"] = "local"
    return environment


def measure_all(keys: list[str]) -> list[dict[str, Any]]:
    """Measure each route of ``keys`` on a new container, one after the other.

    The AWS resources are created once, here; each container is a process forked from this one (which
    never imports arcturus), so it starts with its own copy of them and of nothing else.
    """
    by_key = {route.key: route for route in routes(Template(TEMPLATE))}
    with socket.socket() as probe:  # a free port for each container's demo upstream
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sources = demo_sources_config(f"http://127.0.0.1:{port}")
    template = Template(TEMPLATE, {"SourcesConfig": json.dumps(sources)})
    with mock_aws(), tempfile.TemporaryDirectory() as tmp:
        resources = provision(template, _InProcessAWS(), Path(tmp) / "secrets.json")
        return [_in_new_container(template, by_key[key], resources, port) for key in keys]


def _in_new_container(template: Template, route: Route, resources: Any, port: int) -> dict[str, Any]:
    forked = multiprocessing.get_context("fork")
    receive, send = forked.Pipe(duplex=False)
    process = forked.Process(target=_container, args=(template, route, resources, port, send))
    process.start()
    send.close()
    try:
        outcome = receive.recv()
    except EOFError:
        outcome = {"error": f"the container for {route.key} died (exit code {process.exitcode})"}
    process.join()
    if "error" in outcome:
        raise RuntimeError(f"{route.key}: {outcome['error']}")
    return dict(outcome)


def _container(template: Template, route: Route, resources: Any, port: int, send: Any) -> None:
    """The forked container: the function's environment, the seed, the demo upstream; then measure."""
    try:
        os.environ.update(_environment(template, route, resources.refs))
        from arcturus.kv import KVNamespace

        kv = KVNamespace.from_env(client=boto3.client("dynamodb", region_name=REGION))
        seed(kv, lambda _: None)
        secrets = {resources.refs[name]: value for name, value in resources.secret_values.items()}
        setup = Setup(kv, secrets.get(os.environ.get("CACHE_WARMUP_SECRET_ARN", ""), ""))
        start_demo_upstream(port)
        send.send(_measure(route, setup))
    except Exception:  # the parent raises it, with the route's name
        send.send({"error": traceback.format_exc()})


def _measure(route: Route, setup: Setup) -> dict[str, Any]:
    from arcturus import background
    from tests.unit.support import load_function

    meter = DynamoMeter(*function_clients())  # the client the function will use
    module = load_function(route.directory)
    background.drain(DRAIN_S)
    init = _usage(meter)
    container = _Container(route, module, setup)
    cold_ms = container.request()
    cold = _usage(meter)
    for _ in range(SETTLE):
        container.request()
    meter.reset()
    own, bare = container.warm()
    return {
        "route": route.key,
        "function": route.function,
        "directory": route.directory,
        "init": init,
        "cold": cold | {"ms": round(cold_ms, 3)},
        "warm": _usage(meter, len(own))
        | {
            "samples": len(own),
            "ms": round(statistics.median(own), 4),
            "p90Ms": round(statistics.quantiles(own, n=10)[-1], 4),
            "bareMs": round(statistics.median(bare), 4),
        },
    }


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(measure_all(sys.argv[2:])))
