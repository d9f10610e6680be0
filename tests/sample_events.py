"""The sample events of events/ and what each function answers to them on a freshly seeded deployment.

Shared by the checks that run the functions as deployed: from the ``sam build`` output on the runtime's
own libraries (tests/integration/test_build_output.py) and in Docker under ``sam local``
(tests/sam_local/). Each names a field of the answer that only a function that reached its data has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
SECRET_PLACEHOLDER = "<the CacheWarmupSecret value that serve prints>"


@dataclass(frozen=True)
class SampleEvent:
    function: str
    event: str
    """File name under events/, without .json."""
    status: int | None
    """The HTTP status of the answer; None for a non-HTTP event (the schedule)."""
    field: str
    """A top-level field of the answer's (JSON) body."""
    value: Any = None
    """What ``field`` must hold, when it is known in advance."""

    def payload(self, warmup_secret: str) -> dict[str, Any]:
        """The event, with the deployment's warmup secret where the file has its placeholder."""
        text = (EVENTS / f"{self.event}.json").read_text()
        loaded: dict[str, Any] = json.loads(text.replace(SECRET_PLACEHOLDER, warmup_secret))
        return loaded

    def check(self, result: dict[str, Any]) -> None:
        """Assert that ``result`` (what the function returned) is the expected answer."""
        if self.status is None:
            body = result
        else:
            assert result.get("statusCode") == self.status, result
            body = json.loads(result["body"])
        assert self.field in body, body
        if self.value is not None:
            assert body[self.field] == self.value, body


SAMPLES = [
    SampleEvent("AuthMeFunction", "auth_me", 200, "email", "admin@example.com"),
    SampleEvent("AuthProfileFunction", "auth_profile", 200, "dashboardProfiles"),
    SampleEvent("AuthRolesFunction", "auth_roles", 200, "users"),
    SampleEvent("CacheStatusFunction", "cache_status", 200, "kvKeys"),
    SampleEvent("CacheWarmupFunction", "cache_warmup", 200, "failed", []),
    SampleEvent("CacheWarmupFunction", "cache_warmup_scheduled", None, "failed", []),
    SampleEvent("StatusFunction", "status", 200, "services"),
    SampleEvent("ServicesFunction", "services", 200, "services"),
    SampleEvent("DashboardFunction", "dashboard", 200, "widgets"),
    SampleEvent("ContactFunction", "contact", 202, "id"),
    SampleEvent("ChatFunction", "chat", 200, "reply"),
]
