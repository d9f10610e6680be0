"""POST /api/cache/warmup (``Authorization: Bearer <secret>``) and the EventBridge schedule: ask every
source and the roles document at once and write the answers to the cache."""

from arcturus import warmup
from arcturus.cache import container_cache
from arcturus.roles import roles_store
from arcturus.secrets import require_bearer
from arcturus.settings import settings
from arcturus.sources import load_config
from arcturus.web.docs import documented, problem_answer
from arcturus.web.resolver import Takes, build_resolver, scheduled_or_http_handler

SECRET_ARN = settings().warmup_secret

app = build_resolver(takes=Takes.NOTHING)
cache = container_cache()


def warm() -> warmup.WarmupReport:
    return warmup.run(cache, load_config(), roles_store().refresh)


@app.post(
    "/api/cache/warmup",
    summary="Warm the cache now",
    security=[{"warmupSecret": []}],
    responses={
        200: documented(
            warmup.WarmupReport, "What was written to the cache, and what could not be asked or written."
        ),
        401: problem_answer("No bearer token, or not the warmup secret."),
    },
)
def warm_now() -> warmup.WarmupReport:
    require_bearer(app.current_event.headers.get("authorization"), SECRET_ARN)
    return warm()


handler = scheduled_or_http_handler(app, warm)
