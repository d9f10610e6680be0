"""What a route declares for the OpenAPI document (``python -m local openapi`` builds it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from typing_extensions import TypedDict

from arcturus.formats import wire_body
from arcturus.web.problem import PROBLEM_JSON, Problem

__all__ = [
    "JSON",
    "PARSED_AFTER_AUTHORIZATION",
    "RETRY_AFTER",
    "SCHEMAS",
    "SOURCE_UNAVAILABLE",
    "GatewayError",
    "ResponseHeaders",
    "documented",
    "parsed_body",
    "problem_answer",
]

JSON: Final = "application/json"
SCHEMAS: Final = "#/components/schemas/"
"""Where a route's documentation points for a body: the component named as the class of its model."""
ResponseHeaders = Mapping[str, Mapping[str, Any]]
"""OpenAPI header objects by header name."""
PARSED_AFTER_AUTHORIZATION: Final = "x-body-validated-after-authorization"
"""Marks an operation whose body is validated only once the caller may call it (its media type, JSON
only, is checked first, as for every route)."""
RETRY_AFTER: Final[ResponseHeaders] = {
    "Retry-After": {
        "description": "Whole seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    }
}


@wire_body
class GatewayError(TypedDict):
    """API Gateway's own answer when its JWT authorizer refuses a token (not a function's)."""

    message: str


def documented(
    model: type,
    description: str,
    *,
    media_type: str = JSON,
    headers: ResponseHeaders | None = None,
) -> OpenAPIResponse:
    """One of a route's answers for its ``responses=``: a body of ``model`` (the ``TypedDict`` the
    route returns), by reference to its component; the OpenAPI build makes the component's schema
    from the class (``python -m local openapi``), so a function's init never builds one."""
    response: dict[str, Any] = {
        "description": description,
        "content": {media_type: {"schema": {"$ref": SCHEMAS + model.__name__}}},
    }
    if headers:
        response["headers"] = {name: dict(header) for name, header in headers.items()}
    return cast(OpenAPIResponse, response)


def problem_answer(description: str, *, headers: ResponseHeaders | None = None) -> OpenAPIResponse:
    """A route's own error answer (problem JSON) for its ``responses=``."""
    return documented(Problem, description, media_type=PROBLEM_JSON, headers=headers)


SOURCE_UNAVAILABLE: Final = problem_answer(
    "The upstream source did not answer and nothing recent is cached, or the data store is busy."
)


def parsed_body(model: type, description: str) -> dict[str, Any]:
    """``openapi_extensions`` documenting a JSON body that the route parses itself.

    For routes that must check permissions before they validate (Powertools validates a declared
    ``Body()`` before any middleware runs): the document shows the body, the order stays.
    """
    content = {JSON: {"schema": {"$ref": SCHEMAS + model.__name__}}}
    return {
        "requestBody": {"required": True, "description": description, "content": content},
        PARSED_AFTER_AUTHORIZATION: True,
    }
