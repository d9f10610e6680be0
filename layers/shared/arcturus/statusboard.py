"""What /api/status, /api/services and /api/dashboard show, read through the two-tier cache.

Two kinds of cached value (``arcturus.cache.FRESH_FOR_S``), shared by every caller:

- ``cache:services:all``: every service's health check, ``{"services": [...], "checkedAt"}``;
- ``cache:dashboard:<widget>``: one widget's upstream JSON.

A caller sees only the services their ``services`` grant lists by id (``*``: all). ``/api/services``
answers the checks of those; ``/api/status`` summarises them (overall state, counts, which are down),
computed per request from the one shared value, so a grant never reveals a service it leaves out.

The sources configuration is read inside the fetch functions, so a request answered from the cache
never touches it. The warmup writes the same values with the same builders (``services_report``,
``status_summary``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final, Generic, Literal, NamedTuple, TypeVar

from typing_extensions import TypedDict

from arcturus import sources
from arcturus.cache import Cached, CacheState, Lookup, TwoTierCache
from arcturus.errors import NotFound, SourceUnavailable
from arcturus.formats import field, iso8601, wire_body
from arcturus.roles import GRANT_ALL, DashboardProfile, Widget
from arcturus.sources import ServiceCheck, SourceError, SourcesConfig

__all__ = [
    "DASHBOARD",
    "RETRY_AFTER_S",
    "SERVICES",
    "ConfigLoader",
    "Dashboard",
    "DownService",
    "ProfileRef",
    "ServiceCounts",
    "ServicesReport",
    "StatusBoard",
    "StatusSummary",
    "View",
    "WidgetData",
    "WidgetError",
    "granted",
    "reason",
    "services_report",
    "status_summary",
    "unavailable",
]

SERVICES: Final = ("services", "all")
DASHBOARD: Final = "dashboard"
RETRY_AFTER_S: Final = 30

ConfigLoader = Callable[[], SourcesConfig]


@wire_body
class ServicesReport(TypedDict):
    services: list[ServiceCheck]
    checkedAt: str


@wire_body
class ServiceCounts(TypedDict):
    total: Annotated[int, field(ge=0)]
    up: Annotated[int, field(ge=0)]
    down: Annotated[int, field(ge=0)]


@wire_body
class DownService(TypedDict):
    id: str
    name: str
    error: str | None


@wire_body
class StatusSummary(TypedDict):
    """The infrastructure summary: ``operational`` when every service is up, ``outage`` when none is."""

    status: Literal["operational", "degraded", "outage", "unknown"]
    services: ServiceCounts
    down: list[DownService]
    averageLatencyMs: Annotated[int | None, field(description="Mean latency of the services that are up.")]
    checkedAt: str


@wire_body
class ProfileRef(TypedDict):
    id: str
    name: str


@wire_body
class WidgetData(TypedDict):
    id: Widget
    data: Annotated[Any, field(description="The widget's upstream JSON, as it answered.")]
    fetchedAt: str
    cache: CacheState


@wire_body
class WidgetError(TypedDict):
    id: Widget
    error: Annotated[
        str, field(description="Why its source gave nothing (the other widgets may still have data).")
    ]


@wire_body
class Dashboard(TypedDict):
    """The widgets of one of the caller's dashboard profiles; ``profile`` is null when they have none."""

    profile: ProfileRef | None
    profiles: list[ProfileRef]
    widgets: list[WidgetData | WidgetError]


def services_report(checks: list[ServiceCheck], checked_at: float) -> ServicesReport:
    """The value of ``cache:services:all``."""
    return {"services": checks, "checkedAt": iso8601(checked_at)}


def granted(checks: list[ServiceCheck], grants: Sequence[str]) -> list[ServiceCheck]:
    """The checks of the services ``grants`` lists by id (``*``: every one), in their order."""
    if GRANT_ALL in grants:
        return checks
    allowed = set(grants)
    return [check for check in checks if check["id"] in allowed]


def status_summary(checks: list[ServiceCheck], checked_at: str) -> StatusSummary:
    """What ``/api/status`` answers over ``checks``: ``operational`` when every service is up,
    ``outage`` when none is, ``degraded`` in between, ``unknown`` with no service to show."""
    down = [check for check in checks if check["status"] != "up"]
    up = len(checks) - len(down)
    overall: Literal["operational", "degraded", "outage", "unknown"]
    if not checks:
        overall = "unknown"
    elif not down:
        overall = "operational"
    elif not up:
        overall = "outage"
    else:
        overall = "degraded"
    latencies = [c["latencyMs"] for c in checks if c["status"] == "up" and c["latencyMs"] is not None]
    return {
        "status": overall,
        "services": {"total": len(checks), "up": up, "down": len(down)},
        "down": [{"id": c["id"], "name": c["name"], "error": c.get("error")} for c in down],
        "averageLatencyMs": round(sum(latencies) / len(latencies)) if latencies else None,
        "checkedAt": checked_at,
    }


