"""Count DynamoDB requests and estimate the capacity units they consume.

moto answers ReturnConsumedCapacity with fixed numbers, so units are computed here from the item sizes
seen on the wire, by DynamoDB's rules: a write costs 1 WCU per started KB of the larger of the old and
new item; a read 1 RCU per started 4 KB (half for eventually consistent reads), a Query rounding the
sum of the items it returned, a batch rounding per item. Projected Query items under-count slightly.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it: attribute names plus values."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        (kind, data), = value.items()
        if kind == "S":
            size += len(data.encode())
        elif kind == "B":
            size += len(data)
        elif kind == "N":
            size += math.ceil(len(data.lstrip("-").replace(".", "")) / 2) + 1
        else:
            size += len(str(data))
    return size


class DynamoMeter:
    """Attach to a boto3 DynamoDB client; read ``requests``, ``rcu`` and ``wcu``; ``reset()`` between runs."""

    def __init__(self, client: Any) -> None:
        self.requests: Counter[str] = Counter()
        self.rcu = 0.0
        self.wcu = 0.0
        self._params: dict[str, Any] = {}
        client.meta.events.register("before-parameter-build.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def reset(self) -> None:
        self.requests.clear()
        self.rcu = self.wcu = 0.0

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.requests.items() if op in WRITES)

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.requests[model.name] += 1
        self._params = params

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        op, params = model.name, self._params
        if op == "GetItem" and "Item" in parsed:
            self.rcu += _read_units(item_size(parsed["Item"]), params.get("ConsistentRead", False))
        elif op == "Query":
            total = sum(item_size(item) for item in parsed.get("Items", []))
            self.rcu += max(0.5, _read_units(total, params.get("ConsistentRead", False)))
        elif op == "BatchGetItem":
            for table, items in parsed.get("Responses", {}).items():
                consistent = params["RequestItems"][table].get("ConsistentRead", False)
                self.rcu += sum(_read_units(item_size(item), consistent) for item in items)
        elif op == "PutItem":
            old = item_size(parsed.get("Attributes", {}))
            self.wcu += math.ceil(max(item_size(params["Item"]), old, 1) / 1024)
        elif op in {"UpdateItem", "DeleteItem"}:
            self.wcu += max(1, math.ceil(item_size(parsed.get("Attributes", {})) / 1024))
        elif op == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                for request in requests:
                    item = request.get("PutRequest", {}).get("Item", {})
                    self.wcu += max(1, math.ceil(item_size(item) / 1024))


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units if consistent else units / 2)
