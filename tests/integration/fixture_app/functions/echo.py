"""Echo: the event back, with this worker's pid and a module-global call count (warm reuse shows in it)."""

from __future__ import annotations

import base64
import importlib.util
import itertools
import os
from typing import Any

_calls = itertools.count(1)
_ENV = (
    *("KV_TABLE_NAME", "GREETING", "SECRET_ARN", "TOPIC_ARN", "TABLE_ARN", "UNDECLARED"),
    *("AWS_ENDPOINT_URL", "ARCTURUS_LOCAL", "AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME"),
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
)

_SHAPES: dict[str, Any] = {
    "string": "hello",
    "dict": {"hello": "world"},
    "invalid": {"statusCode": "teapot"},
    "full": {
        "statusCode": 201,
        "headers": {"X-One": "1", "Access-Control-Allow-Origin": "*"},
        "multiValueHeaders": {"X-Many": ["a", "b"]},
        "cookies": ["a=1", "b=2; Path=/"],
        "body": base64.b64encode(b"\x00\x01binary").decode(),
        "isBase64Encoded": True,
    },
}


def handler(event: dict[str, Any], context: Any) -> Any:
    count = next(_calls)
    kind = (event.get("pathParameters") or {}).get("kind")
    if kind == "raise":
        raise RuntimeError("the handler failed on purpose")
    if kind is not None:
        return _SHAPES[kind]
    if "summary" in (event.get("queryStringParameters") or {}):
        return {"bodyLength": len(event.get("body") or "")}
    return {
        "pid": os.getpid(),
        "count": count,
        "event": event,
        "env": {name: os.environ.get(name) for name in _ENV},
        "layer": importlib.util.find_spec("arcturus") is not None,
        "context": {
            "function_name": context.function_name,
            "memory_limit_in_mb": str(context.memory_limit_in_mb),
            "remaining_ms": context.get_remaining_time_in_millis(),
            "aws_request_id": context.aws_request_id,
        },
    }
