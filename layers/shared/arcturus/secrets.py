"""Secrets from Secrets Manager, cached per container, and bearer tokens checked against them.

A warm container asks Secrets Manager at most once per ``SECRET_MAX_AGE_S`` (Powertools parameters
cache), so a rotated secret is honoured within that time. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Final

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from arcturus import aws
from arcturus.container import per_container
from arcturus.errors import NotSignedIn, UpstreamBusy
from arcturus.observability import logger

__all__ = ["SECRET_MAX_AGE_S", "bearer_matches", "bearer_token", "require_bearer", "secret_value"]

SECRET_MAX_AGE_S: Final = 300


@per_container
def _provider() -> SecretsProvider:
    return SecretsProvider(boto3_client=aws.client("secretsmanager"))


def secret_value(secret_id: str) -> str:
    """The secret's text (by ARN or name), from the container's cache while it is younger than the max age."""
    value = _provider().get(secret_id, max_age=SECRET_MAX_AGE_S)
    if isinstance(value, bytes):
        return value.decode()
    if not isinstance(value, str) or not value:
        raise ValueError(f"secret {secret_id} holds no text")
    return value


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive), or None."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def bearer_matches(authorization: str | None, secret: str) -> bool:
    """Whether the header carries exactly ``secret``, compared in constant time."""
    token = bearer_token(authorization)
    return token is not None and hmac.compare_digest(token.encode(), secret.encode())


def require_bearer(authorization: str | None, secret_id: str) -> None:
    """Raise NotSignedIn unless the header carries the secret ``secret_id`` as its bearer token, and
    UpstreamBusy when Secrets Manager is throttled or unreachable (after the client's retries)."""
    if bearer_token(authorization) is None:
        raise NotSignedIn("Send the warmup secret as 'Authorization: Bearer <secret>'.")
    try:
        secret = secret_value(secret_id)
    except GetParameterError as error:
        # Powertools keeps the client's error as the context: a missing secret or a denied read is a
        # misconfiguration and stays loud (500); an outage is worth a retry.
        if not aws.transient(error.__context__):
            raise
        logger.warning("warmup secret unavailable", extra={"error": str(error)})
        raise UpstreamBusy(
            "The warmup secret cannot be read right now; retry shortly.", retry_after_s=1
        ) from error
    if not bearer_matches(authorization, secret):
        raise NotSignedIn("The bearer token is not the warmup secret.")
