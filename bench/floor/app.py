"""The floor for a cold request of a function built as ours are: what Powertools and a DynamoDB read cost
before any of our own code.

An HTTP API resolver with one route, the Logger (correlation id from the request), the Tracer (on, as
deployed) and Metrics (one data point per request) around the handler, one DynamoDB client built at init
and one GetItem per request: our cached GET routes minus validation, the roles document and the cache.
It runs on the built layer (for Powertools), with the status function's environment and requests.
"""

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths

logger, tracer, metrics = Logger(), Tracer(), Metrics()
app = APIGatewayHttpResolver()
dynamodb = boto3.client("dynamodb")
TABLE = os.environ["KV_TABLE_NAME"]


@app.get("/api/status")
def status() -> dict[str, bool]:
    found = "Item" in dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "floor"}, "sk": {"S": "-"}})
    metrics.add_metric(name="FloorRead", unit="Count", value=1)
    return {"ok": found}


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
