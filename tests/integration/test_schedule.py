"""Schedule events fire on their own with EventBridge's payload (the fixture server runs 50 times faster)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.conftest import LocalServe

pytestmark = pytest.mark.integration


def test_rate_and_cron_schedules_fire_with_eventbridges_events(fixture_app: LocalServe) -> None:
    deadline = time.monotonic() + 20
    ticks: dict[str, Any] = {}
    while time.monotonic() < deadline:
        ticks = fixture_app.get_json("/ticks")
        if ticks["counts"].get("aws_events", 0) >= 2 and ticks["counts"].get("cron_input", 0) >= 1:
            break
        time.sleep(0.3)

    counts, scheduled = ticks["counts"], ticks["last"].get("aws_events", {})
    assert counts.get("aws_events", 0) >= 2, counts
    assert counts.get("cron_input", 0) >= 1, "the cron schedule fires, with its Input as the event"
    assert "disabled" not in counts
    assert scheduled["detail-type"] == "Scheduled Event"
    assert scheduled["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/TickFunctionEveryMinute"]
    assert scheduled["detail"] == {}
    assert scheduled["account"] == "123456789012"
    assert str(scheduled["time"]).endswith("Z")
