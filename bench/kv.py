"""KV operations: DynamoDB requests and capacity units per operation, small and large values."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from arcturus.kv import KVNamespace
from bench.aws import TABLE, kv_table
from bench.meter import DynamoMeter

SMALL = json.dumps({"service": "grafana", "status": "up", "latencyMs": 42})
MEDIUM_JSON = json.dumps([{"id": i, "name": f"container-{i}", "state": "running"} for i in range(4000)])
LARGE_RANDOM = os.urandom(5 * 1024 * 1024)


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with kv_table() as client:
        kv = KVNamespace(TABLE, client=client)
        meter = DynamoMeter(client)
        for i in range(1000):
            kv.put(f"cache:services:{i:04d}", SMALL)
        version = kv.put_if_version("data:doc", SMALL, None)

        def measure(name: str, operation: Callable[[], Any]) -> None:
            meter.reset()
            operation()
            rows.append(
                {
                    "operation": name,
                    "requests": meter.total,
                    "by type": dict(meter.requests),
                    "RCU": round(meter.rcu, 1),
                    "WCU": round(meter.wcu, 1),
                }
            )

        measure(f"put small ({len(SMALL)} B)", lambda: kv.put("small", SMALL))
        measure("get small", lambda: kv.get("small"))
        measure(f"put {len(MEDIUM_JSON) // 1024} KB JSON (zlib)", lambda: kv.put("medium", MEDIUM_JSON))
        measure("get that JSON", lambda: kv.get("medium", "json"))
        measure("put 5 MiB random (chunked)", lambda: kv.put("large", LARGE_RANDOM))
        measure("get 5 MiB random", lambda: kv.get("large", "bytes"))
        measure("overwrite 5 MiB with small", lambda: kv.put("large", SMALL))
        measure("bulk get 100 small", lambda: kv.get([f"cache:services:{i:04d}" for i in range(100)]))
        measure("list 1000 keys (one page)", lambda: kv.list(prefix="cache:", limit=1000))
        measure("list 10 keys", lambda: kv.list(prefix="cache:", limit=10))
        measure("increment counter", lambda: kv.increment("rate:bench", expiration_ttl=60))
        measure("get_with_version (consistent)", lambda: kv.get_with_version("data:doc"))
        measure("put_if_version", lambda: kv.put_if_version("data:doc", SMALL, version))
        measure("delete", lambda: kv.delete("small"))
    return rows
