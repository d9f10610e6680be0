"""The one JSON encoder of every answer's body: routes' bodies, cached answers and problem details."""

from __future__ import annotations

import json

__all__ = ["to_json"]


def to_json(body: object) -> str:
    """``body`` as compact JSON; the resolver's serializer, so a route may return a body as it is."""
    return json.dumps(body, separators=(",", ":"))
