"""Count DynamoDB requests and estimate the capacity units they consume.

moto answers ReturnConsumedCapacity with fixed numbers, so units are computed here from the item sizes
seen on the wire, by DynamoDB's rules: a write costs 1 WCU per started KB of the larger of the old and
new item; a read 1 RCU per started 4 KB (half for eventually consistent reads), a Query rounding the
sum of the items it returned, a batch rounding per item. A read of a key that holds no item still costs
the minimum unit. Projected Query items under-count slightly.
Thread-safe: a handler's concurrent requests (a dashboard fetching widgets at once, post-response work)
each keep their parameters in botocore's per-request context.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from typing import Any

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it: attribute names plus values."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        ((kind, data),) = value.items()
        if kind == "S":
            size += len(data.encode())
        elif kind == "B":
            size += len(data)
        elif kind == "N":
            size += math.ceil(len(data.lstrip("-").replace(".", "")) / 2) + 1
        else:
            size += len(str(data))
    return size


def function_clients() -> tuple[Any, ...]:
    """The DynamoDB clients a function uses: the container's, and the rate limiter's own."""
    from arcturus import aws

    return aws.dynamodb(), aws.client("dynamodb", aws.LIMITER)


class DynamoMeter:
    """Attach to boto3 DynamoDB clients; read ``requests``, ``rcu`` and ``wcu``; ``reset()`` between runs."""

    def __init__(self, *clients: Any) -> None:
        self.requests: Counter[str] = Counter()
        self.rcu = 0.0
        self.wcu = 0.0
        self._lock = threading.Lock()
        for client in clients:
            client.meta.events.register("before-parameter-build.dynamodb", self._before)
            client.meta.events.register("after-call.dynamodb", self._after)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.rcu = self.wcu = 0.0

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.requests.items() if op in WRITES)

    def _before(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = params
        with self._lock:
            self.requests[model.name] += 1

    def _after(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        rcu, wcu = _units(model.name, context["bench_params"], parsed)
        with self._lock:
            self.rcu += rcu
            self.wcu += wcu


def _units(op: str, params: dict[str, Any], parsed: dict[str, Any]) -> tuple[float, float]:
    """The (RCU, WCU) one answered request consumed."""
    rcu = wcu = 0.0
    if op == "GetItem":
        rcu = _read_units(item_size(parsed.get("Item", {})), params.get("ConsistentRead", False))
    elif op == "Query":
        total = sum(item_size(item) for item in parsed.get("Items", []))
        rcu = max(0.5, _read_units(total, params.get("ConsistentRead", False)))
    elif op == "BatchGetItem":
        for table, request in params["RequestItems"].items():
            consistent = request.get("ConsistentRead", False)
            items = parsed.get("Responses", {}).get(table, [])
            unprocessed = len(parsed.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []))
            missing = len(request["Keys"]) - unprocessed - len(items)
            rcu += sum(_read_units(item_size(item), consistent) for item in [*items, *[{}] * missing])
    elif op in {"PutItem", "UpdateItem", "DeleteItem"}:
        # Billed on the larger of the item before and after; an update's values approximate "after".
        after = params.get("Item") or params.get("ExpressionAttributeValues") or {}
        before = item_size(parsed.get("Attributes", {}))
        wcu = math.ceil(max(item_size(after) if op != "DeleteItem" else 0, before, 1) / 1024)
    elif op == "BatchWriteItem":
        for requests in params["RequestItems"].values():
            for request in requests:
                item = request.get("PutRequest", {}).get("Item", {})
                wcu += max(1, math.ceil(item_size(item) / 1024))
    return rcu, wcu


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units if consistent else units / 2)
