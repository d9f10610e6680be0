"""Summary: per function and route, init, cold request and warm time against their yardsticks, DynamoDB
requests, cost.

Init: the median import of the function's module in a new interpreter, and that over ``import boto3``
alone. Cold request: a new execution environment's first response, and that over a function that reads
DynamoDB once (``bench.cold``). Warm: the median handler time in a warm container (in-process moto),
and that over a bare Powertools resolver in the same process. DynamoDB: requests of a cold start (init
and first request, post-response work included) and per warm request. Dollars per million warm
requests: Lambda arm64, DynamoDB on-demand and HTTP API, at the prices the cost section lists.
"""

from __future__ import annotations

from typing import Any

from bench import cold, cost, functions, layer

COLUMNS = (
    "function",
    "route",
    "init ms",
    "init min-max ms",
    "init x boto3",
    "cold request ms",
    "cold x yardstick",
    "cold x floor",
    "warm ms",
    "warm x bare",
    "warm x bare traced",
    "DynamoDB cold",
    "DynamoDB warm",
)


def run() -> list[dict[str, Any]]:
    dollars = {row["route"]: row["total $"] for row in cost.run()}
    colds = {
        row["route"]: {
            "cold request ms": row["cold request ms"],
            "cold x yardstick": row["x yardstick"],
            "cold x floor": row["x floor"],
        }
        for row in cold.run()
    }
    rows = [
        {"function": "(yardstick)", "route": "one DynamoDB client + GetItem"} | colds[cold.YARDSTICK],
        {"function": "(yardstick)", "route": "floor: that in Powertools with Logger/Tracer/Metrics"}
        | colds[cold.FLOOR],
    ]
    for measured in functions.run():
        values = measured | colds.get(measured["route"], {})
        row = {column: values[column] for column in COLUMNS if column in values}
        if measured["route"] in dollars:
            row["$ per 1M"] = dollars[measured["route"]]
        rows.append(row)
    return rows


def notes() -> list[str]:
    whole = layer.run()[-1]
    yardsticks = {row["route"]: row for row in functions.run() if row["function"] == "(yardstick)"}
    return [
        f"built layer: {whole['unpacked MiB']} MiB unpacked, {whole['zipped MiB']} MiB zipped,"
        f" {whole['files']} files",
        f"init: median of {functions.INIT_RUNS} imports in a new interpreter, interleaved rounds (1-minute"
        f" load {functions.init_rounds().load_before} before, {functions.init_rounds().load_after} after);"
        f" import boto3 alone took {yardsticks['import boto3']['init ms']} ms",
        f"cold request: median of {cold.COLD_RUNS} new execution environments, first response through"
        f" awslambdaric on the embedded AWS; the yardstick (one client, one GetItem) took"
        f" {next(r for r in cold.run() if r['route'] == cold.YARDSTICK)['cold request ms']} ms",
        "warm: median handler time, in-process moto; the bare resolver took"
        f" {yardsticks['bare APIGatewayHttpResolver']['warm ms']} ms",
        "DynamoDB cold: init + first request (with its post-response work); warm: per request, steady state",
        "$ per 1M: warm requests; prices and assumptions under cost",
    ]
