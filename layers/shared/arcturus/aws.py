"""AWS clients, built once per container and shared by every module.

boto3 honours ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_<SERVICE>``), which is how the local runtime
and ``sam local`` point the handlers at the embedded AWS endpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from arcturus.container import per_container
from arcturus.errors import StoreUnavailable, VersionConflict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "CLIENT_CONFIG",
    "LIMITER",
    "PURPOSE_CONFIG",
    "SERVICE_CONFIG",
    "client",
    "dynamodb",
    "store_errors",
    "transient",
]

# Every call gives up in time for the function to answer 503 before its 10 s timeout (past it, API
# Gateway answers a bare 500): at most 3 attempts of 1 s each, with standard mode's jittered backoff
# between them (up to 1 + 2 s), so 3 to 6 s when a service stops answering. A request meets a failing
# store at most twice before it answers: the rate limiter's counter, which fails open and has its own
# shorter budget (``PURPOSE_CONFIG``, at most ~2 s), then the route's own call: under 9 s in the worst
# case (measured: about 5 s). DynamoDB answers in milliseconds, so 1 s is a hung connection.
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

LIMITER: Final = "limiter"
# The rate limiter fails open, so its counter must not spend the request's time budget: two attempts of
# 0.5 s (at most ~2 s with the backoff between them) leave the route's own calls their ~6 s inside the
# function's 10 s. A throttled counter that is not retried further is a fail-open, counted as such.
PURPOSE_CONFIG: dict[str, Config] = {
    LIMITER: Config(
        connect_timeout=0.5, read_timeout=0.5, retries={"mode": "standard", "total_max_attempts": 2}
    ),
}

# boto3 sessions are not thread-safe while they build clients; one session serves every client.
_build_lock = threading.Lock()


@per_container
def _session() -> boto3.session.Session:
    return boto3.session.Session()


@per_container
def client(service: str, purpose: str | None = None) -> Any:
    """Return the container's client for ``service`` (built on first use, then reused); ``purpose``
    (``LIMITER``) selects a client with its own timeouts and retries."""
    config = CLIENT_CONFIG
    for extra in (SERVICE_CONFIG.get(service), PURPOSE_CONFIG.get(purpose) if purpose else None):
        if extra is not None:
            config = config.merge(extra)
    with _build_lock:
        return _session().client(service, config=config)


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
