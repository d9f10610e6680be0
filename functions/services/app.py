"""GET /api/services: every service's health check (status, code, latency), cached; ``X-Cache`` says how."""

from aws_lambda_powertools.event_handler import Response

from arcturus.background import supports_wait_until
from arcturus.cache import container_cache
from arcturus.http import build_resolver, documented, lambda_handler
from arcturus.identity import current_caller, requires
from arcturus.statusboard import CACHED_ANSWER, SOURCE_UNAVAILABLE, StatusBoard

app = build_resolver()
board = StatusBoard(container_cache())


@app.get(
    "/api/services",
    summary="Service health",
    middlewares=[requires("view:status")],
    responses={
        200: documented("ServicesReport", "Every service's health check.", headers=CACHED_ANSWER),
        503: SOURCE_UNAVAILABLE,
    },
)
def services() -> Response[str]:
    return board.services(current_caller(app).services)


# A stale answer is refreshed after the response: the environment is held until that is done.
handler = supports_wait_until(lambda_handler(app))
