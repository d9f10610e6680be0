"""Domain exceptions: what the layer raises on purpose, named by what went wrong, never by an HTTP status.

Their message is written for the person who sent the request. ``arcturus.web.answers`` is the one table
that turns each into an HTTP answer; code outside ``arcturus.web`` never picks a status code.
"""

from __future__ import annotations

__all__ = [
    "ArcturusError",
    "Contended",
    "InvalidRequest",
    "NotFound",
    "NotPermitted",
    "NotSignedIn",
    "RequestMismatch",
    "SourceUnavailable",
    "StoreUnavailable",
    "UpstreamBusy",
    "UpstreamFailed",
    "VersionConflict",
]


class ArcturusError(Exception):
    """Base of every error this layer raises on purpose.

    ``retry_after_s``: whole seconds after which the same request may succeed (None: retrying as is will
    not help).
    """

    retry_after_s: int | None = None

    def __init__(self, message: str = "", *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        if retry_after_s is not None:
            self.retry_after_s = retry_after_s


class StoreUnavailable(ArcturusError):
    """DynamoDB throttled, failed or could not be reached, after botocore's own retries."""

    retry_after_s = 1


class VersionConflict(ArcturusError):
    """A compare-and-set write lost: the stored version is not the one the caller read."""


class InvalidRequest(ArcturusError):
    """Something the caller sent is malformed (a header, a cursor), beyond what the models check."""


class NotSignedIn(ArcturusError):
    """The request carries no identity this API accepts."""


class NotPermitted(ArcturusError):
    """The caller is known but may not do this."""


class NotFound(ArcturusError):
    """What the request names does not exist (or no longer does)."""


class Contended(ArcturusError):
    """Another request on the same thing won or is still running: send this one again."""

    retry_after_s = 1


class UpstreamBusy(ArcturusError):
    """A service this answer needs is throttled or unreachable for now."""


class UpstreamFailed(ArcturusError):
    """A service this answer needs failed in a way retrying will not fix (the error is logged)."""


class RequestMismatch(ArcturusError):
    """The request reuses a key (an Idempotency-Key) that an earlier, different request used."""


class SourceUnavailable(ArcturusError):
    """No value can be served: the source failed and there is no value younger than the stale bound."""
