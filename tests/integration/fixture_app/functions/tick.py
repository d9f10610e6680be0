"""Count scheduled events per source in the table; GET /ticks shows the counts and the last of each."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3

_table = boto3.client("dynamodb")
_KEY = {"pk": {"S": "fixture#ticks"}, "sk": {"S": "ticks"}}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    table = os.environ["KV_TABLE_NAME"]
    if "requestContext" in event:
        item = _table.get_item(TableName=table, Key=_KEY, ConsistentRead=True).get("Item", {})
        counts = {name: int(value["N"]) for name, value in item.items() if "N" in value}
        last = {name[5:]: json.loads(value["S"]) for name, value in item.items() if name.startswith("last_")}
        return {"counts": counts, "last": last}
    source = str(event.get("source", "unknown")).replace(".", "_").replace("-", "_")
    _table.update_item(
        TableName=table,
        Key=_KEY,
        UpdateExpression="ADD #n :one SET #last = :last",
        ExpressionAttributeNames={"#n": source, "#last": f"last_{source}"},
        ExpressionAttributeValues={":one": {"N": "1"}, ":last": {"S": json.dumps(event)}},
    )
    return {"ok": True}
