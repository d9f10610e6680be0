"""GET /api/cache/status: this container's memory tier and every key in the KV namespace."""

from typing import Any

from arcturus.cache import container_cache
from arcturus.http import build_resolver, documented, lambda_handler
from arcturus.identity import requires

app = build_resolver()
cache = container_cache()


@app.get(
    "/api/cache/status",
    summary="Cache contents",
    middlewares=[requires("manage:cache")],
    responses={200: documented("CacheStatus", "This container's memory tier and every KV key.")},
)
def cache_status() -> dict[str, Any]:
    return cache.status()


handler = lambda_handler(app)
