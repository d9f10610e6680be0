"""GET /api/status: the infrastructure summary (overall state, up/down counts), cached (``X-Cache``)."""

from aws_lambda_powertools.event_handler import Response

from arcturus.background import supports_wait_until
from arcturus.cache import container_cache
from arcturus.http import build_resolver, documented, lambda_handler
from arcturus.identity import current_caller, requires
from arcturus.statusboard import CACHED_ANSWER, SOURCE_UNAVAILABLE, StatusBoard

app = build_resolver()
board = StatusBoard(container_cache())


@app.get(
    "/api/status",
    summary="Infrastructure summary",
    middlewares=[requires("view:status")],
    responses={
        200: documented(
            "StatusSummary", "Overall state, up/down counts, what is down.", headers=CACHED_ANSWER
        ),
        503: SOURCE_UNAVAILABLE,
    },
)
def status() -> Response[str]:
    return board.status(current_caller(app).services)


# A stale answer is refreshed after the response: the environment is held until that is done.
handler = supports_wait_until(lambda_handler(app))
