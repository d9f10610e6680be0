"""GET /api/dashboard?profile=<id>: the widget data of one of the caller's dashboard profiles (default the
first), each widget cached; ``X-Cache`` gives the least fresh widget's state."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from arcturus.background import supports_wait_until
from arcturus.cache import container_cache
from arcturus.statusboard import Dashboard, StatusBoard
from arcturus.web.cached import CACHED_ANSWER, cached
from arcturus.web.docs import SOURCE_UNAVAILABLE, documented, problem_answer
from arcturus.web.guards import current_caller, guards, requires
from arcturus.web.resolver import Takes, build_resolver, lambda_handler

app = build_resolver(takes=Takes.OPTIONAL_QUERY)
board = StatusBoard(container_cache())


@app.get(
    "/api/dashboard",
    summary="My dashboard's widgets",
    **guards(requires("view:dashboard")),
    responses={
        200: documented(
            Dashboard,
            "Each widget with its data, or why it has none; X-Cache is the least fresh.",
            headers=CACHED_ANSWER,
        ),
        404: problem_answer("You have no dashboard profile with that id."),
        503: SOURCE_UNAVAILABLE,
    },
)
def dashboard(
    profile: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="A profile id of yours; default: your first."),
    ] = None,
) -> Response[str]:
    return cached(*board.dashboard(current_caller(app).dashboard_profiles, profile))


# A stale widget is refreshed after the response: the environment is held until that is done.
handler = supports_wait_until(lambda_handler(app))
