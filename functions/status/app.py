"""GET /api/status: the infrastructure summary (overall state, up/down counts), cached (``X-Cache``)."""

from aws_lambda_powertools.event_handler import Response

from arcturus.background import supports_wait_until
from arcturus.cache import container_cache
from arcturus.statusboard import StatusBoard, StatusSummary
from arcturus.web.cached import CACHED_ANSWER, cached
from arcturus.web.docs import SOURCE_UNAVAILABLE, documented
from arcturus.web.guards import current_caller, guards, requires
from arcturus.web.resolver import Takes, build_resolver, lambda_handler

app = build_resolver(takes=Takes.NOTHING)
board = StatusBoard(container_cache())


@app.get(
    "/api/status",
    summary="Infrastructure summary",
    **guards(requires("view:status")),
    responses={
        200: documented(StatusSummary, "Overall state, up/down counts, what is down.", headers=CACHED_ANSWER),
        503: SOURCE_UNAVAILABLE,
    },
)
def status() -> Response[str]:
    return cached(*board.status(current_caller(app).services))


# A stale answer is refreshed after the response: the environment is held until that is done.
handler = supports_wait_until(lambda_handler(app))
