"""Cold requests: a new execution environment, from the interpreter's start to the first response, as
Lambda runs it, per route, beside a yardstick.

Each measurement starts ``python -m awslambdaric <handler>`` with the runtime's interpreter and
libraries (``LAMBDA_PYTHON``) on the build output (``BUILD_DIR``), under the local Runtime API that
``make run`` uses, and times one invocation from the process start to its result: interpreter, runtime
client, the function's init (tracing on, as deployed), and the first request with its DynamoDB reads,
over loopback to the embedded AWS (a moto server, slower per request than DynamoDB). The yardstick
(``bench/yardstick``) builds one DynamoDB client at init and does one GetItem per request; the floor
(``bench/floor``) does the same inside a Powertools resolver with Logger, Tracer and Metrics, on the
built layer: what a function built as ours are pays before its own code. The cache
is warmed first, as the schedule keeps it, so a cached route answers from the KV tier as a new
container of a running deployment does. ``COLD_RUNS`` rounds, each visiting every target once.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.container import CACHED_ROUTES, TEMPLATE, Route, Setup, check_answer, routes, sample_requests
from bench.functions import BUILD_DIR, LAMBDA_PYTHON
from local import ROOT
from local.console import Console
from local.datadir import DataDir
from local.demo_upstream import demo_sources_config, start_demo_upstream
from local.deployment import Deployment
from local.template import FunctionSpec, Template
from local.workers import FunctionPool, lambda_environment

COLD_RUNS = int(os.environ.get("COLD_RUNS", "15"))
YARDSTICK = "(yardstick)"
YARDSTICK_DIR = Path(__file__).parent / "yardstick"
FLOOR = "(floor)"
FLOOR_DIR = Path(__file__).parent / "floor"


@dataclasses.dataclass
class _Target:
    route: Route
    spec: FunctionSpec
    variables: dict[str, str]
    events: Iterator[dict[str, Any]]

    def cold_ms(self, log: Console) -> float:
        """One invocation on a new execution environment: milliseconds from its start to the result."""
        pool = FunctionPool(self.spec, self.variables, 1, log, str(LAMBDA_PYTHON))
        payload = json.dumps(next(self.events)).encode()
        try:
            started = time.perf_counter()
            outcome = pool.invoke(payload)
            elapsed = (time.perf_counter() - started) * 1000
        finally:
            pool.stop()
        if outcome.kind != "ok" or not outcome.cold:
            raise RuntimeError(f"{self.route.key}: {outcome.kind} {outcome.payload[:2000]!r}")
        check_answer(self.route, json.loads(outcome.body))
        return elapsed


def _targets(deployment: Deployment, found: list[Route], setup: Setup) -> list[_Target]:
    """The yardstick and the floor, then every route, with the function's local environment and sample
    requests (the floor answers the status route's)."""
    functions = deployment.template.functions()
    targets = [
        _Target(
            route,
            functions[route.function],
            deployment.pools[route.function].variables,
            sample_requests(route, setup),
        )
        for route in found
    ]
    status = next(target for target in targets if target.route.key == "GET /api/status")
    yardstick = dataclasses.replace(
        status.spec, code_dir=YARDSTICK_DIR, handler="app.handler", layer_dirs=(), name="bench-yardstick"
    )
    floor = dataclasses.replace(status.spec, code_dir=FLOOR_DIR, handler="app.handler", name="bench-floor")
    variables = deployment.variables(status.route.function)
    return [
        _Target(
            Route(YARDSTICK, "Yardstick", "yardstick"),
            yardstick,
            lambda_environment(yardstick, variables, deployment.aws.endpoint),
            iter(lambda: {}, None),
        ),
        _Target(
            dataclasses.replace(status.route, key=FLOOR, directory="floor"),
            floor,
            lambda_environment(floor, variables, deployment.aws.endpoint),
            sample_requests(status.route, setup),
        ),
        *targets,
    ]


def _setup(deployment: Deployment, found: list[Route]) -> Setup:
    from arcturus.kv import KVNamespace  # the layer, on the path under make bench

    table, namespace = deployment.kv_location()
    kv = KVNamespace(table, namespace, client=deployment.aws.client("dynamodb"))
    secrets = {deployment.resources.refs[name]: v for name, v in deployment.resources.secret_values.items()}
    warmup = next(route for route in found if route.rule is not None)
    arn = deployment.pools[warmup.function].variables.get("CACHE_WARMUP_SECRET_ARN", "")
    return Setup(kv, secrets.get(arn, ""))


def cold_requests() -> dict[str, list[float]]:
    """Every target's cold request times, ``COLD_RUNS`` rounds over all of them."""
    built = BUILD_DIR / "template.yaml"
    if not built.exists() or not LAMBDA_PYTHON.exists():
        raise RuntimeError(f"{built} or {LAMBDA_PYTHON} is missing: run make build-host venv-lambda")
    found = routes(Template(TEMPLATE))
    upstream, base_url = start_demo_upstream()
    template = Template(built, {"SourcesConfig": json.dumps(demo_sources_config(base_url))})
    env_vars = json.loads((ROOT / "local" / "env.json").read_text())
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as quiet:
        log = Console(quiet)
        deployment = Deployment(template, DataDir(tmp), log, python=str(LAMBDA_PYTHON), env_vars=env_vars)
        try:
            deployment.start()
            targets = _targets(deployment, found, _setup(deployment, found))
            schedule = next(t for t in targets if t.route.rule is not None)
            schedule.cold_ms(log)  # the cache warmed, as the schedule keeps it
            samples: dict[str, list[float]] = {target.route.key: [] for target in targets}
            for _ in range(COLD_RUNS):
                for target in targets:
                    samples[target.route.key].append(target.cold_ms(log))
        finally:
            deployment.stop()
            upstream.shutdown()
    return samples


@functools.cache
def run() -> list[dict[str, Any]]:
    samples = cold_requests()
    yardstick_ms = statistics.median(samples[YARDSTICK])
    floor_ms = statistics.median(samples[FLOOR])
    return [
        {
            "route": key,
            "cold request ms": round(statistics.median(times), 1),
            "min-max ms": f"{min(times):.0f}-{max(times):.0f}",
            "x yardstick": round(statistics.median(times) / yardstick_ms, 2),
            "x floor": round(statistics.median(times) / floor_ms, 2),
        }
        for key, times in samples.items()
    ]


def notes() -> list[str]:
    return [
        f"cold request: median of {COLD_RUNS} new execution environments per route, interleaved rounds;"
        f" {YARDSTICK} is one DynamoDB client at init and one GetItem per request; {FLOOR} the same in a"
        " Powertools resolver with Logger, Tracer and Metrics",
        f"target: the cached GET routes ({', '.join(CACHED_ROUTES)}) within 1.4x the yardstick",
    ]
