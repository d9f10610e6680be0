"""The benchmark's arithmetic: the cost table's dollars and the capacity units DynamoMeter estimates."""

from __future__ import annotations

from typing import Any

import pytest

from bench.cost import Prices, billed_ms, per_million, runs_per_month
from bench.meter import DynamoMeter
from tests.conftest import TABLE


@pytest.mark.parametrize(("measured", "billed"), [(0.2, 1), (1.0, 1), (3.0, 3), (3.01, 4)])
def test_lambda_bills_whole_milliseconds_rounded_up(measured: float, billed: int) -> None:
    assert billed_ms(measured) == billed


def test_dollars_per_million_requests() -> None:
    prices = Prices()
    # 512 MB for 2.3 ms bills 0.5 GB x 3 ms; half a read unit and one write unit each.
    dollars = per_million(512, 2.3, 0.5, 1.0, http_api=True, prices=prices)

    assert dollars["Lambda compute"] == pytest.approx(0.5 * 0.003 * 1e6 * 0.0000133334)
    assert dollars["Lambda requests"] == pytest.approx(0.20)
    assert dollars["DynamoDB"] == pytest.approx(0.5 * 0.125 + 1.0 * 0.625)
    assert dollars["HTTP API"] == pytest.approx(1.00)
    assert dollars["total"] == pytest.approx(0.0200001 + 0.20 + 0.6875 + 1.00)


def test_a_schedule_pays_no_http_api() -> None:
    assert per_million(512, 10, 0, 0, http_api=False)["HTTP API"] == 0


@pytest.mark.parametrize(
    ("schedule", "runs"),
    [
        ("schedule rate(5 minutes)", 8640),
        ("schedule rate(1 hour)", 720),
        ("schedule cron(0 * * * ? *)", None),
    ],
)
def test_runs_per_month(schedule: str, runs: int | None) -> None:
    assert runs_per_month(schedule) == runs


def _item(key: str, size: int) -> dict[str, Any]:
    return {"pk": {"S": "p"}, "sk": {"S": key}, "v": {"S": "x" * size}}


def test_meter_charges_reads_by_started_4_kb_and_misses_the_minimum(dynamodb: Any) -> None:
    dynamodb.put_item(TableName=TABLE, Item=_item("small", 100))
    dynamodb.put_item(TableName=TABLE, Item=_item("large", 5000))
    meter = DynamoMeter(dynamodb)

    dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "p"}, "sk": {"S": "small"}})
    dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "p"}, "sk": {"S": "large"}}, ConsistentRead=True)
    dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "p"}, "sk": {"S": "absent"}})
    assert meter.rcu == 0.5 + 2 + 0.5

    meter.reset()
    keys = [{"pk": {"S": "p"}, "sk": {"S": key}} for key in ("small", "large", "absent")]
    dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": keys}})
    assert meter.rcu == 0.5 + 1 + 0.5
    assert meter.requests == {"BatchGetItem": 1}


def test_meter_charges_writes_by_started_kb_of_the_larger_item(dynamodb: Any) -> None:
    meter = DynamoMeter(dynamodb)

    dynamodb.put_item(TableName=TABLE, Item=_item("a", 3000))
    dynamodb.put_item(TableName=TABLE, Item=_item("a", 10), ReturnValues="ALL_OLD")
    dynamodb.delete_item(TableName=TABLE, Key={"pk": {"S": "p"}, "sk": {"S": "absent"}})

    assert meter.wcu == 3 + 3 + 1
    assert meter.writes == 3
