"""AWS clients, built once per container and shared by every module.

boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``), which is how the local runtime
and ``sam local`` point the handlers at the embedded AWS endpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from arcturus.errors import StoreUnavailable, VersionConflict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Standard retry mode backs off exponentially with jitter on throttling and 5xx; short timeouts keep a
# stuck connection from eating the function's whole timeout.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=2,
    read_timeout=5,
    tcp_keepalive=True,
    max_pool_connections=32,
)

# A model sends nothing until its whole answer is written, so the read timeout is the generation time;
# a retry would pay for a second answer and run past API Gateway's 30 s, so the caller retries instead.
SERVICE_CONFIG: dict[str, Config] = {
    "bedrock-runtime": Config(read_timeout=25, retries={"mode": "standard", "total_max_attempts": 1}),
}

# boto3's default session is not thread-safe while it builds clients.
_build_lock = threading.Lock()


@cache
def client(service: str) -> Any:
    """Return the container's client for ``service`` (built on first use, then reused)."""
    with _build_lock:
        config = CLIENT_CONFIG.merge(SERVICE_CONFIG[service]) if service in SERVICE_CONFIG else CLIENT_CONFIG
        return boto3.session.Session().client(service, config=config)


def dynamodb() -> DynamoDBClient:
    """The container's DynamoDB client."""
    result: DynamoDBClient = client("dynamodb")
    return result


_THROTTLING = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "TransactionConflictException",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


@contextmanager
def store_errors(operation: str) -> Iterator[None]:
    """Turn botocore's transport and service failures into domain exceptions.

    ConditionalCheckFailed becomes VersionConflict; throttling, 5xx and connection failures (after the
    client's own retries) become StoreUnavailable. Anything else is a bug or a misconfiguration and
    stays a ClientError so it is loud.
    """
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "ConditionalCheckFailedException":
            raise VersionConflict(f"{operation}: condition failed") from error
        if code in _THROTTLING or status >= 500:
            raise StoreUnavailable(f"{operation}: {code or status}") from error
        raise
    except (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError) as error:
        raise StoreUnavailable(f"{operation}: {error}") from error
