"""GET and PUT /api/auth/roles: administrators read and replace the roles document.

The ETag is the stored version in quotes. PUT must send it back in ``If-Match`` (428 without), and the
write is a compare-and-set on it (412 when someone wrote in between), so no edit silently overwrites
another. If-Match uses strong comparison (RFC 9110): weak tags (``W/"..."``) never match, and ``*`` is
refused because a blind overwrite of the authorization database is what the ETag exists to prevent.
"""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header

from arcturus.errors import VersionConflict
from arcturus.roles import MANAGE_ROLES, RolesDocument, roles_store
from arcturus.web.docs import documented, parsed_body, problem_answer
from arcturus.web.guards import guards, requires
from arcturus.web.problem import HTTPProblem
from arcturus.web.resolver import build_resolver, lambda_handler
from arcturus.web.responses import json_response

app = build_resolver()
store = roles_store()
ETAG = {
    "ETag": {
        "description": "The stored version: send it back in If-Match to PUT.",
        "schema": {"type": "string"},
    }
}


@app.get(
    "/api/auth/roles",
    summary="The roles document",
    middlewares=[requires(MANAGE_ROLES)],
    responses={200: documented(RolesDocument, "The whole document, as stored.", headers=ETAG)},
)
def get_roles() -> Response[str]:
    # Strongly consistent, not the memory copy: the ETag an editor gets must be the current one.
    document, version = store.read_with_version()
    return _document_response(document, version)


@app.put(
    "/api/auth/roles",
    summary="Replace the roles document",
    **guards(
        requires(MANAGE_ROLES),
        openapi_extensions=parsed_body(
            RolesDocument,
            "The whole new document. Every user's role must exist, each key must be its user's email, and "
            "someone must keep '*' or 'manage:roles'.",
        ),
    ),
    responses={
        200: documented(RolesDocument, "Stored; the ETag is its new version.", headers=ETAG),
        412: problem_answer("The document changed since that ETag (or the tag is weak): GET, reapply, PUT."),
        428: problem_answer("No If-Match, or If-Match: *; send the ETag from GET."),
    },
)
def put_roles(
    if_match: Annotated[str | None, Header(description="The ETag from GET /api/auth/roles.")] = None,
) -> Response[str]:
    versions = _if_match(if_match)
    # Parsed after requires(): only administrators learn what the document must look like.
    body = app.current_event.decoded_body or ""  # the store validates it (the JSON text as sent)
    for version in versions:
        try:
            stored, new_version = store.replace(body, version)
        except VersionConflict:
            continue
        return _document_response(stored, new_version)
    raise HTTPProblem(
        412, "The roles document changed since that ETag: GET it again, reapply your edit, and PUT again."
    )


def _if_match(header: str | None) -> list[str]:
    """The versions an If-Match header accepts (strong tags; a bare token is read as one)."""
    if header is None or not header.strip():
        raise HTTPProblem(428, "PUT /api/auth/roles needs If-Match with the ETag from GET /api/auth/roles.")
    tags = [tag.strip() for tag in header.split(",") if tag.strip()]
    if "*" in tags:
        raise HTTPProblem(428, "If-Match: * would overwrite blindly; send the ETag from GET /api/auth/roles.")
    versions = [tag.strip('"') for tag in tags if not tag.startswith("W/")]
    if not versions:
        raise HTTPProblem(
            412, "Weak ETags never match If-Match; send the ETag from GET /api/auth/roles as is."
        )
    return versions


def _document_response(document: RolesDocument, version: str | None) -> Response[str]:
    headers: dict[str, Any] = {"Cache-Control": "no-store"}
    if version is not None:
        headers["ETag"] = f'"{version}"'
    return json_response(document, headers=headers)


handler = lambda_handler(app)
