"""Unit-test fixtures: every test starts with no metrics buffered by the shared Powertools Metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from arcturus.observability import metrics


@pytest.fixture(autouse=True)
def clean_metrics() -> Iterator[None]:
    """Metrics are module state (as in a Lambda container); a test must not flush another test's values."""
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def fresh_rate_window() -> None:
    """Start the test early in a 60 s rate-limit window: the windows are aligned to the real clock, so
    a test counting a minute's quota must not straddle a window's end."""
    into_window = time.time() % 60
    if into_window > 30:
        time.sleep(60 - into_window + 0.05)
