"""The one JSON encoder of every answer's body: routes' bodies, cached answers and problem details."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

__all__ = ["to_json"]


def _wire_value(value: object) -> Any:
    """A model inside a body (a roles document's dashboard profile) as it is on the wire."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    raise TypeError(f"{type(value).__name__} is not JSON")


def to_json(body: object) -> str:
    """``body`` as compact JSON; the resolver's serializer, so a route may return a body as it is."""
    return json.dumps(body, separators=(",", ":"), default=_wire_value)
