"""events/ holds a sample event for every function of template.yaml, valid for the route it claims."""

from __future__ import annotations

import json

import pytest

from local.template import ScheduleSpec, Template
from tests.integration.conftest import APP_TEMPLATE, ROOT

pytestmark = pytest.mark.integration

TEMPLATE = Template(APP_TEMPLATE)


@pytest.mark.parametrize("function", sorted(TEMPLATE.functions()))
def test_each_function_has_a_payload_2_0_event_for_one_of_its_routes(function: str) -> None:
    code_dir = TEMPLATE.functions()[function].code_dir.name
    event = json.loads((ROOT / "events" / f"{code_dir}.json").read_text())
    routes = {f"{r.method} {r.path}": r for r in TEMPLATE.routes() if r.function == function}

    assert event["version"] == "2.0"
    assert event["routeKey"] in routes
    assert event["requestContext"]["routeKey"] == event["routeKey"]
    jwt = event["requestContext"].get("authorizer", {}).get("jwt")
    assert (jwt is not None) == (routes[event["routeKey"]].authorizer is not None)


@pytest.mark.parametrize("schedule", TEMPLATE.schedules(), ids=lambda spec: spec.rule_name)
def test_each_scheduled_function_has_its_scheduled_event(schedule: ScheduleSpec) -> None:
    code_dir = TEMPLATE.functions()[schedule.function].code_dir.name
    event = json.loads((ROOT / "events" / f"{code_dir}_scheduled.json").read_text())

    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
