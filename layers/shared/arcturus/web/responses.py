"""JSON answers that carry more than a body: a status other than 200, or headers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import Response

from arcturus.web.docs import JSON

__all__ = ["json_response"]


def json_response(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=json.dumps(body), headers=dict(headers or {}))
