"""A cached route's answer: the body, with ``X-Cache`` saying how the two-tier cache served it."""

from __future__ import annotations

from typing import Any, Final

from aws_lambda_powertools.event_handler import Response

from arcturus.cache import CacheState
from arcturus.web.docs import JSON, ResponseHeaders
from arcturus.web.encoder import to_json

__all__ = ["CACHED_ANSWER", "cached"]

CACHED_ANSWER: Final[ResponseHeaders] = {
    "X-Cache": {
        "description": "HIT: fresh. STALE: older, refreshed after this answer. MISS: just fetched.",
        "required": True,
        "schema": {"type": "string", "enum": [state.value for state in CacheState]},
    }
}


def cached(body: Any, state: CacheState) -> Response[str]:
    """A cached route's 200 answer, saying in ``X-Cache`` how the cache served it."""
    return Response(
        status_code=200,
        content_type=JSON,
        body=to_json(body),
        headers={"X-Cache": state.value, "Cache-Control": "private, no-cache"},
    )