Body = TypeVar("Body", StatusSummary, ServicesReport, Dashboard)


class View(NamedTuple, Generic[Body]):
    """A cached route's answer: the body, and how the cache served it (the least fresh part)."""

    body: Body
    state: CacheState


def reason(error: SourceUnavailable) -> str:
    """Why a source gave nothing, in words fit for a caller (configuration details stay in the logs)."""
    cause = error.__cause__
    return cause.reason if isinstance(cause, SourceError) else "the source did not answer"


def unavailable(error: SourceUnavailable) -> SourceUnavailable:
    """The error a caller sees when nothing can be served: why, in words fit for them."""
    return SourceUnavailable(
        f"The upstream source did not answer and no recent value is cached: {reason(error)}.",
        retry_after_s=RETRY_AFTER_S,
    )


class StatusBoard:
    """The cached views behind the status routes; ``config`` is only called when a source is asked."""

    def __init__(self, cache: TwoTierCache, config: ConfigLoader = sources.load_config) -> None:
        self._cache = cache
        self._config = config

    def status(self, grants: Sequence[str]) -> View[StatusSummary]:
        """The summary over the services ``grants`` lists."""
        report = self._services()
        visible = granted(report.value["services"], grants)
        return View(status_summary(visible, report.value["checkedAt"]), report.state)

    def services(self, grants: Sequence[str]) -> View[ServicesReport]:
        """The checks of the services ``grants`` lists."""
        report = self._services()
        visible = granted(report.value["services"], grants)
        return View({"services": visible, "checkedAt": report.value["checkedAt"]}, report.state)

    def _services(self) -> Cached:
        try:
            return self._cache.get(*SERVICES, lambda: services_report(*self._check()))
        except SourceUnavailable as error:
            raise unavailable(error) from error

    def dashboard(self, profiles: Sequence[DashboardProfile], profile_id: str | None) -> View[Dashboard]:
        """The widgets of ``profile_id`` (default: the first profile), each with its data or its error.

        503 only when every widget failed; the answer's ``X-Cache`` is its least fresh widget's state.
        """
        profile = _choose(profiles, profile_id)
        listing: list[ProfileRef] = [{"id": p["id"], "name": p["name"]} for p in profiles]
        if profile is None:
            return View({"profile": None, "profiles": listing, "widgets": []}, CacheState.HIT)
        widgets = list(dict.fromkeys(profile["widgets"]))
        results = dict(
            zip(
                widgets,
                self._cache.get_many([Lookup(DASHBOARD, w, self._widget_fetcher(w)) for w in widgets]),
                strict=True,
            )
        )
        failed = [r for r in results.values() if isinstance(r, SourceUnavailable)]
        if widgets and len(failed) == len(widgets):
            raise unavailable(failed[0])
        body: Dashboard = {
            "profile": {"id": profile["id"], "name": profile["name"]},
            "profiles": listing,
            "widgets": [_widget(w, results[w]) for w in profile["widgets"]],
        }
        states = {r.state for r in results.values() if isinstance(r, Cached)}
        worst = next((s for s in (CacheState.MISS, CacheState.STALE) if s in states), CacheState.HIT)
        return View(body, worst)

    def _check(self) -> tuple[list[ServiceCheck], float]:
        checked_at = time.time()
        return sources.check_services(self._config()), checked_at

    def _widget_fetcher(self, widget: str) -> Callable[[], Any]:
        def fetch() -> Any:
            source = next((s for name, s in sources.widgets(self._config()).items() if name == widget), None)
            if source is None:
                raise SourceError(f"{DASHBOARD}:{widget}", "no upstream configured for this widget")
            return sources.fetch_widget(widget, source)

        return fetch


def _choose(profiles: Sequence[DashboardProfile], profile_id: str | None) -> DashboardProfile | None:
    if profile_id is None:
        return profiles[0] if profiles else None
    for profile in profiles:
        if profile["id"] == profile_id:
            return profile
    known = ", ".join(p["id"] for p in profiles) or "none"
    raise NotFound(f"You have no dashboard profile {profile_id!r} (yours: {known}).")


def _widget(widget: Widget, result: Cached | SourceUnavailable) -> WidgetData | WidgetError:
    if isinstance(result, SourceUnavailable):
        return {"id": widget, "error": reason(result)}
    return {"id": widget, "data": result.value, "fetchedAt": result.fetched_at_iso, "cache": result.state}
