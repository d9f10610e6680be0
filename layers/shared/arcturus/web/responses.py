"""JSON answers that carry more than a body: a status other than 200, or headers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import Response

from arcturus.web.docs import JSON
from arcturus.web.encoder import to_json

__all__ = ["json_response"]


def json_response(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=to_json(body), headers=dict(headers or {}))
