"""Fail in the way the path asks: ``exit`` ends the process, ``raise`` raises, anything else answers."""

from __future__ import annotations

import os
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    mode = event["pathParameters"]["mode"]
    if mode == "exit":
        os._exit(3)
    if mode == "raise":
        raise ValueError("raised on purpose")
    return {"pid": os.getpid()}
