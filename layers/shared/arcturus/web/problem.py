"""RFC 9457 problem details: the body and headers of every error answer."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Annotated, Any, Final

from aws_lambda_powertools.event_handler import Response
from typing_extensions import TypedDict

from arcturus.formats import field, pydantic_config, wire_body
from arcturus.web.encoder import to_json

__all__ = ["PROBLEM_JSON", "FieldError", "HTTPProblem", "Problem", "ValidationProblem", "field_errors"]

PROBLEM_JSON: Final = "application/problem+json"


@pydantic_config(extra="allow")
class Problem(TypedDict):
    """RFC 9457 problem details: every error answer of the functions (``application/problem+json``).

    Extension members may follow the four standard ones.
    """

    type: Annotated[
        str, field(description="Always about:blank: the status code and title say what happened.")
    ]
    title: str
    status: Annotated[int, field(ge=400, le=599)]
    detail: Annotated[str, field(description="What went wrong and what to do about it, for a person.")]


@wire_body
class FieldError(TypedDict):
    field: Annotated[
        str, field(description="Dotted path of the field (users.a@b.example.role); empty: the body.")
    ]
    message: str


class ValidationProblem(Problem):
    """422: the request did not validate; ``errors`` names every field that failed and why."""

    errors: list[FieldError]


class HTTPProblem(Exception):
    """An error answer: raise it in a route (or a guard) to send problem JSON (a ``Problem``) with
    ``status``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})

    def response(self) -> Response[str]:
        body: Problem = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        return Response(
            status_code=self.status,
            content_type=PROBLEM_JSON,
            body=to_json({**body, **self.extensions}),
            headers=self.headers,
        )

    def proxy_response(self) -> dict[str, Any]:
        """This problem as the Lambda answer itself, for an event the resolver cannot take."""
        answer = self.response()
        return {
            "statusCode": answer.status_code,
            "headers": dict(answer.headers),
            "body": answer.body,
            "isBase64Encoded": False,
        }


def field_errors(errors: list[Any]) -> list[FieldError]:
    """Pydantic's errors as ``[{"field": "users.a@b.c.role", "message": ...}]`` for a 422 answer."""
    return [
        {
            "field": ".".join(str(part) for part in error.get("loc", ()) if part != "body"),
            "message": error["msg"],
        }
        for error in errors
    ]


def invalid(errors: list[Any]) -> HTTPProblem:
    """The 422 answer for a body or a parameter that did not validate, naming each field."""
    fields = field_errors(errors)
    detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in fields) or "invalid request"
    return HTTPProblem(422, detail, title="Invalid request", extensions={"errors": fields})
