"""Sleep for the seconds in the path, then say which worker did."""

from __future__ import annotations

import os
import time
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(float(event["pathParameters"]["seconds"]))
    return {"pid": os.getpid()}
