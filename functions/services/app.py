"""GET /api/services: every service's health check (status, code, latency), cached; ``X-Cache`` says how."""

from aws_lambda_powertools.event_handler import Response

from arcturus.background import supports_wait_until
from arcturus.cache import container_cache
from arcturus.statusboard import ServicesReport, StatusBoard
from arcturus.web.cached import CACHED_ANSWER, cached
from arcturus.web.docs import SOURCE_UNAVAILABLE, documented
from arcturus.web.guards import current_caller, guards, requires
from arcturus.web.resolver import Takes, build_resolver, lambda_handler

app = build_resolver(takes=Takes.NOTHING)
board = StatusBoard(container_cache())


@app.get(
    "/api/services",
    summary="Service health",
    **guards(requires("view:status")),
    responses={
        200: documented(ServicesReport, "Every service's health check.", headers=CACHED_ANSWER),
        503: SOURCE_UNAVAILABLE,
    },
)
def services() -> Response[str]:
    return cached(*board.services(current_caller(app).services))


# A stale answer is refreshed after the response: the environment is held until that is done.
handler = supports_wait_until(lambda_handler(app))
