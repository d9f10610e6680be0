"""Unit-test fixtures: every test starts with no metrics buffered by the shared Powertools Metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from arcturus.observability import metrics


@pytest.fixture(autouse=True)
def clean_metrics() -> Iterator[None]:
    """Metrics are module state (as in a Lambda container); a test must not flush another test's values."""
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()
