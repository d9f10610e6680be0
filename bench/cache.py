"""Cached routes: upstream calls, DynamoDB requests and handler time per request in each cache state.

The status, services and dashboard functions run in process on moto, against the demo upstream on
loopback. Each state is prepared, then one request is measured, ``REPEAT`` times (the median time is
shown): MISS (empty KV, new container), HIT from memory (the same container again), HIT from KV (a new
container, a fresh value another one stored), STALE (a new container, a value past its freshness).
"Request" columns count what happened before the handler returned; "after" columns the post-response
refresh (``wait_until``), run to completion before the next sample. DynamoDB requests are counted by
``DynamoMeter`` on the functions' client (by operation; a dashboard miss fetches its widgets at once);
the roles document is kept warm so only the cache's requests show. The last row is one warmup run (the
EventBridge schedule's event).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from arcturus import background
from arcturus.cache import FRESH_FOR_S, container_cache
from arcturus.kv import KVNamespace
from arcturus.roles import ROLES_KEY, check_stored, roles_store
from bench.aws import TABLE, handler_output_discarded, kv_table
from bench.meter import DynamoMeter, function_clients
from local.demo_upstream import DemoServer, demo_sources_config, start_demo_upstream
from tests.unit.support import (
    ADMIN,
    FakeContext,
    claims_for,
    http_event,
    invoke,
    load_function,
    roles_document,
)

REPEAT = 15
ROUTES = [
    ("GET /api/status", "status", "/api/status", ["cache:services:all"]),
    ("GET /api/services", "services", "/api/services", ["cache:services:all"]),
    (
        "GET /api/dashboard (2 widgets)",
        "dashboard",
        "/api/dashboard",
        ["cache:dashboard:system-health", "cache:dashboard:storage"],
    ),
]
STATES = ["MISS", "HIT (memory)", "HIT (KV)", "STALE"]


class _Bench:
    def __init__(self, setup: KVNamespace, server: DemoServer, meter: DynamoMeter) -> None:
        self.setup, self.server, self.meter = setup, server, meter

    def upstream_calls(self) -> int:
        return sum(self.server.upstream.calls.values())

    def new_container(self, directory: str) -> Any:
        container_cache.cache_clear()
        module = load_function(directory)
        roles_store().document()  # warm: only the cache's requests are measured
        return module

    def prepare(self, state: str, directory: str, path: str, keys: list[str]) -> Callable[[], dict[str, Any]]:
        """Bring the cache into ``state`` (uncounted) and return the request to measure."""

        def request() -> dict[str, Any]:
            return invoke(module, http_event("GET", path, claims=claims_for(ADMIN)))

        for key in keys:
            self.setup.delete(key)
        if state == "MISS":
            module = self.new_container(directory)
        elif state == "HIT (memory)":
            module = self.new_container(directory)
            request()
        elif state == "HIT (KV)":
            self.new_container(directory)
            invoke(load_function(directory), http_event("GET", path, claims=claims_for(ADMIN)))
            module = self.new_container(directory)
        else:
            module = self.new_container(directory)
            kind = keys[0].split(":")[1]
            old = time.time() - FRESH_FOR_S[kind] - 10
            for key in keys:
                self.setup.put(key, json.dumps({"fetchedAt": old, "data": {"old": True}}))
        background.drain(30)
        return request

    def measure(self, route: str, directory: str, path: str, keys: list[str], state: str) -> dict[str, Any]:
        times: list[float] = []
        row: dict[str, Any] = {}
        for _ in range(REPEAT):
            request = self.prepare(state, directory, path, keys)
            self.meter.reset()
            upstream = self.upstream_calls()
            started = time.perf_counter()
            response = request()
            times.append((time.perf_counter() - started) * 1000)
            in_request = Counter(self.meter.requests)
            upstream_in_request = self.upstream_calls() - upstream
            background.drain(30)
            after = Counter(self.meter.requests) - in_request
            row = {
                "route": route,
                "state": state,
                "X-Cache": response["headers"].get("X-Cache"),
                "upstream (request)": upstream_in_request,
                "DynamoDB (request)": _ops(in_request),
                "handler ms (median)": 0.0,
                "upstream (after)": self.upstream_calls() - upstream - upstream_in_request,
                "DynamoDB (after)": _ops(after),
            }
        row["handler ms (median)"] = round(statistics.median(times), 2)
        return row

    def warmup(self) -> dict[str, Any]:
        module = self.new_container("cache_warmup")
        self.meter.reset()
        upstream = self.upstream_calls()
        started = time.perf_counter()
        result = module.handler(
            {"source": "aws.events", "detail-type": "Scheduled Event"}, FakeContext("warmup")
        )
        return {
            "route": "warmup (schedule)",
            "state": f"{len(result['warmed'])} warmed, {len(result['failed'])} failed",
            "X-Cache": "",
            "upstream (request)": self.upstream_calls() - upstream,
            "DynamoDB (request)": _ops(self.meter.requests),
            "handler ms (median)": round((time.perf_counter() - started) * 1000, 2),
            "upstream (after)": 0,
            "DynamoDB (after)": "",
        }


def _ops(requests: Counter[str]) -> str:
    return " ".join(f"{op}x{n}" for op, n in sorted(requests.items()) if n) or "none"


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    server, base_url = start_demo_upstream()
    os.environ["SOURCES_CONFIG"] = json.dumps(demo_sources_config(base_url))
    os.environ["CACHE_WARMUP_SECRET_ARN"] = "arn:unused-by-the-schedule"  # noqa: S105 - not a secret
    try:
        with kv_table() as setup_client, handler_output_discarded():
            setup = KVNamespace(TABLE, client=setup_client)
            stored = check_stored(json.dumps(roles_document()))  # as the store writes it: sealed
            setup.put(ROLES_KEY, stored.text, metadata=stored.metadata)
            roles_store.cache_clear()
            bench = _Bench(setup, server, DynamoMeter(*function_clients()))  # the client the functions use
            for route, directory, path, keys in ROUTES:
                rows += [bench.measure(route, directory, path, keys, state) for state in STATES]
            rows.append(bench.warmup())
    finally:
        server.shutdown()
        os.environ.pop("SOURCES_CONFIG", None)
        os.environ.pop("CACHE_WARMUP_SECRET_ARN", None)
    return rows
