"""The yardstick for handler time and init: a bare Powertools HTTP API resolver with one trivial route.

No validation, logging, tracing or metrics: what any Powertools function costs before its own work. The
benchmark imports it the way it imports a function (``app`` from this directory) and calls ``handler``.
"""

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

app = APIGatewayHttpResolver()


@app.get("/ping")
def ping() -> dict[str, bool]:
    return {"ok": True}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
