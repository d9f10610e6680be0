"""One place that prints: whole lines only, so request lines and function output never interleave."""

from __future__ import annotations

import sys
import threading
from typing import TextIO


class Console:
    """Prints whole lines to ``stream`` (stdout for serve; stderr where stdout carries a result)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, text: str) -> None:
        stream = self._stream or sys.stdout
        with self._lock:
            stream.write(text + "\n")
            stream.flush()
