"""EventBridge schedules: rate() and cron() expressions firing their functions with a Scheduled Event.

AWS cron has six fields (minutes hours day-of-month month day-of-week year), ``?`` for "any", and numbers
days of the week 1-7 from Sunday; croniter takes five fields numbered 0-6, so expressions are converted,
and the year is checked separately. ``scale`` shrinks every wait (tests run a one-minute rate in a
second); the event's ``time`` is always the real time of firing.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter

from local.intrinsics import ACCOUNT_ID, REGION
from local.template import ScheduleSpec
from local.workers import FunctionPool

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_WEEKDAY_NUMBER = re.compile(r"(?<![#/\d])([1-7])(?!\d)")

NextFire = Callable[[datetime], datetime]


def next_fire(expression: str) -> NextFire:
    """A function giving the first firing time after a given time; ValueError for a bad expression."""
    rate = _RATE.match(expression.strip())
    if rate:
        value = int(rate.group(1))
        if value < 1:
            raise ValueError(f"{expression}: the rate must be at least 1")
        interval = timedelta(seconds=value * _UNIT_SECONDS[rate.group(2).rstrip("s")])
        return lambda after: after + interval
    cron = _CRON.match(expression.strip())
    if not cron:
        raise ValueError(f"{expression}: not a rate() or cron() expression")
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise ValueError(f"{expression}: AWS cron takes 6 fields")
    minutes, hours, day_of_month, month, day_of_week, year = fields
    day_of_week = _WEEKDAY_NUMBER.sub(lambda m: str(int(m.group(1)) - 1), day_of_week)
    spec = " ".join(field.replace("?", "*") for field in (minutes, hours, day_of_month, month, day_of_week))
    if not croniter.is_valid(spec):
        raise ValueError(f"{expression}: invalid cron fields")

    def after(moment: datetime) -> datetime:
        iterator = croniter(spec, moment)
        for _ in range(10_000):
            candidate: datetime = iterator.get_next(datetime)
            if _year_matches(year, candidate.year):
                return candidate
        raise ValueError(f"{expression}: never fires")

    return after


def _year_matches(field: str, year: int) -> bool:
    if field in ("*", "?"):
        return True
    for part in field.split(","):
        start, _, end = part.partition("-")
        if int(start) <= year <= int(end or start):
            return True
    return False


def scheduled_event(spec: ScheduleSpec, moment: datetime | None = None) -> dict[str, Any]:
    """The event EventBridge sends for ``spec`` (its Input instead, when the event sets one)."""
    if spec.input is not None:
        event: dict[str, Any] = json.loads(spec.input)
        return event
    moment = moment or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{spec.rule_name}"],
        "detail": {},
    }


def fire(pools: Mapping[str, FunctionPool], spec: ScheduleSpec, log: Callable[[str], None]) -> dict[str, Any]:
    """Invoke a schedule's function once with its event; log and return how it went."""
    started = time.monotonic()
    outcome = pools[spec.function].invoke(json.dumps(scheduled_event(spec)).encode())
    milliseconds = round((time.monotonic() - started) * 1000)
    log(f"SCHEDULE {spec.expression} {spec.function} {outcome.kind} {milliseconds}ms {outcome.worker}")
    return {"function": spec.function, "event": spec.event, "outcome": outcome.kind, "ms": milliseconds}


class Scheduler:
    """Fires each enabled schedule on time, each firing on its own thread (EventBridge invokes async)."""

    def __init__(
        self, schedules: list[ScheduleSpec], fire: Callable[[ScheduleSpec], object], scale: float
    ) -> None:
        self._entries = [(spec, next_fire(spec.expression)) for spec in schedules if spec.enabled]
        self._fire = fire
        self._scale = scale
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> None:
        if self._entries:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _due(self, after: NextFire) -> float:
        now = datetime.now(UTC)
        return time.monotonic() + (after(now) - now).total_seconds() * self._scale

    def _run(self) -> None:
        due = [self._due(after) for _, after in self._entries]
        while not self._stop.wait(max(0.0, min(due) - time.monotonic())):
            for index, (spec, after) in enumerate(self._entries):
                if due[index] <= time.monotonic():
                    due[index] = self._due(after)
                    name = f"schedule {spec.rule_name}"
                    threading.Thread(target=self._fire, args=(spec,), name=name, daemon=True).start()
