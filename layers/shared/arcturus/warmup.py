"""The cache warmup: every source and the roles document asked at once, the answers written to KV.

Run by the EventBridge schedule and by ``POST /api/cache/warmup`` (bearer secret). All sources are asked
concurrently, each within its own timeout, so one slow or failing source holds up nobody and the run
takes about the slowest timeout. What answered is written to both cache tiers (``warmed``); what did
not is reported (``failed``) and its cached value, if any, is left alone. A down service is both: the
services and status entries are written (down is what they report) and the service is listed in
``failed`` with its error, so an operator sees it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Annotated, Any, Final

from typing_extensions import TypedDict

from arcturus import sources
from arcturus.cache import TwoTierCache
from arcturus.formats import field, wire_body
from arcturus.observability import logger, metrics
from arcturus.sources import SourceError, SourcesConfig
from arcturus.statusboard import DASHBOARD, SERVICES, services_report

__all__ = ["ROLES", "WRITE_TIMEOUT_S", "FailedSource", "WarmupReport", "run"]

ROLES: Final = "roles"
WRITE_TIMEOUT_S: Final = 5.0
"""How long the KV writes of a run may take (all at once), DynamoDB's own retries included."""


@wire_body
class FailedSource(TypedDict):
    source: Annotated[str, field(description="service:<id>, dashboard:<widget>, status, services or roles.")]
    error: str


@wire_body
class WarmupReport(TypedDict):
    """What one warmup run wrote (``warmed``) and what it could not ask or write (``failed``)."""

    warmed: list[str]
    failed: list[FailedSource]
    durationMs: Annotated[int, field(ge=0)]


def run(cache: TwoTierCache, config: SourcesConfig, refresh_roles: Callable[[], object]) -> WarmupReport:
    """Warm every cache entry; report what was written and what failed."""
    started = time.monotonic()
    checked_at = time.time()
    asks: dict[str, Callable[[], Any]] = {
        f"service:{s['id']}": functools.partial(sources.check_service, s) for s in sources.services(config)
    }
    asks |= {
        f"{DASHBOARD}:{w}": functools.partial(sources.fetch_widget, w, src)
        for w, src in sources.widgets(config).items()
    }
    asks[ROLES] = refresh_roles
    answers = sources.gather(asks, sources.slowest_timeout_s(config) + sources.GATHER_MARGIN_S)

    checks = [sources.as_check(s, answers[f"service:{s['id']}"]) for s in sources.services(config)]
    failed: list[FailedSource] = [
        {"source": f"service:{c['id']}", "error": c["error"]} for c in checks if c["status"] != "up"
    ]
    writes: dict[str, Callable[[], None]] = {
        SERVICES[0]: functools.partial(cache.put, *SERVICES, services_report(checks, checked_at)),
    }
    for widget in sources.widgets(config):
        name = f"{DASHBOARD}:{widget}"
        if isinstance(answers[name], Exception):
            failed.append({"source": name, "error": _why(answers[name])})
        else:
            writes[name] = functools.partial(cache.put, DASHBOARD, widget, answers[name])
    written = sources.gather(writes, WRITE_TIMEOUT_S)
    warmed = [name for name, outcome in written.items() if not isinstance(outcome, Exception)]
    failed += [{"source": n, "error": _why(o)} for n, o in written.items() if isinstance(o, Exception)]
    if isinstance(answers[ROLES], Exception):
        failed.append({"source": ROLES, "error": _why(answers[ROLES])})
    else:
        warmed.append(ROLES)

    if failed:
        metrics.add_metric(name="SourceError", unit="Count", value=len(failed))
    result: WarmupReport = {
        "warmed": warmed,
        "failed": failed,
        "durationMs": round((time.monotonic() - started) * 1000),
    }
    logger.info("cache warmed", extra=dict(result))
    return result


def _why(error: Any) -> str:
    return error.reason if isinstance(error, SourceError) else f"{type(error).__name__}: {error}"
