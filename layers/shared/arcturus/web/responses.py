"""JSON answers: the one encoder every answer's body goes through, and answers that carry more than a
body (a status other than 200, or headers)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel

from arcturus.web.docs import JSON

__all__ = ["json_response", "to_json"]


def _wire_value(value: object) -> Any:
    """A model inside a body (a roles document's dashboard profile) as it is on the wire."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    raise TypeError(f"{type(value).__name__} is not JSON")


def to_json(body: object) -> str:
    """``body`` as compact JSON; the resolver's serializer, so a route may return a body as it is."""
    return json.dumps(body, separators=(",", ":"), default=_wire_value)


def json_response(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Response[str]:
    return Response(status_code=status, content_type=JSON, body=to_json(body), headers=dict(headers or {}))
