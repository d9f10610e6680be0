"""GET and PUT /api/auth/roles: administrators read and replace the roles document.

The ETag is the stored version in quotes. PUT must send it back in ``If-Match`` (428 without), and the
write is a compare-and-set on it (412 when someone wrote in between), so no edit silently overwrites
another. If-Match uses strong comparison (RFC 9110): weak tags (``W/"..."``) never match, and ``*`` is
refused because a blind overwrite of the authorization database is what the ETag exists to prevent.
"""

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from arcturus.errors import VersionConflict
from arcturus.http import Problem, build_resolver, lambda_handler
from arcturus.identity import requires
from arcturus.roles import MANAGE_ROLES, RolesDocument, roles_store

app = build_resolver()
store = roles_store()


@app.get("/api/auth/roles", middlewares=[requires(MANAGE_ROLES)])
def get_roles() -> Response[str]:
    # Strongly consistent, not the memory copy: the ETag an editor gets must be the current one.
    document, version = store.read_with_version()
    return _document_response(document, version)


@app.put("/api/auth/roles", middlewares=[requires(MANAGE_ROLES)])
def put_roles() -> Response[str]:
    versions = _if_match(app.current_event.headers.get("if-match"))
    # Parsed after requires(): only administrators learn what the document must look like.
    document = RolesDocument.model_validate_json(app.current_event.decoded_body or "")
    for version in versions:
        try:
            stored, new_version = store.replace(document, version)
        except VersionConflict:
            continue
        return _document_response(stored, new_version)
    raise Problem(
        412, "The roles document changed since that ETag: GET it again, reapply your edit, and PUT again."
    )


def _if_match(header: str | None) -> list[str]:
    """The versions an If-Match header accepts (strong tags; a bare token is read as one)."""
    if header is None or not header.strip():
        raise Problem(428, "PUT /api/auth/roles needs If-Match with the ETag from GET /api/auth/roles.")
    tags = [tag.strip() for tag in header.split(",") if tag.strip()]
    if "*" in tags:
        raise Problem(428, "If-Match: * would overwrite blindly; send the ETag from GET /api/auth/roles.")
    versions = [tag.strip('"') for tag in tags if not tag.startswith("W/")]
    if not versions:
        raise Problem(412, "Weak ETags never match If-Match; send the ETag from GET /api/auth/roles as is.")
    return versions


def _document_response(document: RolesDocument, version: str | None) -> Response[str]:
    headers: dict[str, Any] = {"Cache-Control": "no-store"}
    if version is not None:
        headers["ETag"] = f'"{version}"'
    return Response(
        status_code=200, content_type="application/json", body=json.dumps(document.wire()), headers=headers
    )


handler = lambda_handler(app)
