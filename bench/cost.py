"""Cost: dollars per million requests of each route, from the measured warm duration and capacity units.

Lambda: GB-seconds at the function's MemorySize (template.yaml) times the warm handler time measured by
the functions section, billed rounded up to the next 1 ms, plus the per-request charge. DynamoDB
on-demand: the warm request's read and write request units as ``DynamoMeter`` estimates them. HTTP API:
one request each (a schedule has none). Steady state: cold starts are priced separately, per million,
at the init time measured here (Lambda bills the init of on-demand functions since August 2025).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any

from bench import functions

MILLION = 1_000_000
MINUTES_PER_MONTH = 30 * 24 * 60


@dataclass(frozen=True)
class Prices:
    """us-east-1 list prices, in dollars, free tiers left out."""

    lambda_arm64_gb_second: float = 0.0000133334
    lambda_request: float = 0.20 / MILLION
    read_request_unit: float = 0.125 / MILLION
    write_request_unit: float = 0.625 / MILLION
    http_api_request: float = 1.00 / MILLION

    as_of: str = "2025-06-01"
    """When these were the published prices (DynamoDB on-demand's after the cut of 1 November 2024)."""

    def lines(self) -> list[str]:
        return [
            f"prices assumed (us-east-1 list prices as of {self.as_of}, free tiers ignored):",
            f"  Lambda arm64 ${self.lambda_arm64_gb_second:.10f} per GB-second"
            f" (first 7.5 billion GB-s a month), ${self.lambda_request * MILLION:.2f} per million requests",
            f"  DynamoDB on-demand ${self.read_request_unit * MILLION:.3f} per million read request units,"
            f" ${self.write_request_unit * MILLION:.3f} per million write request units",
            f"  API Gateway HTTP API ${self.http_api_request * MILLION:.2f} per million requests"
            " (first 300 million a month, each 512 KB counted as one)",
        ]


PRICES = Prices()


def billed_ms(duration_ms: float) -> int:
    """Lambda's billed duration: rounded up to the next millisecond."""
    return max(1, math.ceil(duration_ms))


def per_million(
    memory_mb: int,
    duration_ms: float,
    read_units: float,
    write_units: float,
    *,
    http_api: bool,
    prices: Prices = PRICES,
) -> dict[str, float]:
    """Dollars per million requests that each take ``duration_ms`` and ``read_units``/``write_units``."""
    gb_seconds = memory_mb / 1024 * billed_ms(duration_ms) / 1000
    parts = {
        "Lambda compute": gb_seconds * prices.lambda_arm64_gb_second,
        "Lambda requests": prices.lambda_request,
        "DynamoDB": read_units * prices.read_request_unit + write_units * prices.write_request_unit,
        "HTTP API": prices.http_api_request if http_api else 0.0,
    }
    return {name: dollars * MILLION for name, dollars in parts.items()} | {
        "total": sum(parts.values()) * MILLION
    }


def runs_per_month(schedule: str) -> int | None:
    """How often ``rate(N minutes|hours|days)`` fires in a 30-day month (None for other expressions)."""
    match = re.fullmatch(r"schedule rate\((\d+) (minute|hour|day)s?\)", schedule)
    if match is None:
        return None
    minutes = int(match[1]) * {"minute": 1, "hour": 60, "day": 24 * 60}[match[2]]
    return MINUTES_PER_MONTH // minutes


@functools.cache
def run() -> list[dict[str, Any]]:
    rows = []
    for measured in functions.run():
        if "memory MB" not in measured:  # a yardstick
            continue
        route, memory = measured["route"], measured["memory MB"]
        dollars = per_million(
            memory,
            measured["warm ms"],
            measured["RCU warm"],
            measured["WCU warm"],
            http_api=not route.startswith("schedule "),
        )
        init = per_million(memory, measured["init ms"], 0, 0, http_api=False)["Lambda compute"]
        rows.append(
            {
                "route": route,
                "memory MB": memory,
                "billed ms": billed_ms(measured["warm ms"]),
                "RRU": measured["RCU warm"],
                "WRU": measured["WCU warm"],
                **{f"{name} $": round(value, 4) for name, value in dollars.items()},
                "per 1M cold starts $": round(init, 4),
            }
        )
    return rows


def notes() -> list[str]:
    lines = [
        *PRICES.lines(),
        "warm duration: the median handler time measured here (this machine, in-process moto answering"
        " DynamoDB); on Lambda a DynamoDB round trip adds a few ms, and 512 MB gets about 0.3 vCPU",
    ]
    for row in run():
        runs = runs_per_month(row["route"])
        if runs is not None:
            monthly = row["total $"] * runs / MILLION
            lines.append(f"{row['route']}: {runs} runs in a 30-day month, ${monthly:.4f} a month")
    return lines
