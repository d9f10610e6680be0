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
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from arcturus.errors import StoreUnavailable, VersionConflict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Every call gives up in time for the function to answer 503 before its 10 s timeout (past it, API
# Gateway answers a bare 500): at most 3 attempts of 1 s each, with standard mode's jittered backoff
# between them (at most 1 + 2 s when throttled, tens of milliseconds otherwise), so about 3 s when a
# service stops answering. A request meets a failing store at most twice before it answers (the rate
# limiter's counter, which fails open, then the route's own call): about 6 s in the worst case.
# DynamoDB answers in milliseconds, so 1 s is a hung connection, not a slow answer.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 3},
    connect_timeout=1,
    read_timeout=1,
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


def transient(error: BaseException | None) -> bool:
    """Whether a client call's ``error`` (after the client's own retries) is one a later try may get
    past: throttling, a 5xx, or a transport failure (the exception classes botocore's retry mode
    treats as transient: timeouts, resets, refused connections, TLS failures)."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in _THROTTLING or status >= 500
    return isinstance(error, BotocoreConnectionError | HTTPClientError)


@contextmanager
def store_errors(operation: str) -> Iterator[None]:
    """Turn botocore's transport and service failures into domain exceptions.

    ConditionalCheckFailed becomes VersionConflict; ``transient`` failures become StoreUnavailable.
    Anything else is a bug or a misconfiguration and stays a ClientError so it is loud.
    """
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":
            raise VersionConflict(f"{operation}: condition failed") from error
        if transient(error):
            raise StoreUnavailable(f"{operation}: {code or error}") from error
        raise
    except (BotocoreConnectionError, HTTPClientError) as error:
        raise StoreUnavailable(f"{operation}: {error}") from error
