"""POST /api/auth/profile: the signed-in user saves their own dashboard profiles."""

from dataclasses import replace

from arcturus.identity import CallerProfile
from arcturus.ratelimit import Rule
from arcturus.roles import ProfileUpdate, UserNotProvisioned, parse_profile_update, roles_store
from arcturus.web.docs import documented, parsed_body
from arcturus.web.guards import current_caller, guards, limited, requires
from arcturus.web.problem import HTTPProblem
from arcturus.web.resolver import build_resolver, lambda_handler

AUTH_LIMIT = Rule("auth", limit=20, window_s=60)  # the design's limit for POSTs under /api/auth/

app = build_resolver()
store = roles_store()


@app.post(
    "/api/auth/profile",
    summary="Save my dashboard profiles",
    **guards(
        limited(AUTH_LIMIT),
        requires(),
        openapi_extensions=parsed_body(ProfileUpdate, "Your complete new list of dashboard profiles."),
    ),
    responses={200: documented(CallerProfile, "Saved; you as the roles document now has you.")},
)
def save_profile() -> CallerProfile:
    # Parsed after requires(): a caller who may not save learns nothing from a validation error.
    profiles = parse_profile_update(app.current_event.decoded_body or "")
    caller = current_caller(app)
    try:
        saved = store.update_user_profiles(caller.email, profiles)
    except UserNotProvisioned as error:
        raise HTTPProblem(403, f"{caller.email} is no longer provisioned in the roles document.") from error
    return replace(caller, dashboard_profiles=tuple(saved["dashboardProfiles"])).profile()


handler = lambda_handler(app)
