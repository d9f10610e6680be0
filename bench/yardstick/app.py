"""The yardstick for a cold request: what any function that reads DynamoDB pays before its own work.

One DynamoDB client built at init, one GetItem per request on the KV table (any key: a miss is the same
round trip), a JSON answer. No layer, no Powertools: only what the Lambda runtime ships.
"""

import json
import os
from typing import Any

import boto3

TABLE = os.environ["KV_TABLE_NAME"]
dynamodb = boto3.client("dynamodb")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    found = "Item" in dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "yardstick"}, "sk": {"S": "-"}})
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"ok": found}),
    }
