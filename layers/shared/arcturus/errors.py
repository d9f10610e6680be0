"""Domain exceptions: what callers catch instead of botocore's ClientError."""


class ArcturusError(Exception):
    """Base of every error this layer raises on purpose."""


class StoreUnavailable(ArcturusError):
    """DynamoDB throttled, failed or could not be reached, after botocore's own retries."""


class VersionConflict(ArcturusError):
    """A compare-and-set write lost: the stored version is not the one the caller read."""
