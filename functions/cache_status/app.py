"""GET /api/cache/status: this container's memory tier, the cache's and the roles' KV keys (paged), and
how many other keys there are per class, never their names."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from arcturus.cache import STATUS_PAGE, CacheStatus, container_cache
from arcturus.kv import MAX_LIST_LIMIT
from arcturus.web.docs import documented, problem_answer
from arcturus.web.guards import guards, requires
from arcturus.web.problem import HTTPProblem
from arcturus.web.resolver import Takes, build_resolver, lambda_handler

app = build_resolver(takes=Takes.OPTIONAL_QUERY)
cache = container_cache()


@app.get(
    "/api/cache/status",
    summary="Cache contents",
    **guards(requires("manage:cache")),
    responses={
        200: documented(
            CacheStatus, "This container's memory tier, a page of cache: and data: keys, the rest counted."
        ),
        400: problem_answer("The cursor is not one this route gave."),
    },
)
def cache_status(
    cursor: Annotated[str | None, Query(description="From the previous page's cursor.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT, description="Keys per page.")] = STATUS_PAGE,
) -> CacheStatus:
    try:
        return cache.status(cursor=cursor, limit=limit)
    except ValueError as error:
        raise HTTPProblem(400, f"{error}: start again without a cursor.") from error


handler = lambda_handler(app)
