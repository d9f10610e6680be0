"""GET /api/auth/me: the signed-in user's identity, role, permissions, grants and dashboard profiles."""

from arcturus.identity import CallerProfile
from arcturus.web.docs import documented
from arcturus.web.guards import current_caller, guards, requires
from arcturus.web.resolver import Takes, build_resolver, lambda_handler

app = build_resolver(takes=Takes.NOTHING)


@app.get(
    "/api/auth/me",
    summary="Who am I",
    **guards(requires()),
    responses={200: documented(CallerProfile, "Identity, role, permissions, grants, dashboard profiles.")},
)
def me() -> CallerProfile:
    return current_caller(app).profile()


handler = lambda_handler(app)
