"""RFC 9457 problem details: the body and headers of every error answer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final

from aws_lambda_powertools.event_handler import Response

__all__ = ["PROBLEM_JSON", "Problem", "field_errors"]

PROBLEM_JSON: Final = "application/problem+json"


class Problem(Exception):
    """An error answer: raise it in a route (or a guard) to send problem JSON with ``status``."""

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
        body = {"type": "about:blank", "title": self.title, "status": self.status, "detail": self.detail}
        return Response(
            status_code=self.status,
            content_type=PROBLEM_JSON,
            body=json.dumps(body | self.extensions),
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


def field_errors(errors: list[Any]) -> list[dict[str, str]]:
    """Pydantic's errors as ``[{"field": "users.a@b.c.role", "message": ...}]`` for a 422 answer."""
    return [
        {
            "field": ".".join(str(part) for part in error.get("loc", ()) if part != "body"),
            "message": error["msg"],
        }
        for error in errors
    ]


def invalid(errors: list[Any]) -> Problem:
    """The 422 answer for a body or a parameter that did not validate, naming each field."""
    fields = field_errors(errors)
    detail = "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in fields) or "invalid request"
    return Problem(422, detail, title="Invalid request", extensions={"errors": fields})
